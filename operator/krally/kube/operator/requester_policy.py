"""The requester policy: a ValidatingAdmissionPolicy (and its Binding) that binds what a
BenchmarkTask or BenchmarkSchedule references to the rights of the user who writes it.

A task's hook and runner pods are created by the operator, so without this a user who may
create tasks could read every Secret and ConfigMap of the namespace through `valueFrom` and run
hooks as any opted-in ServiceAccount: the operator would be a confused deputy. The policy runs
inside the API server (CEL's ``authorizer`` library, asked about the request's user), so it
holds while the operator is down, and fails closed (``failurePolicy: Fail``):

- every Secret and ConfigMap an ``env[].valueFrom`` names (``spec.runnerPod.env``,
  ``spec.hooks[].job.env``; in a schedule, the same under ``spec.taskTemplate.spec``) needs
  ``get`` on it by the requester;
- every ServiceAccount a hook names (``spec.hooks[].job.serviceAccountName``) needs ``use``
  on it, as PodSecurityPolicy's ``use`` was (the namespace admin's opt-in annotation is still
  checked by the operator);
- a schedule's author must be allowed to ``create`` BenchmarkTasks in the namespace: a schedule
  makes tasks on its author's behalf.

Tasks are checked at CREATE (their spec is immutable); schedules at CREATE and at any UPDATE
that changes ``spec.taskTemplate`` (its next tasks are made from it), against that update's
author. The tasks a schedule makes are created by the operator's own ServiceAccount, which
holds none of these rights: they are exempt (a match condition naming exactly that account),
since their template passed the policy at the schedule's admission.

A CEL expression may run at most two authorization checks (each costs 350 000 of the 1 000 000
per expression), so each referenced object gets a validation of its own, up to
:data:`MAX_OBJECTS` Secrets and ConfigMaps and :data:`MAX_ACCOUNTS` ServiceAccounts (distinct
names; a spec naming more is refused, saying so).

Regenerate with ``python -m krally.kube.operator.requester_policy --write``; a unit test fails
on drift.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from krally.api import names

POLICY: str = "requester.krally.dev"
BINDING: str = POLICY
# The install's operator identity (manifests/operator): the one requester exempt for tasks.
OPERATOR_USER = "system:serviceaccount:krally-system:krally-operator"
MAX_OBJECTS = 16
MAX_ACCOUNTS = 4
OUTPUT = "manifests/requester-policy.yaml"

_SPEC = "(variables.isSchedule ? object.spec.taskTemplate.spec : object.spec)"
_ENV_REFS = (
    "has(e.valueFrom) && has(e.valueFrom.secretKeyRef) ? "
    "[{{'field': {field}, 'resource': 'secrets', 'name': string(e.valueFrom.secretKeyRef.name)}}]"
    " : has(e.valueFrom) && has(e.valueFrom.configMapKeyRef) ? "
    "[{{'field': {field}, 'resource': 'configmaps', "
    "'name': string(e.valueFrom.configMapKeyRef.name)}}] : []"
)
_RUNNER_FIELD = "variables.at + '.runnerPod.env[' + string(j) + '].valueFrom'"
_HOOK_FIELD = "variables.at + '.hooks[' + string(i) + '].job.env[' + string(j) + '].valueFrom'"
_ACCOUNT_FIELD = "variables.at + '.hooks[' + string(i) + '].job.serviceAccountName'"

VARIABLES: tuple[tuple[str, str], ...] = (
    ("isSchedule", f"request.resource.resource == '{names.SCHEDULE_PLURAL}'"),
    ("spec", _SPEC),
    ("at", "variables.isSchedule ? 'spec.taskTemplate.spec' : 'spec'"),
    ("hooks", "has(variables.spec.hooks) ? variables.spec.hooks : []"),
    (
        "runnerEnv",
        "has(variables.spec.runnerPod) && has(variables.spec.runnerPod.env) ? "
        "variables.spec.runnerPod.env : []",
    ),
    # Every reference: {field, resource, name}, in spec order.
    (
        "refs",
        "variables.runnerEnv.transformList(j, e, "
        + _ENV_REFS.format(field=_RUNNER_FIELD)
        + ").flatten() + variables.hooks.transformList(i, h, "
        "has(h.job) && has(h.job.env) ? h.job.env.transformList(j, e, "
        + _ENV_REFS.format(field=_HOOK_FIELD)
        + ").flatten() : []).flatten()",
    ),
    ("objects", "variables.refs.map(r, r.resource + '/' + r.name).distinct()"),
    (
        "accountRefs",
        "variables.hooks.transformList(i, h, has(h.job) && has(h.job.serviceAccountName) ? "
        f"[{{'field': {_ACCOUNT_FIELD}, 'name': string(h.job.serviceAccountName)}}] : [])"
        ".flatten()",
    ),
    ("accounts", "variables.accountRefs.map(r, r.name).distinct()"),
    ("refused", "object.kind + ' refused by krally: '"),
)


def _object_check(k: int) -> dict[str, str]:
    obj = f"variables.objects[{k}]"
    return {
        "expression": f"size(variables.objects) <= {k} || authorizer.group('')"
        f".resource({obj}.split('/')[0]).namespace(request.namespace)"
        f".name({obj}.split('/')[1]).check('get').allowed()",
        "messageExpression": "variables.refused + variables.refs.filter(r, "
        f"r.resource + '/' + r.name == {obj}).map(r, r.field).join(', ') + ': ' + "
        f"request.userInfo.username + ' may not get ' + {obj} + ' in ' + request.namespace",
        "reason": "Forbidden",
    }


def _account_check(k: int) -> dict[str, str]:
    account = f"variables.accounts[{k}]"
    return {
        "expression": f"size(variables.accounts) <= {k} || authorizer.group('')"
        f".resource('serviceaccounts').namespace(request.namespace).name({account})"
        ".check('use').allowed()",
        "messageExpression": "variables.refused + variables.accountRefs.filter(r, "
        f"r.name == {account}).map(r, r.field).join(', ') + ': ' + "
        f"request.userInfo.username + ' may not use serviceaccounts/' + {account} + "
        "' in ' + request.namespace + ' (the verb use on the ServiceAccount, granted by the "
        "namespace admin)'",
        "reason": "Forbidden",
    }


def _validations() -> list[dict[str, str]]:
    limits = [
        {
            "expression": f"size(variables.objects) <= {MAX_OBJECTS}",
            "messageExpression": "variables.refused + variables.at + ': ' + "
            "string(size(variables.objects)) + ' distinct Secrets and ConfigMaps referenced, "
            f"at most {MAX_OBJECTS} (each is checked against the author)'",
            "reason": "Invalid",
        },
        {
            "expression": f"size(variables.accounts) <= {MAX_ACCOUNTS}",
            "messageExpression": "variables.refused + variables.at + '.hooks: ' + "
            "string(size(variables.accounts)) + ' distinct ServiceAccounts named, "
            f"at most {MAX_ACCOUNTS} (each is checked against the author)'",
            "reason": "Invalid",
        },
        {
            "expression": "!variables.isSchedule || authorizer.group('krally.dev')"
            f".resource('{names.PLURAL}').namespace(request.namespace).check('create').allowed()",
            "messageExpression": "variables.refused + 'spec.taskTemplate: ' + "
            f"request.userInfo.username + ' may not create {names.PLURAL} in ' + "
            "request.namespace + ' (a schedule creates tasks on its author\\'s behalf)'",
            "reason": "Forbidden",
        },
    ]
    return (
        limits
        + [_object_check(k) for k in range(MAX_OBJECTS)]
        + [_account_check(k) for k in range(MAX_ACCOUNTS)]
    )


def policy(operator_user: str = OPERATOR_USER) -> dict[str, Any]:
    """The ValidatingAdmissionPolicy; ``operator_user``: the operator's identity (exempt when
    it creates tasks, which only a schedule makes it do)."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [names.GROUP],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [names.PLURAL, names.SCHEDULE_PLURAL],
                    }
                ]
            },
            "matchConditions": [
                {
                    "name": "not-a-schedules-task",
                    "expression": f"!(request.resource.resource == '{names.PLURAL}' && "
                    f"request.userInfo.username == '{operator_user}')",
                },
                {
                    "name": "spec-written",
                    "expression": "request.operation == 'CREATE' || "
                    f"(request.resource.resource == '{names.SCHEDULE_PLURAL}' && "
                    "object.spec.taskTemplate != oldObject.spec.taskTemplate)",
                },
            ],
            "variables": [{"name": n, "expression": e} for n, e in VARIABLES],
            "validations": _validations(),
        },
    }


