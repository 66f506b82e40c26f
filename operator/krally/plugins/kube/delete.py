"""Hook ``kube.delete``: delete the objects a manifest names. A missing object fails the hook,
naming it, unless ``ignore_missing: true``."""

from __future__ import annotations

from typing import Any

from krally import consts
from krally.plugins.kube import api, base, objects
from krally.plugins.kube.apply import MANIFEST_SCHEMA, delete_object, manifest_problems
from krally.task import hook


@hook.configure(name="kube.delete")
class Delete(base.KubeHook):
    """Delete the objects of a manifest (only apiVersion, kind and metadata.name matter)."""

    TITLE = "objects deleted"
    COLUMNS = ["object", "namespace", "action", "at"]
    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA7,
        "type": "object",
        "additionalProperties": False,
        "required": ["manifest"],
        "properties": {
            "manifest": MANIFEST_SCHEMA,
            "namespace": {"type": "string", "minLength": 1},
            "ignore_missing": {"type": "boolean"},
        },
    }

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> list[tuple[str, str]]:
        return manifest_problems(config)

    @classmethod
    def rbac_rules(cls, config: Any, namespace: str) -> list[api.Rule]:
        return objects.object_rules(
            config.get("manifest"), config.get("namespace") or namespace, ("delete",)
        )

    def act(self, kube: api.Kube) -> None:
        ignore = bool(self.config.get("ignore_missing"))
        for obj in objects.manifest_objects(self.config["manifest"]):
            delete_object(self, kube, obj, self.namespace, ignore)
