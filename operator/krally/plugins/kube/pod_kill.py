"""Hook ``kube.pod_kill``: delete pods picked by a label selector or by name, optionally waiting
until their owner (Deployment, ReplicaSet, StatefulSet) has its desired replicas Ready again.

``count`` defaults to 1 with a selector and to every named pod with ``names``; ``percent``
rounds up (at least one pod). Only pods not already terminating are candidates. A selector
matching nothing, or fewer pods than asked, fails before anything is deleted.
"""

from __future__ import annotations

import time
from typing import Any

from krally import consts
from krally.plugins.kube import api, base, objects
from krally.task import hook


@hook.configure(name="kube.pod_kill")
class PodKill(base.KubeHook):
    """Delete ``count`` (or ``percent``) of the pods matching ``selector`` (or ``names``)."""

    TITLE = "pods deleted"
    COLUMNS = ["pod", "namespace", "node", "owner", "action", "at", "recovery (s)"]
    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA7,
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "namespace": {"type": "string", "minLength": 1},
            "selector": {"type": "string", "minLength": 1, "description": "label selector"},
            "names": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "minItems": 1,
                "uniqueItems": True,
            },
            "count": {"type": "integer", "minimum": 1},
            "percent": {"type": "number", "minimum": 1, "maximum": 100},
            "grace_period_seconds": {"type": "integer", "minimum": 0},
            "pick": {"enum": ["random", "oldest", "newest"]},
            **api.WAIT_SCHEMA,
        },
    }

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> list[tuple[str, str]]:
        problems = []
        if ("selector" in config) == ("names" in config):
            problems.append(("selector", "give exactly one of selector and names"))
        if "count" in config and "percent" in config:
            problems.append(("percent", "give count or percent, not both"))
        return problems + api.wait_problems(config)

    @classmethod
    def rbac_rules(cls, config: Any, namespace: str) -> list[api.Rule]:
        ns = config.get("namespace") or namespace
        read = "list" if config.get("selector") else "get"
        rules = [api.rule(ns, "", "pods", read, "delete")]
        if config.get("wait_ready"):
            rules += [
                api.rule(ns, "", "pods", "list"),
                api.rule(ns, "apps", "replicasets", "get"),
                api.rule(ns, "apps", "deployments", "get"),
                api.rule(ns, "apps", "statefulsets", "get"),
            ]
        return rules

    def act(self, kube: api.Kube) -> None:
        ns = self.namespace
        chosen = self.pick_pods(kube, ns)
        owners: dict[str, dict[str, Any]] = {}
        if self.config.get("wait_ready"):
            for pod in chosen:
                owners[pod["metadata"]["uid"]] = self.owner(kube, ns, pod)
        deleted_at = time.monotonic()
        self.delete_pods(kube, ns, chosen, owners)
        if self.config.get("wait_ready"):
            self.wait_recovered(
                kube, ns, owners, {p["metadata"]["uid"] for p in chosen}, deleted_at
            )

    def pick_pods(self, kube: api.Kube, ns: str) -> list[dict[str, Any]]:
        """The pods to delete: how many the config asks, picked among the candidates."""
        pods = self.candidates(kube, ns)
        names = self.config.get("names")
        try:
            wanted = objects.how_many(
                len(pods),
                self.config.get("count"),
                self.config.get("percent"),
                default=len(names) if names else 1,
            )
        except objects.SelectionError:
            asked = self.config.get("count") or (len(names) if names else 1)
            raise api.HookFailure(
                "NotEnoughPods",
                f"{asked} pod(s) to delete but only {len(pods)} "
                f"{self.what()} in namespace {ns} (not terminating); nothing deleted",
            ) from None
        return objects.choose(pods, wanted, self.config.get("pick", "random"))

    def delete_pods(
        self,
        kube: api.Kube,
        ns: str,
        chosen: list[dict[str, Any]],
        owners: dict[str, dict[str, Any]],
    ) -> None:
        """Delete each chosen pod (that very pod: a UID precondition), one row each."""
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if "grace_period_seconds" in self.config:
            body["gracePeriodSeconds"] = self.config["grace_period_seconds"]
        for pod in chosen:
            name = pod["metadata"]["name"]
            # Preconditions: never delete a newer pod that took the chosen one's name.
            body["preconditions"] = {"uid": pod["metadata"]["uid"]}
            status, _ = kube.request(
                "DELETE",
                api.api_path("", "v1", "pods", ns, name),
                verb="delete",
                resource="pods",
                namespace=ns,
                name=name,
                body=body,
                ok_statuses=(404, 409),
            )
            owner = owners.get(pod["metadata"]["uid"]) or objects.controller_of(pod)
            self.record(
                name,
                ns,
                pod["spec"].get("nodeName") or "",
                self.owner_label(owner),
                "deleted" if status < 300 else "already gone",
                base.now_iso(),
                "",
            )

    def wait_recovered(
        self,
        kube: api.Kube,
        ns: str,
        owners: dict[str, dict[str, Any]],
        killed: set[str],
        deleted_at: float,
    ) -> None:
        """wait_ready: each owner back to its desired Ready replicas; its rows get the time."""
        timeout = float(self.config.get("wait_timeout_seconds", 300))
        for owner in self.unique(owners.values()):
            label = self.owner_label(owner)

            def back(owner: dict[str, Any] = owner) -> bool:
                return self.recovered(kube, ns, owner, killed)

            self.poll(
                back,
                max(timeout - (time.monotonic() - deleted_at), 0.0),
                f"{label} in namespace {ns} back to its desired Ready replicas",
            )
            seconds = round(time.monotonic() - deleted_at, 3)
            for row in self.rows:
                if row[3] == label:
                    row[6] = seconds
            self.timings.append([f"{label} recovery (s)", seconds])

    def what(self) -> str:
        if self.config.get("selector"):
            return f"pod(s) match selector {self.config['selector']!r}"
        return f"of the named pod(s) {', '.join(self.config['names'])} exist"

    def candidates(self, kube: api.Kube, ns: str) -> list[dict[str, Any]]:
        path = api.api_path("", "v1", "pods", ns)
        if self.config.get("selector"):
            selector = self.config["selector"]
            found = kube.get(
                path,
                resource="pods",
                namespace=ns,
                verb="list",
                query={"labelSelector": selector},
            )
            pods = objects.live(found.get("items") or [])
            if not pods:
                raise api.HookFailure(
                    "NoPodsMatch",
                    f"no pods match selector {selector!r} in namespace {ns}"
                    + (" (all are terminating)" if found.get("items") else ""),
                )
            for pod in pods:
                pod.setdefault("kind", "Pod")
            return pods
        pods = []
        for name in self.config["names"]:
            pods.append(
                kube.get(
                    api.api_path("", "v1", "pods", ns, name),
                    resource="pods",
                    namespace=ns,
                    name=name,
                )
            )
        return objects.live(pods)

    def owner(self, kube: api.Kube, ns: str, pod: dict[str, Any]) -> dict[str, Any]:
        """The workload that recreates ``pod``: its Deployment (through the ReplicaSet), its
        StatefulSet or its bare ReplicaSet. HookFailure when it has none."""
        ref = objects.controller_of(pod)
        name = pod["metadata"]["name"]
        if ref is None or ref.get("kind") not in ("ReplicaSet", "StatefulSet"):
            kind = f"a {ref['kind']}" if ref else "no controller"
            raise api.HookFailure(
                "NoOwner",
                f"wait_ready: pod {name} in namespace {ns} has {kind}; only pods of a "
                "Deployment, ReplicaSet or StatefulSet are recreated; nothing deleted",
            )
        obj = self.get_workload(kube, ref["kind"], ns, ref["name"])
        if ref["kind"] == "ReplicaSet":
            parent = objects.controller_of(obj)
            if parent and parent.get("kind") == "Deployment":
                obj = self.get_workload(kube, "Deployment", ns, parent["name"])
        return obj

    def get_workload(self, kube: api.Kube, kind: str, ns: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = kube.get(
            objects.workload_path(kind, ns, name),
            resource=f"{objects.WORKLOADS[kind]}.apps",
            namespace=ns,
            name=name,
        )
        obj.setdefault("kind", kind)
        return obj

    @staticmethod
    def owner_label(owner: dict[str, Any] | None) -> str:
        if not owner:
            return ""
        name = owner.get("name") or (owner.get("metadata") or {}).get("name")
        return f"{owner.get('kind')}/{name}"

    @staticmethod
    def unique(owners: Any) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for owner in owners:
            seen.setdefault(owner["metadata"]["uid"], owner)
        return list(seen.values())

    def recovered(self, kube: api.Kube, ns: str, owner: dict[str, Any], killed: set[str]) -> bool:
        kind, name = owner["kind"], owner["metadata"]["name"]
        current = self.get_workload(kube, kind, ns, name)
        desired = (current.get("spec") or {}).get("replicas", 1)
        selector = objects.selector_string((current.get("spec") or {}).get("selector") or {})
        pods = kube.get(
            api.api_path("", "v1", "pods", ns),
            resource="pods",
            namespace=ns,
            verb="list",
            query={"labelSelector": selector},
        )
        ready = [
            p
            for p in pods.get("items") or []
            if p["metadata"]["uid"] not in killed and objects.pod_ready(p)
        ]
        self.last_state = f"{kind}/{name}: {len(ready)} new Ready pod(s) of {desired} desired"
        return len(ready) >= desired