def binding() -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": BINDING},
        "spec": {"policyName": POLICY, "validationActions": ["Deny"]},
    }


def operator_rights(operator_user: str = OPERATOR_USER) -> list[dict[str, Any]]:
    """The operator reads the policy and its binding (only these) to know it was in force
    (:mod:`.requester`): a ClusterRole and its binding to the operator's ServiceAccount."""
    namespace, account = operator_user.split(":")[2:4]
    name = "krally-operator-requester"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": [
            {
                "apiGroups": ["admissionregistration.k8s.io"],
                "resources": ["validatingadmissionpolicies", "validatingadmissionpolicybindings"],
                "resourceNames": [POLICY],
                "verbs": ["get"],
            }
        ],
    }
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}
    subject = {"kind": "ServiceAccount", "name": account, "namespace": namespace}
    role_binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": role_ref,
        "subjects": [subject],
    }
    return [role, role_binding]


def render_yaml(operator_user: str = OPERATOR_USER) -> str:
    header = (
        "# Generated by `python -m krally.kube.operator.requester_policy --write`: do not edit.\n"
        "# What a BenchmarkTask or BenchmarkSchedule references must be within its author's own\n"
        "# rights (get on each Secret and ConfigMap, use on each hook ServiceAccount, create on\n"
        "# benchmarktasks for a schedule), checked inside the API server (README: Identity and\n"
        "# trust). It names the operator's ServiceAccount (krally-system/krally-operator): an\n"
        "# install under another name must regenerate it with that name.\n"
    )
    docs = [policy(operator_user), binding(), *operator_rights(operator_user)]
    return header + yaml.safe_dump_all(docs, sort_keys=False, width=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m krally.kube.operator.requester_policy")
    parser.add_argument("--write", action="store_true", help=f"write {OUTPUT}")
    parser.add_argument("--operator-user", default=OPERATOR_USER)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[4])
    args = parser.parse_args(argv)
    text = render_yaml(args.operator_user)
    if args.write:
        (args.root / OUTPUT).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
