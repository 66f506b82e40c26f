"""Identity and trust (issue 10): who hooks run as, which images run, which objects a task may
adopt or delete, names that never share state, and admission that a status patch cannot skip.

Admission and the builders are pure; the controller runs against a fake API of plain dicts
(the cluster behaviour is in tests/e2e/test_identity.py).
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

from kubernetes.client.exceptions import ApiException

from krally.api.names import LABEL_TASK
from krally.api.times import rfc3339
from krally.kube.operator import admission
from krally.kube.operator import builders as kjobs
from krally.kube.operator.controller import Controller
from krally.kube.operator.settings import Settings
from krally.kube.operator.store import Store, task_key

SETTINGS = Settings(runner_image="krally:1", hook_image="krally:1", status_write_period=0.0)
OPTED_IN = {"metadata": {"name": "chaos", "annotations": {"krally.dev/hooks": "allowed"}}}


def spec(**fields: Any) -> dict[str, Any]:
    hook = {
        "name": "sys_call",
        "args": "/bin/true",
        "trigger": {"name": "event", "args": {"unit": "iteration", "at": [5]}},
    }
    base: dict[str, Any] = {
        "scenario": {"name": "Dummy.dummy", "args": {"sleep": 0.01}},
        "runner": {"type": "constant", "times": 10},
        "hooks": [hook],
    }
    job = fields.pop("job", None)
    if job:
        hook["job"] = job
    base.update(fields)
    return base


# -- admission: service accounts -----------------------------------------------------------------


def test_a_hook_acting_through_the_api_must_name_its_service_account() -> None:
    kill = spec()
    kill["hooks"][0].update(name="kube.pod_kill", args={"selector": "app=web"})
    (refused,), _ = admission.validate(kill, SETTINGS, {})
    assert refused.startswith("spec.hooks[0].job.serviceAccountName: ")
    assert "'kube.pod_kill' acts through the Kubernetes API" in refused
    assert "krally rbac" in refused
    kill["hooks"][0]["job"] = {"serviceAccountName": "chaos"}
    assert admission.validate(kill, SETTINGS, {"chaos": OPTED_IN})[0] == []
    # A hook whose plugin declares no rights (sys_call) may run as the task's own account.
    assert admission.validate(spec(), SETTINGS, {})[0] == []


def test_a_named_service_account_must_exist_and_be_opted_in() -> None:
    named = spec(job={"serviceAccountName": "chaos"})
    assert admission.named_service_accounts(named) == ["chaos"]
    (missing,), _ = admission.validate(named, SETTINGS, {"chaos": None})
    assert missing.startswith("spec.hooks[0].job.serviceAccountName: ")
    assert "'chaos' not found" in missing
    plain = {"metadata": {"name": "chaos", "annotations": {"krally.dev/hooks": "maybe"}}}
    (refused,), _ = admission.validate(named, SETTINGS, {"chaos": plain})
    assert refused.startswith("spec.hooks[0].job.serviceAccountName: ")
    assert "not opted in" in refused and "krally.dev/hooks=allowed" in refused
    assert admission.validate(named, SETTINGS, {"chaos": OPTED_IN})[0] == []
    # Offline (krally validate: no cluster to read) only the operator's own list applies.
    assert admission.validate(named, SETTINGS)[0] == []


def test_a_hook_naming_no_account_runs_as_the_tasks_rightless_one() -> None:
    assert admission.validate(spec(), SETTINGS)[0] == []
    task = {"metadata": {"name": "gitlab", "namespace": "ns", "uid": "u"}, "spec": spec()}
    pod = kjobs.hook_job(task, 0, {"eventType": "iteration", "value": 5}, SETTINGS)["spec"][
        "template"
    ]["spec"]
    assert pod["serviceAccountName"] == "krally-gitlab-hooks" != "default"
    assert pod["automountServiceAccountToken"] is False
    account = kjobs.hook_service_account(task)
    assert account["metadata"]["name"] == "krally-gitlab-hooks"
    assert account["automountServiceAccountToken"] is False
    assert account["metadata"]["ownerReferences"][0]["uid"] == "u"
    # A named (opted-in) account keeps its token: kubectl in a sys_call hook needs it.
    task["spec"] = spec(job={"serviceAccountName": "chaos"})
    assert not kjobs.needs_hook_service_account(task)
    named = kjobs.hook_job(task, 0, {"eventType": "iteration", "value": 5}, SETTINGS)
    assert "automountServiceAccountToken" not in named["spec"]["template"]["spec"]


# -- admission: images ---------------------------------------------------------------------------


def test_images_are_limited_to_the_operators_own_by_default() -> None:
    bad = spec(job={"image": "evil:1"}, runnerPod={"image": "evil:2"})
    problems, _ = admission.validate(bad, SETTINGS)
    assert [p.split(":")[0] for p in problems] == [
        "spec.runnerPod.image",
        "spec.hooks[0].job.image",
    ]
    assert "'evil:2' is not allowed" in problems[0] and "KRALLY_ALLOWED_IMAGES" in problems[0]
    own = spec(job={"image": "krally:1"}, runnerPod={"image": "krally:1"})
    assert admission.validate(own, SETTINGS)[0] == []


def test_allowed_images_setting_takes_exact_names_and_prefixes() -> None:
    settings = Settings.from_env(
        {"KRALLY_IMAGE": "krally:1", "KRALLY_ALLOWED_IMAGES": "tools:3, example.test/chaos/*"}
    )
    assert settings.allowed_images == ("tools:3", "example.test/chaos/*")
    assert settings.image_allowed("krally:1")  # the operator's own stay allowed
    assert settings.image_allowed("tools:3") and not settings.image_allowed("tools:4")
    assert settings.image_allowed("example.test/chaos/kill:1")
    assert not settings.image_allowed("example.test/other:1")
    assert Settings.from_env({"KRALLY_ALLOWED_IMAGES": "*"}).image_allowed("anything:1")
    assert Settings.from_env({}).allowed_images == ()


# -- names -----------------------------------------------------------------------------------------


def test_child_names_do_not_collide_with_ordinary_names() -> None:
    assert kjobs.runner_name("gitlab") == "krally-gitlab-runner"
    assert kjobs.hook_service_account_name("gitlab") == "krally-gitlab-hooks"
    for name in (kjobs.runner_name("x" * 253), kjobs.hook_service_account_name("x" * 253)):
        assert len(name) <= 63 and name.startswith("krally-") and name[-1].isalnum()


def test_long_task_names_sharing_63_characters_get_different_keys() -> None:
    first, second = "a" * 63 + "-first", "a" * 63 + "-second"
    assert len(first) >= 69 and first[:63] == second[:63]
    keys = {kjobs.task_label(first), kjobs.task_label(second)}
    assert len(keys) == 2 and all(len(k) <= 63 and k[-1].isalnum() for k in keys)
    assert kjobs.task_label("short") == "short"
    # One function for both: the children's label is the store's key of their task.
    for name in (first, second):
        task = {"metadata": {"name": name, "namespace": "ns", "uid": name}}
        label = kjobs.runner_job(task, SETTINGS)["metadata"]["labels"][LABEL_TASK]
        assert label == task_key(task) == kjobs.task_label(name)


def test_two_long_tasks_do_not_share_state_in_the_store() -> None:
    first, second = "b" * 63 + "-one", "b" * 63 + "-two"
    tasks = [
        {"metadata": {"name": n, "namespace": "ns", "uid": n}, "spec": {}} for n in (first, second)
    ]
    index: dict[Any, list[Any]] = {}
    jobs: dict[Any, list[Any]] = {}
    for task in tasks:  # as the kopf indices file them
        index.setdefault(("ns", task_key(task)), []).append(task)
        job = kjobs.runner_job(task, SETTINGS)
        jobs.setdefault(("ns", job["metadata"]["labels"][LABEL_TASK]), []).append(job)
    store = Store({"task_index": index, "job_index": jobs, "pod_index": {}})
    for task in tasks:
        key = ("ns", task_key(task))
        assert store.task(key) is task
        (job,) = store.observe(key, task["metadata"]["uid"]).jobs
        assert job["metadata"]["ownerReferences"][0]["uid"] == task["metadata"]["uid"]


# -- the controller: adoption, abort, admission ----------------------------------------------------

KINDS = {
    "job": "Job",
    "service_account": "ServiceAccount",
    "role": "Role",
    "role_binding": "RoleBinding",
}


class Api:
    """A fake of the official client's APIs over plain dicts: create answers 409 for a taken
    name, read answers 404 for a missing one (as the API server does)."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]] | None = None) -> None:
        self.objects = dict(objects or {})
        self.created: list[tuple[str, str]] = []
        self.reads: list[tuple[str, str]] = []
        self.patches: list[dict[str, Any]] = []
        self.deletes: list[tuple[str, Any]] = []

    batch = core = rbac = custom = property(lambda self: self)

    def to_dict(self, obj: Any) -> Any:
        return obj

    def __getattr__(self, name: str) -> Any:
        verb, _, resource = name.partition("_namespaced_")
        kind = KINDS.get(resource)
        if kind is None:
            raise AttributeError(name)
        if verb == "create":
            return lambda namespace, body, **_: self._create(kind, body)
        if verb == "read":
            return lambda name, namespace, **_: self._read(kind, name)
        raise AttributeError(name)

    def _create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        key = (kind, body["metadata"]["name"])
        if key in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        self.objects[key] = {**copy.deepcopy(body), "status": {}}
        self.created.append(key)
        return self.objects[key]

    def _read(self, kind: str, name: str) -> dict[str, Any]:
        self.reads.append((kind, name))
        if (kind, name) not in self.objects:
            raise ApiException(status=404, reason="NotFound")
        return self.objects[(kind, name)]

    def patch_namespaced_custom_object_status(self, *args: Any, **_: Any) -> dict[str, Any]:
        self.patches.append(args[-1]["status"])
        return {}

    def delete_namespaced_job(self, name: str, namespace: str, body: Any = None, **_: Any) -> None:
        self.deletes.append((name, body.preconditions.uid if body.preconditions else None))

    def create_namespaced_event(self, namespace: str, body: dict[str, Any], **_: Any) -> None:
        pass


