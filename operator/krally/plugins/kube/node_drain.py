"""Hook ``kube.node_drain``: cordon a node, then evict its pods through the Eviction API
(policy/v1, so PodDisruptionBudgets are respected) like ``kubectl drain``: DaemonSet pods and
mirror pods stay, evictions a budget blocks (429) are retried until ``timeout_seconds``, then
the hook fails naming the pod and the budget's message. It waits for the evicted pods to be
gone (``wait_deleted``), then uncordons the node (``uncordon_after``, at once or after
``uncordon_after_seconds``) if it cordoned it.

It refuses, touching nothing, to drain the node that runs this task's own runner pod (the load
would die with it) unless ``allow_runner_node: true``; this task's own hook pods are left alone.
"""

from __future__ import annotations

import os
import time
from typing import Any

from krally import consts
from krally.api.names import LABEL_ROLE, LABEL_TASK, ROLE_HOOK, ROLE_RUNNER
from krally.api.wire import task_label
from krally.plugins.kube import api, base, objects
from krally.plugins.kube.node_cordon import node_path, set_unschedulable
from krally.task import hook

MIRROR = "kubernetes.io/config.mirror"
RETRY_SECONDS = 1.0


def drain_plan(
    pods: list[dict[str, Any]], task: str | None
) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]], list[dict[str, Any]]]:
    """(pods to evict, [(pod, why skipped)], this task's runner pods) of a node's pods."""
    evict, skipped, runners = [], [], []
    label = task_label(task) if task else None
    for pod in pods:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        ours = label is not None and labels.get(LABEL_TASK) == label
        owner = objects.controller_of(pod)
        if ours and labels.get(LABEL_ROLE) == ROLE_RUNNER and not meta.get("deletionTimestamp"):
            runners.append(pod)
        if meta.get("deletionTimestamp"):
            skipped.append((pod, "already terminating"))
        elif MIRROR in (meta.get("annotations") or {}):
            skipped.append((pod, "mirror pod"))
        elif owner is not None and owner.get("kind") == "DaemonSet":
            skipped.append((pod, "DaemonSet pod"))
        elif ours and labels.get(LABEL_ROLE) == ROLE_HOOK:
            skipped.append((pod, "this task's hook pod"))
        else:
            evict.append(pod)
    return evict, skipped, runners


def eviction_message(data: Any) -> str:
    message = api.api_message(data)
    causes = (
        ((data or {}).get("details") or {}).get("causes") or [] if isinstance(data, dict) else []
    )
    extra = "; ".join(str(c.get("message")) for c in causes if c.get("message"))
    return f"{message} ({extra})" if extra else message


