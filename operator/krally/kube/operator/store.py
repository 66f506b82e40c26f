"""The watched store: kopf indices of tasks, their Jobs and pods, as small plain dicts.

The projections are pure (what of a watched object the operator keeps); :class:`Store` holds
the live indices kopf hands to every handler and answers "what is observed for this task".
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from krally.api.names import LABEL_TASK
from krally.kube.operator import builders as kjobs
from krally.kube.operator.planner import Key, Observed

INDEX_NAMES = ("task_index", "job_index", "pod_index")

_TASK_META = (
    "name",
    "namespace",
    "uid",
    "generation",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "labels",
)
# Jobs and pods keep the same metadata (Jobs their annotations too).
_CHILD_META = (
    "name",
    "namespace",
    "uid",
    "labels",
    "ownerReferences",
    "creationTimestamp",
    "deletionTimestamp",
)
_POD_STATUS = ("phase", "conditions", "containerStatuses", "startTime", "reason", "message")


def _meta(body: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    return {k: copy.deepcopy(meta[k]) for k in keys if k in meta}


def _status(body: Mapping[str, Any], keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    status = body.get("status") or {}
    return {k: copy.deepcopy(status[k]) for k in (keys or status) if k in status}


def task_key(body: Mapping[str, Any]) -> str:
    """The index key of a task: the children's task label (hashed when the name is long)."""
    return kjobs.task_label((body.get("metadata") or {}).get("name", ""))


def child_key(labels: Mapping[str, str]) -> str:
    return labels.get(LABEL_TASK, "")


def project_task(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": _meta(body, _TASK_META),
        "spec": copy.deepcopy(dict(body.get("spec") or {})),
        "status": _status(body),
    }


# What the phase reads of a Job's spec: its deadline; whether a failed pod fails it at once.
_JOB_SPEC = ("activeDeadlineSeconds", "backoffLimitPerIndex")


def project_job(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "metadata": _meta(body, (*_CHILD_META, "annotations")),
        "spec": {k: spec[k] for k in _JOB_SPEC if k in (spec := body.get("spec") or {})},
        "status": _status(body),
    }


def project_pod(body: Mapping[str, Any]) -> dict[str, Any]:
    return {"metadata": _meta(body, _CHILD_META), "status": _status(body, _POD_STATUS)}


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)


class Store:
    """The indices kopf keeps (``task_index``, ``job_index``, ``pod_index``), as last handed to
    a handler; or, in tests, plain ``{key: [objects]}`` mappings."""

    def __init__(self, indices: Mapping[str, Any] | None = None) -> None:
        self._indices: dict[str, Any] = dict(indices or {})

    def remember(self, kwargs: Mapping[str, Any]) -> None:
        """Keep the indices a kopf handler was called with."""
        for name in INDEX_NAMES:
            if name in kwargs:
                self._indices[name] = kwargs[name]

    def lookup(self, index_name: str, key: Key) -> list[dict[str, Any]]:
        index = self._indices.get(index_name)
        if index is None:
            return []
        return list(index.get(key, []))

    def task_keys(self) -> list[Key]:
        """Every task key the task index holds."""
        return list(self._indices.get("task_index") or {})

    def task(self, key: Key) -> dict[str, Any] | None:
        tasks = self.lookup("task_index", key)
        return tasks[0] if tasks else None

    def observe(self, key: Key, uid: str) -> Observed:
        """The Jobs the task ``uid`` owns and their pods (objects of a namesake are ignored)."""
        jobs = [j for j in self.lookup("job_index", key) if owned_by(j, uid)]
        job_uids = {j["metadata"].get("uid") for j in jobs}
        pods = [
            p
            for p in self.lookup("pod_index", key)
            if any(r.get("uid") in job_uids for r in p["metadata"].get("ownerReferences") or [])
        ]
        return Observed(jobs=tuple(jobs), pods=tuple(pods))