def task(status: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {"name": "t", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": spec(**fields),
        "status": status or {},
    }


def reconcile(api: Api, body: dict[str, Any], jobs: list[dict[str, Any]] | None = None) -> None:
    key = ("ns", "t")
    store = Store({"task_index": {key: [body]}, "job_index": {key: jobs or []}, "pod_index": {}})
    op = Controller(SETTINGS, api, store=store)

    async def scenario() -> None:
        op.kick(key)
        for _ in range(3):  # and the passes it asked for (a deferred kick is a loop callback)
            await op.queue.idle()
            await asyncio.sleep(0.01)

    asyncio.run(scenario())


def owned_by(uid: str, name: str = "krally-t-runner") -> dict[str, Any]:
    ref = {"kind": "BenchmarkTask", "name": "t", "uid": uid, "controller": True}
    return {"metadata": {"name": name, "uid": f"obj-{name}", "ownerReferences": [ref]}}


def condition(patch: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in patch["conditions"] if c["type"] == ctype)


def test_a_taken_name_is_a_name_conflict_not_an_adoption() -> None:
    # A ServiceAccount of the same name that is not this task's (here: another owner).
    api = Api({("ServiceAccount", "krally-t-runner"): owned_by("someone-else")})
    reconcile(api, task())
    assert ("Job", "krally-t-runner") not in api.created
    assert ("ServiceAccount", "krally-t-runner") in api.reads
    last = api.patches[-1]
    assert last["phase"] == "Failed"
    failed = condition(last, "Failed")
    assert failed["reason"] == "NameConflict"
    assert "ServiceAccount krally-t-runner already exists" in failed["message"]
    assert "someone-else" in failed["message"]


def test_a_child_this_task_controls_is_adopted() -> None:
    # Left by an earlier pass (e.g. the operator died between two creates).
    api = Api({("ServiceAccount", "krally-t-runner"): owned_by("uid-1")})
    reconcile(api, task(arming={"enabled": False}))
    assert ("Job", "krally-t-runner") in api.created
    assert api.patches[-1]["phase"] == "Pending"


def test_a_hook_job_name_taken_by_a_stranger_is_a_failed_firing() -> None:
    stranger = {"metadata": {"name": "t-h0-i5", "uid": "x"}}  # no ownerReference at all
    api = Api({("Job", "t-h0-i5"): stranger})
    runner = {**owned_by("uid-1"), "status": {"active": 1}}
    # Fired just now (an old firedAt would be a Late firing, never created).
    firing = {"hook": 0, "eventType": "iteration", "value": 5, "firedAt": rfc3339(time.time())}
    status = {
        "runnerJob": "krally-t-runner",
        "runner": {"state": "Running", "firings": [firing]},
    }
    reconcile(api, task(status), [runner])
    assert api.created == []
    (hook,) = api.patches[-1]["hooks"]
    (result,) = hook["results"]
    assert result["status"] == "failed"
    assert result["error"]["etype"] == "NameConflict"
    assert "Job t-h0-i5 already exists" in result["error"]["msg"]
    assert api.patches[-1]["phase"] == "Running"  # the load goes on


def test_abort_deletes_only_the_job_this_task_owns() -> None:
    api = Api()
    runner = {**owned_by("uid-1"), "status": {"active": 1}}
    status = {"runnerJob": "krally-t-runner", "runner": {"state": "Running"}}
    reconcile(api, task(status, abort=True), [runner])
    assert api.deletes == [("krally-t-runner", "obj-krally-t-runner")]


def test_a_status_patched_to_accepted_does_not_skip_admission() -> None:
    forged = {"conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}]}
    api = Api()
    reconcile(api, task(forged, job={"image": "evil:1"}))
    assert api.created == []
    last = api.patches[-1]
    assert last["phase"] == "Failed"
    accepted = condition(last, "Accepted")
    assert accepted["status"] == "False" and accepted["reason"] == "InvalidSpec"
    assert "spec.hooks[0].job.image" in accepted["message"]


def test_revalidation_of_a_running_task_keeps_it_accepted() -> None:
    # After a restart: a valid task already running (warnings found again must not refuse it).
    api = Api({("ServiceAccount", "chaos"): OPTED_IN})
    runner = {**owned_by("uid-1"), "status": {"active": 1}}
    status = {
        "phase": "Running",
        "runnerJob": "krally-t-runner",
        "runner": {"state": "Running"},
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}],
    }
    body = task(status, job={"serviceAccountName": "chaos"})
    body["spec"]["hooks"][0]["trigger"]["args"]["at"] = [500]  # beyond times: a warning
    reconcile(api, body, [runner])
    assert ("ServiceAccount", "chaos") in api.reads
    assert api.created == []
    for patch in api.patches:
        assert patch.get("phase") in (None, "Running")
        assert all(
            c["status"] == "True" for c in patch.get("conditions") or [] if c["type"] == "Accepted"
        )


