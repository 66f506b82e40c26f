"""Hook ``kube.apply``: create or update the objects of a manifest (e.g. a NetworkPolicy that
cuts a service off) by server-side apply, optionally deleting them after
``delete_after_seconds`` (in the same hook run: the hook's timeout applies)."""

from __future__ import annotations

from typing import Any

from krally import consts
from krally.plugins.kube import api, base, objects
from krally.task import hook

MANIFEST_SCHEMA: dict[str, Any] = {
    "description": "an object, a list of objects, or YAML text of one or more documents",
    "anyOf": [
        {"type": "object"},
        {"type": "array", "items": {"type": "object"}, "minItems": 1},
        {"type": "string", "minLength": 1},
    ],
}


def manifest_problems(config: dict[str, Any]) -> list[tuple[str, str]]:
    try:
        objects.manifest_objects(config.get("manifest"))
    except ValueError as exc:
        return [("manifest", str(exc))]
    return []


def object_target(
    kube: api.Kube, obj: dict[str, Any], namespace: str
) -> tuple[str, str, str | None, str]:
    """(path, RBAC resource name, namespace or None, name) of a manifest object."""
    group, version = objects.group_version(obj["apiVersion"])
    plural, namespaced = objects.discover(kube, obj["apiVersion"], obj["kind"])
    name = obj["metadata"]["name"]
    ns = (obj["metadata"].get("namespace") or namespace) if namespaced else None
    return (
        api.api_path(group, version, plural, ns, name),
        api.resource_name(group, plural),
        ns,
        name,
    )


def delete_object(
    hook_: base.KubeHook, kube: api.Kube, obj: dict[str, Any], namespace: str, ignore_missing: bool
) -> None:
    path, resource, ns, name = object_target(kube, obj, namespace)
    status, _ = kube.request(
        "DELETE",
        path,
        verb="delete",
        resource=resource,
        namespace=ns,
        name=name,
        ok_statuses=(404,) if ignore_missing else (),
    )
    hook_.record(
        objects.object_label(obj),
        ns or "",
        "deleted" if status < 300 else "was missing",
        base.now_iso(),
    )


@hook.configure(name="kube.apply")
class Apply(base.KubeHook):
    """Server-side apply a manifest; optionally delete it again after a while."""

    TITLE = "objects applied"
    COLUMNS = ["object", "namespace", "action", "at"]
    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA7,
        "type": "object",
        "additionalProperties": False,
        "required": ["manifest"],
        "properties": {
            "manifest": MANIFEST_SCHEMA,
            "namespace": {"type": "string", "minLength": 1},
            "delete_after_seconds": {"type": "number", "minimum": 0},
        },
    }

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> list[tuple[str, str]]:
        return manifest_problems(config)

    @classmethod
    def rbac_rules(cls, config: Any, namespace: str) -> list[api.Rule]:
        # Server-side apply is a PATCH, which creates a missing object: both verbs are checked.
        verbs = (
            ("create", "patch", "delete")
            if "delete_after_seconds" in config
            else ("create", "patch")
        )
        return objects.object_rules(
            config.get("manifest"), config.get("namespace") or namespace, verbs
        )

    def act(self, kube: api.Kube) -> None:
        manifest = objects.manifest_objects(self.config["manifest"])
        for obj in manifest:
            path, resource, ns, name = object_target(kube, obj, self.namespace)
            body = dict(obj)
            if ns:
                body["metadata"] = {**obj["metadata"], "namespace": ns}
            kube.request(
                "PATCH",
                path,
                verb="patch",
                resource=resource,
                namespace=ns,
                name=name,
                body=body,
                content_type="application/apply-patch+yaml",
                query={"fieldManager": api.FIELD_MANAGER, "force": "true"},
            )
            self.record(objects.object_label(obj), ns or "", "applied", base.now_iso())
        after = self.config.get("delete_after_seconds")
        if after is None:
            return
        self.sleep(float(after))
        for obj in manifest:
            delete_object(self, kube, obj, self.namespace, ignore_missing=True)