@hook.configure(name="kube.node_drain")
class NodeDrain(base.KubeHook):
    """Cordon a node and evict its pods, respecting PodDisruptionBudgets."""

    TITLE = "node drained"
    COLUMNS = ["object", "namespace", "node", "action", "at"]
    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA7,
        "type": "object",
        "additionalProperties": False,
        "required": ["node"],
        "properties": {
            "node": {"type": "string", "minLength": 1},
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0},
            "grace_period_seconds": {"type": "integer", "minimum": 0},
            "wait_deleted": {"type": "boolean"},
            "uncordon_after": {"type": "boolean"},
            "uncordon_after_seconds": {"type": "number", "minimum": 0},
            "allow_runner_node": {"type": "boolean"},
        },
    }

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> list[tuple[str, str]]:
        if "uncordon_after_seconds" in config and config.get("uncordon_after") is False:
            return [("uncordon_after_seconds", "conflicts with uncordon_after: false")]
        return []

    @classmethod
    def rbac_rules(cls, config: Any, namespace: str) -> list[api.Rule]:
        # Pods of every namespace may run on the node: listing and evicting them is cluster
        # scope. The owner's kind comes from ownerReferences: no DaemonSet read is needed.
        return [
            api.rule(None, "", "nodes", "get", "patch"),
            api.rule(None, "", "pods", "list"),
            api.rule(None, "", "pods/eviction", "create"),
        ]

    def act(self, kube: api.Kube) -> None:
        name = self.config["node"]
        node = kube.get(node_path(name), resource="nodes", namespace=None, name=name)
        evict, skipped, runners = drain_plan(self.node_pods(kube, name), self.task_name())
        if runners and not self.config.get("allow_runner_node"):
            runner = runners[0]["metadata"]
            raise api.HookFailure(
                "RunnerNode",
                f"refusing to drain node {name}: it runs this task's runner pod "
                f"{runner['namespace']}/{runner['name']} (the load would be evicted too); "
                "nothing was touched; set allow_runner_node: true to drain it anyway",
            )
        started = time.monotonic()
        cordoned = False
        if not (node.get("spec") or {}).get("unschedulable"):
            set_unschedulable(kube, name, True)
            cordoned = True
            self.record(f"Node/{name}", "", name, "cordoned", base.now_iso())
        else:
            self.record(f"Node/{name}", "", name, "already cordoned", base.now_iso())
        for pod, why in skipped:
            meta = pod["metadata"]
            self.record(f"Pod/{meta['name']}", meta["namespace"], name, f"skipped: {why}", "")
        deadline = started + float(self.config.get("timeout_seconds", 120))
        failure: api.HookFailure | None = None
        try:
            self.evict_all(kube, name, evict, deadline)
            if self.config.get("wait_deleted", True) and evict:
                self.wait_deleted(kube, name, evict, deadline)
            self.timings.append([f"drain of {name} (s)", round(time.monotonic() - started, 3)])
        except api.HookFailure as exc:
            failure = exc
        if cordoned and self.config.get("uncordon_after", True) and not self.stopping:
            after = self.config.get("uncordon_after_seconds")
            if after and failure is None:
                self.sleep(float(after))
            set_unschedulable(kube, name, False)
            self.record(f"Node/{name}", "", name, "uncordoned", base.now_iso())
        if failure is not None:
            raise failure

    @staticmethod
    def task_name() -> str | None:
        return os.environ.get("KRALLY_TASK_NAME") or None

    def node_pods(self, kube: api.Kube, node: str) -> list[dict[str, Any]]:
        found = kube.get(
            api.api_path("", "v1", "pods", None),
            verb="list",
            resource="pods",
            namespace=None,
            query={"fieldSelector": f"spec.nodeName={node}"},
        )
        return list(found.get("items") or [])

    def evict_all(
        self, kube: api.Kube, node: str, pods: list[dict[str, Any]], deadline: float
    ) -> None:
        pending = list(pods)
        blocked: dict[str, str] = {}
        while pending:
            still = []
            for pod in pending:
                meta = pod["metadata"]
                status, data = self.evict(kube, meta["namespace"], meta["name"])
                key = f"{meta['namespace']}/{meta['name']}"
                if status == 429:
                    blocked[key] = eviction_message(data)
                    still.append(pod)
                    continue
                blocked.pop(key, None)
                action = "evicted" if status < 300 else "already gone"
                self.record(f"Pod/{meta['name']}", meta["namespace"], node, action, base.now_iso())
            pending = still
            if not pending:
                return
            if time.monotonic() >= deadline:
                first = pending[0]["metadata"]
                key = f"{first['namespace']}/{first['name']}"
                for pod in pending:
                    meta = pod["metadata"]
                    self.record(
                        f"Pod/{meta['name']}", meta["namespace"], node, "eviction blocked", ""
                    )
                raise api.HookFailure(
                    "EvictionBlocked",
                    f"drain of node {node} did not finish within "
                    f"{self.config.get('timeout_seconds', 120):g} s: eviction of pod {key} "
                    f"still refused: {blocked.get(key, '')}"
                    + (f" (and {len(pending) - 1} more pod(s))" if len(pending) > 1 else ""),
                    "\n".join(f"{k}: {v}" for k, v in blocked.items()),
                )
            self.sleep(min(RETRY_SECONDS, max(deadline - time.monotonic(), 0.01)))

    def evict(self, kube: api.Kube, namespace: str, name: str) -> tuple[int, Any]:
        body: dict[str, Any] = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        if "grace_period_seconds" in self.config:
            body["deleteOptions"] = {"gracePeriodSeconds": self.config["grace_period_seconds"]}
        return kube.request(
            "POST",
            api.api_path("", "v1", "pods/eviction", namespace, name),
            verb="create",
            resource="pods/eviction",
            namespace=namespace,
            name=name,
            body=body,
            ok_statuses=(404, 429),
        )

    def wait_deleted(
        self, kube: api.Kube, node: str, pods: list[dict[str, Any]], deadline: float
    ) -> None:
        uids = {p["metadata"]["uid"] for p in pods}

        def gone() -> bool:
            left = [p for p in self.node_pods(kube, node) if p["metadata"]["uid"] in uids]
            self.last_state = "still there: " + ", ".join(
                f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in left[:10]
            )
            return not left

        self.poll(
            gone,
            max(deadline - time.monotonic(), 0.0),
            f"evicted pods of node {node} deleted",
        )
