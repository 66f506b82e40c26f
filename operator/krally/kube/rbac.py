"""``krally rbac TASK.yaml``: the least-privilege identity a task's ``kube.*`` hooks need.

Each hook plugin declares, for its config, the rules it uses (``rbac_rules(config, namespace)``:
a namespace, or None for cluster scope, and a PolicyRule). This module merges them per
ServiceAccount and prints YAML documents ready for ``kubectl apply -f -``:

- the ServiceAccount, annotated ``krally.dev/hooks: allowed`` (the operator runs a hook as a
  named ServiceAccount only with that annotation), in the task's namespace;
- a Role and a RoleBinding in each namespace the hooks touch;
- a ClusterRole and a ClusterRoleBinding when a hook needs cluster scope (nodes, pods of every
  namespace);

with comments saying which hook needs which rule and that the hooks must set
``job.serviceAccountName``. The ServiceAccount is ``--service-account``, else the one a hook
already names, else ``<task>-disruptor`` (never ``krally-<task>-hooks``: the operator makes that
one itself, with no rights). Pure: no cluster is asked.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from krally.api.names import ANNOTATION_HOOKS, API_VERSION, HOOKS_ALLOWED, KIND
from krally.api.wire import child_name
from krally.task.hook import Hook
from krally.task.loader import benchmark_tasks, read_documents

RBAC_API = "rbac.authorization.k8s.io"
DEFAULT_NAMESPACE = "default"


def service_account_name(task: str) -> str:
    """The default ServiceAccount of a task's kube hooks: ``<task>-disruptor``."""
    return child_name(task, "-disruptor")


def cluster_role_name(namespace: str, account: str) -> str:
    """Cluster-wide, so the namespace is part of it: ``krally:<namespace>:<account>``."""
    return f"krally:{namespace}:{account}"


@dataclass
class HookRef:
    task: str
    index: int
    plugin: str
    args: Any
    job: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.task} spec.hooks[{self.index}] ({self.plugin})"


@dataclass
class TaskHooks:
    name: str
    namespace: str
    hooks: list[HookRef]


# (group, resource) -> verb -> hooks needing it
RuleSet = dict[tuple[str, str], dict[str, set[str]]]


@dataclass
class Identity:
    """One ServiceAccount and the rules its hooks need."""

    name: str
    namespace: str
    hooks: list[HookRef] = field(default_factory=list)
    namespaced: dict[str, RuleSet] = field(default_factory=dict)
    cluster: RuleSet = field(default_factory=dict)

    def add(self, scope: str | None, rule: dict[str, list[str]], who: str) -> None:
        target = self.cluster if scope is None else self.namespaced.setdefault(scope, {})
        for group in rule.get("apiGroups") or [""]:
            for resource in rule.get("resources") or []:
                verbs = target.setdefault((group, resource), {})
                for verb in rule.get("verbs") or []:
                    verbs.setdefault(verb, set()).add(who)

    def prune(self) -> None:
        """Drop namespaced verbs a cluster-wide rule already grants (their hooks are named
        on the cluster rule instead)."""
        for scope in list(self.namespaced):
            rules = self.namespaced[scope]
            for key in list(rules):
                for verb in list(rules[key]):
                    granted = self.cluster.get(key, {})
                    if verb in granted:
                        granted[verb] |= rules[key].pop(verb)
                if not rules[key]:
                    del rules[key]
            if not rules:
                del self.namespaced[scope]


# -- reading a task file ---------------------------------------------------------------------


def tasks_from_file(path: str | Path, spec: Any, namespace: str | None = None) -> list[TaskHooks]:
    """The tasks of a file already loaded (and validated) as ``spec``: BenchmarkTask documents
    with their own names and namespaces, Rally files as ``krally convert`` names them.
    ``namespace`` (``-n``) overrides the documents' namespace."""

    docs = read_documents(path)
    if len(docs) == 1 and isinstance(docs[0], dict) and docs[0].get("kind") == "List":
        docs = list(docs[0].get("items") or [])
    if not all(isinstance(d, dict) and d.get("kind") == KIND for d in docs):
        docs = benchmark_tasks(spec)
    tasks = []
    for doc in docs:
        meta = doc.get("metadata") or {}
        name = str(meta.get("name") or Path(path).stem)
        hooks = [
            HookRef(name, index, str(h.get("name")), h.get("args"), dict(h.get("job") or {}))
            for index, h in enumerate((doc.get("spec") or {}).get("hooks") or [])
        ]
        tasks.append(
            TaskHooks(name, namespace or meta.get("namespace") or DEFAULT_NAMESPACE, hooks)
        )
    return tasks


# -- planning --------------------------------------------------------------------------------


def plan(
    tasks: list[TaskHooks], service_account: str | None = None
) -> tuple[list[Identity], list[HookRef], list[TaskHooks]]:
    """(the identities to create, hooks whose rights are unknown, tasks needing none)."""

    identities: dict[tuple[str, str], Identity] = {}
    unknown: list[HookRef] = []
    rightless: list[TaskHooks] = []
    for task in tasks:
        declared = False
        for ref in task.hooks:
            try:
                cls = Hook.get(ref.plugin)
            except Exception:
                unknown.append(ref)
                continue
            declare = getattr(cls, "rbac_rules", None)
            if declare is None:
                unknown.append(ref)
                continue
            rules = declare(ref.args if isinstance(ref.args, dict) else {}, task.namespace)
            if not rules:
                continue
            declared = True
            name = (
                service_account
                or ref.job.get("serviceAccountName")
                or service_account_name(task.name)
            )
            identity = identities.setdefault((task.namespace, name), Identity(name, task.namespace))
            identity.hooks.append(ref)
            for scope, rule in rules:
                identity.add(scope, rule, ref.label)
        if not declared:
            rightless.append(task)
    for identity in identities.values():
        identity.prune()
    return list(identities.values()), unknown, rightless