def test_a_running_task_refused_after_a_restart_is_stopped_keeping_what_was_recorded() -> None:
    """The admin revoked the opt-in while the task ran; a restarted operator validates again:
    the runner and the running hook Jobs are deleted (only the objects this task owns), the task
    ends Failed/InvalidSpec, and its recorded start, progress and hook results stay."""
    api = Api({("ServiceAccount", "chaos"): {"metadata": {"name": "chaos"}}})  # no opt-in now
    runner = {**owned_by("uid-1"), "status": {"active": 1}}
    hook = {**owned_by("uid-1", "t-h0-i1"), "status": {"active": 1}}
    recorded = [{"triggeredBy": {"eventType": "iteration", "value": 1}, "status": "running"}]
    status = {
        "phase": "Running",
        "startedAt": "2026-12-01T10:00:00Z",
        "runnerJob": "krally-t-runner",
        "progress": {"done": 40, "total": 100},
        "hooks": [{"summary": {"running": 1}, "results": recorded}],
        "runner": {"state": "Running"},
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}],
    }
    reconcile(api, task(status, job={"serviceAccountName": "chaos"}), [runner, hook])
    assert ("krally-t-runner", runner["metadata"]["uid"]) in api.deletes
    assert ("t-h0-i1", hook["metadata"]["uid"]) in api.deletes
    final = api.patches[-1]
    assert final["phase"] == "Failed"
    assert condition(final, "Failed")["reason"] == "InvalidSpec"
    assert "spec.hooks[0].job.serviceAccountName" in final["message"]
    for key in ("startedAt", "progress", "hooks", "runnerJob"):
        assert key not in final, f"{key} was rewritten: {final.get(key)}"
