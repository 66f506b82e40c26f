"""Hook ``kube.scale``: set a Deployment's or StatefulSet's replicas through its scale
subresource, optionally scaling it back after ``restore_after_seconds`` (in the same hook run:
the hook's timeout applies) and waiting for each rollout to be Ready."""

from __future__ import annotations

import time
from typing import Any

from krally import consts
from krally.plugins.kube import api, base, objects
from krally.task import hook

KINDS = ("Deployment", "StatefulSet")


@hook.configure(name="kube.scale")
class Scale(base.KubeHook):
    """Scale a Deployment or StatefulSet to ``replicas``."""

    TITLE = "scaled"
    COLUMNS = ["object", "namespace", "action", "at", "ready after (s)"]
    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA7,
        "type": "object",
        "additionalProperties": False,
        "required": ["kind", "name", "replicas"],
        "properties": {
            "kind": {"enum": list(KINDS)},
            "name": {"type": "string", "minLength": 1},
            "namespace": {"type": "string", "minLength": 1},
            "replicas": {"type": "integer", "minimum": 0},
            "restore_after_seconds": {"type": "number", "minimum": 0},
            **api.WAIT_SCHEMA,
        },
    }

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> list[tuple[str, str]]:
        return api.wait_problems(config)

    @classmethod
    def rbac_rules(cls, config: Any, namespace: str) -> list[api.Rule]:
        ns = config.get("namespace") or namespace
        plural = objects.WORKLOADS.get(config.get("kind", ""), "deployments")
        rules = [api.rule(ns, "apps", f"{plural}/scale", "get", "patch")]
        if config.get("wait_ready"):
            rules.append(api.rule(ns, "apps", plural, "get"))
        return rules

    def act(self, kube: api.Kube) -> None:
        kind, name, ns = self.config["kind"], self.config["name"], self.namespace
        label = f"{kind}/{name}"
        resource = f"{objects.WORKLOADS[kind]}.apps/scale"
        path = objects.workload_path(kind, ns, name, "scale")
        scale = kube.get(path, resource=resource, namespace=ns, name=name)
        before = int((scale.get("spec") or {}).get("replicas") or 0)
        target = int(self.config["replicas"])
        self.scale_to(kube, path, resource, ns, name, label, before, target)
        restore = self.config.get("restore_after_seconds")
        if restore is None:
            return
        self.sleep(float(restore))
        self.scale_to(kube, path, resource, ns, name, label, target, before)

    def scale_to(
        self,
        kube: api.Kube,
        path: str,
        resource: str,
        ns: str,
        name: str,
        label: str,
        before: int,
        target: int,
    ) -> None:
        started = time.monotonic()
        kube.patch(path, {"spec": {"replicas": target}}, resource=resource, namespace=ns, name=name)
        row: list[Any] = [label, ns, f"scaled {before} -> {target}", base.now_iso(), ""]
        self.rows.append(row)
        if self.config.get("wait_ready"):
            seconds = wait_rollout(self, kube, self.config["kind"], ns, name, started)
            row[4] = seconds
            self.timings.append([f"{label} ready after scale to {target} (s)", seconds])


def wait_rollout(
    hook_: base.KubeHook, kube: api.Kube, kind: str, ns: str, name: str, started: float
) -> float:
    """Seconds from ``started`` until the workload's rollout is complete and Ready."""
    resource = f"{objects.WORKLOADS[kind]}.apps"

    def done() -> bool:
        obj = kube.get(
            objects.workload_path(kind, ns, name), resource=resource, namespace=ns, name=name
        )
        obj.setdefault("kind", kind)
        complete, why = objects.rollout_state(obj)
        hook_.last_state = f"{kind}/{name}: {why}"
        return complete

    hook_.poll(
        done,
        float(hook_.config.get("wait_timeout_seconds", 300)),
        f"{kind}/{name} in namespace {ns} Ready",
    )
    return round(time.monotonic() - started, 3)