# -- rendering -------------------------------------------------------------------------------


def _rule_docs(rules: RuleSet) -> list[tuple[str, dict[str, Any]]]:
    """(comment, PolicyRule) per (group, resource), verbs merged, sorted."""
    # Resources of one API group with the same verbs for the same hooks share a rule.
    merged: dict[tuple[str, tuple[str, ...], str], list[str]] = collections.defaultdict(list)
    for (group, resource), verbs in sorted(rules.items()):
        needers: dict[str, list[str]] = collections.defaultdict(list)
        for verb, hooks in sorted(verbs.items()):
            for who in sorted(hooks):
                needers[who].append(verb)
        comment = "; ".join(f"{who}: {', '.join(v)}" for who, v in sorted(needers.items()))
        merged[(group, tuple(sorted(verbs)), comment)].append(resource)
    return [
        (comment, {"apiGroups": [group], "resources": resources, "verbs": list(verbs)})
        for (group, verbs, comment), resources in merged.items()
    ]


def _dump(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=None, width=100)


def _role_text(header: list[str], obj: dict[str, Any], rules: RuleSet) -> str:
    lines = [f"# {line}" for line in header]
    lines.append(_dump(obj).rstrip("\n"))
    lines.append("rules:")
    for comment, rule in _rule_docs(rules):
        lines.append(f"# needed by {comment}")
        lines.append(_dump([rule]).rstrip("\n"))
    return "\n".join(lines) + "\n"


def _binding(
    kind: str, role_kind: str, name: str, namespace: str | None, identity: Identity
) -> dict:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": f"{RBAC_API}/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": RBAC_API, "kind": role_kind, "name": name},
        "subjects": [
            {"kind": "ServiceAccount", "name": identity.name, "namespace": identity.namespace}
        ],
    }


def identity_documents(identity: Identity) -> list[str]:
    """The YAML documents (with comments) of one identity."""
    docs = []
    need_setting = [
        h.label for h in identity.hooks if h.job.get("serviceAccountName") != identity.name
    ]
    header = [
        f"ServiceAccount {identity.name} for the kube.* hooks "
        + ", ".join(h.label for h in identity.hooks)
        + f" (tasks run in namespace {identity.namespace}).",
    ]
    if need_setting:
        header.append(
            f"These hooks must set `job: {{serviceAccountName: {identity.name}}}`: "
            + ", ".join(need_setting)
        )
    else:
        header.append(f"The hooks already set job.serviceAccountName: {identity.name}.")
    header.append(
        f"The operator runs a hook as a ServiceAccount only if annotated "
        f"{ANNOTATION_HOOKS}: {HOOKS_ALLOWED}."
    )
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": identity.name,
            "namespace": identity.namespace,
            "annotations": {ANNOTATION_HOOKS: HOOKS_ALLOWED},
        },
    }
    docs.append("\n".join(f"# {line}" for line in header) + "\n" + _dump(account))
    for namespace, rules in sorted(identity.namespaced.items()):
        role = {
            "apiVersion": f"{RBAC_API}/v1",
            "kind": "Role",
            "metadata": {"name": identity.name, "namespace": namespace},
        }
        docs.append(
            _role_text(
                [f"What the hooks of {identity.name} do in namespace {namespace}."], role, rules
            )
        )
        docs.append(_dump(_binding("RoleBinding", "Role", identity.name, namespace, identity)))
    if identity.cluster:
        name = cluster_role_name(identity.namespace, identity.name)
        role = {"apiVersion": f"{RBAC_API}/v1", "kind": "ClusterRole", "metadata": {"name": name}}
        docs.append(
            _role_text(
                [
                    f"What the hooks of {identity.name} need at cluster scope (nodes, or pods of "
                    "every namespace)."
                ],
                role,
                identity.cluster,
            )
        )
        docs.append(_dump(_binding("ClusterRoleBinding", "ClusterRole", name, None, identity)))
    return docs


def render(tasks: list[TaskHooks], service_account: str | None = None) -> str:
    identities, unknown, rightless = plan(tasks, service_account)
    notes = [
        f"# krally rbac: the rights of the kube.* hooks of {API_VERSION} {KIND} "
        + ", ".join(f"{t.namespace}/{t.name}" for t in tasks)
        + "."
    ]
    for task in rightless:
        if not any(u.task == task.name for u in unknown):
            notes.append(f"# {task.name}: no kube.* hooks: no rights are needed.")
        else:
            notes.append(f"# {task.name}: no kube.* hooks declare rights.")
    for ref in unknown:
        notes.append(
            f"# {ref.label}: the plugin declares no rights: what it needs is unknown "
            "(not covered here)."
        )
    docs = [doc for identity in identities for doc in identity_documents(identity)]
    text = "\n".join(notes) + "\n"
    if docs:
        text += "---\n" + "---\n".join(docs)
    return text


def render_file(
    path: str | Path, spec: Any, service_account: str | None = None, namespace: str | None = None
) -> str:
    return render(tasks_from_file(path, spec, namespace), service_account)


def documents(text: str) -> list[dict[str, Any]]:
    """The objects of ``render``'s output (for tests and scripts)."""
    return [d for d in yaml.safe_load_all(text) if d]
