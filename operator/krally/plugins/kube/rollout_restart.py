"""Hook ``kube.rollout_restart``: restart a Deployment, StatefulSet or DaemonSet the way
``kubectl rollout restart`` does (a new ``kubectl.kubernetes.io/restartedAt`` annotation on its
pod template), optionally waiting until the rollout is complete."""

from __future__ import annotations

import time
from typing import Any

from krally import consts
from krally.plugins.kube import api, base, objects
from krally.plugins.kube.scale import wait_rollout
from krally.task import hook

KINDS = ("Deployment", "StatefulSet", "DaemonSet")
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


@hook.configure(name="kube.rollout_restart")
class RolloutRestart(base.KubeHook):
    """Restart the pods of a workload by a rolling update."""

    TITLE = "restarted"
    COLUMNS = ["object", "namespace", "action", "at", "rollout complete after (s)"]
    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA7,
        "type": "object",
        "additionalProperties": False,
        "required": ["kind", "name"],
        "properties": {
            "kind": {"enum": list(KINDS)},
            "name": {"type": "string", "minLength": 1},
            "namespace": {"type": "string", "minLength": 1},
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
        verbs = ("patch", "get") if config.get("wait_ready") else ("patch",)
        return [api.rule(ns, "apps", plural, *verbs)]

    def act(self, kube: api.Kube) -> None:
        kind, name, ns = self.config["kind"], self.config["name"], self.namespace
        started = time.monotonic()
        at = base.now_iso()
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}
        kube.patch(
            objects.workload_path(kind, ns, name),
            patch,
            resource=f"{objects.WORKLOADS[kind]}.apps",
            namespace=ns,
            name=name,
        )
        row: list[Any] = [f"{kind}/{name}", ns, "rollout restart", at, ""]
        self.rows.append(row)
        if self.config.get("wait_ready"):
            seconds = wait_rollout(self, kube, kind, ns, name, started)
            row[4] = seconds
            self.timings.append([f"{kind}/{name} rollout (s)", seconds])
