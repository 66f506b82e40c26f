"""Hook ``kube.node_cordon``: mark nodes unschedulable (by name or label selector), optionally
uncordoning them after ``uncordon_after_seconds`` (only those this hook cordoned; the hook's
timeout must leave room for the wait)."""

from __future__ import annotations

from typing import Any

from krally import consts
from krally.plugins.kube import api, base
from krally.task import hook

NODES = api.api_path("", "v1", "nodes", None)


def node_path(name: str) -> str:
    return api.api_path("", "v1", "nodes", None, name)


def set_unschedulable(kube: api.Kube, name: str, value: bool) -> None:
    kube.patch(
        node_path(name),
        {"spec": {"unschedulable": value or None}},
        resource="nodes",
        namespace=None,
        name=name,
    )


@hook.configure(name="kube.node_cordon")
class NodeCordon(base.KubeHook):
    """Cordon a node (or every node matching ``selector``)."""

    TITLE = "nodes cordoned"
    COLUMNS = ["node", "action", "at"]
    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA7,
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "node": {"type": "string", "minLength": 1},
            "selector": {"type": "string", "minLength": 1, "description": "node label selector"},
            "uncordon_after_seconds": {"type": "number", "minimum": 0},
        },
    }

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> list[tuple[str, str]]:
        if ("node" in config) == ("selector" in config):
            return [("node", "give exactly one of node and selector")]
        return []

    @classmethod
    def rbac_rules(cls, config: Any, namespace: str) -> list[api.Rule]:
        read = "list" if config.get("selector") else "get"
        return [api.rule(None, "", "nodes", read, "patch")]

    def act(self, kube: api.Kube) -> None:
        if self.config.get("selector"):
            selector = self.config["selector"]
            found = kube.get(
                NODES,
                verb="list",
                resource="nodes",
                namespace=None,
                query={"labelSelector": selector},
            )
            nodes = found.get("items") or []
            if not nodes:
                raise api.HookFailure("NoNodesMatch", f"no nodes match selector {selector!r}")
        else:
            name = self.config["node"]
            nodes = [kube.get(node_path(name), resource="nodes", namespace=None, name=name)]
        cordoned = []
        for node in nodes:
            name = node["metadata"]["name"]
            if (node.get("spec") or {}).get("unschedulable"):
                self.record(name, "already cordoned (left as is)", base.now_iso())
                continue
            set_unschedulable(kube, name, True)
            cordoned.append(name)
            self.record(name, "cordoned", base.now_iso())
        after = self.config.get("uncordon_after_seconds")
        if after is None or not cordoned:
            return
        self.sleep(float(after))
        for name in cordoned:
            set_unschedulable(kube, name, False)
            self.record(name, "uncordoned", base.now_iso())
