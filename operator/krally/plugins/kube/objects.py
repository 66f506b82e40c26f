"""What the ``kube.*`` hooks act on: workloads and their rollouts, pods chosen by selector (pure
selection), and manifests with their resources and RBAC rules."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from typing import Any

import yaml

from krally.plugins.kube.api import HookFailure, Kube, Rule, api_path, rule

# -- workloads -----------------------------------------------------------------------------------

WORKLOADS = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "ReplicaSet": "replicasets",
}


def workload_path(kind: str, namespace: str, name: str, sub: str = "") -> str:
    resource = WORKLOADS[kind] + (f"/{sub}" if sub else "")
    return api_path("apps", "v1", resource, namespace, name)


def rollout_state(obj: dict[str, Any]) -> tuple[bool, str]:
    """(complete, why not): the rollout is done and every desired replica is ready."""
    kind = obj.get("kind", "")
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return False, "the controller has not observed the latest generation yet"
    if kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled", 0)
        updated = status.get("updatedNumberScheduled", 0)
        ready = status.get("numberReady", 0)
        if updated < desired or ready < desired:
            return False, f"{updated} updated, {ready} ready of {desired}"
        return True, ""
    desired = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    ready = status.get("readyReplicas", 0)
    total = status.get("replicas", 0)
    if kind == "StatefulSet" and status.get("updateRevision") != status.get("currentRevision"):
        return False, f"rolling update in progress: {updated} updated of {desired}"
    if updated < desired or ready < desired or total > desired:
        return False, f"{updated} updated, {ready} ready, {total} existing of {desired} desired"
    return True, ""


def pod_ready(pod: dict[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def selector_string(label_selector: dict[str, Any]) -> str:
    """A LabelSelector object as the ``labelSelector`` query string."""
    parts = [f"{k}={v}" for k, v in sorted((label_selector.get("matchLabels") or {}).items())]
    for expr in label_selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


# -- selection (pure) ----------------------------------------------------------------------------


class SelectionError(ValueError):
    pass


def creation_key(pod: dict[str, Any]) -> tuple[str, str]:
    meta = pod.get("metadata") or {}
    return str(meta.get("creationTimestamp") or ""), str(meta.get("name") or "")


def live(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Those not already being deleted (no deletionTimestamp)."""
    return [o for o in objects if not (o.get("metadata") or {}).get("deletionTimestamp")]


def how_many(matched: int, count: int | None, percent: float | None, default: int = 1) -> int:
    """Pods to pick of ``matched``: ``count``, or ``percent`` of them rounded up (at least one),
    else ``default``. SelectionError when more are asked than matched."""
    if percent is not None:
        wanted = max(1, math.ceil(matched * percent / 100))
    else:
        wanted = count if count is not None else default
    if wanted > matched:
        raise SelectionError(f"{wanted} asked, {matched} matched")
    return wanted


def choose(
    objects: list[dict[str, Any]],
    wanted: int,
    pick: str = "random",
    rng: random.Random | None = None,
) -> list[dict[str, Any]]:
    """``wanted`` of ``objects``: at random, the oldest or the newest (creationTimestamp)."""
    if wanted > len(objects):
        raise SelectionError(f"{wanted} asked, {len(objects)} matched")
    if pick == "oldest":
        return sorted(objects, key=creation_key)[:wanted]
    if pick == "newest":
        return sorted(objects, key=creation_key, reverse=True)[:wanted]
    return (rng or random.SystemRandom()).sample(objects, wanted)


# -- manifests -----------------------------------------------------------------------------------


def manifest_objects(manifest: Any) -> list[dict[str, Any]]:
    """A manifest (a dict, a list of dicts, or YAML text of one or more documents) as objects;
    ValueError saying what is wrong."""
    if isinstance(manifest, str):
        try:
            docs: list[Any] = [d for d in yaml.safe_load_all(manifest) if d is not None]
        except yaml.YAMLError as exc:
            raise ValueError(f"manifest is not valid YAML: {str(exc).splitlines()[0]}") from None
    elif isinstance(manifest, list):
        docs = list(manifest)
    else:
        docs = [manifest]
    objects: list[dict[str, Any]] = []
    for index, doc in enumerate(docs):
        if isinstance(doc, dict) and doc.get("kind") == "List" and "items" in doc:
            objects.extend(manifest_objects(doc["items"]))
            continue
        if not isinstance(doc, dict):
            raise ValueError(f"manifest object {index} is not a mapping")
        for key in ("apiVersion", "kind"):
            if not isinstance(doc.get(key), str) or not doc[key]:
                raise ValueError(f"manifest object {index} has no {key}")
        name = (doc.get("metadata") or {}).get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"manifest object {index} ({doc['kind']}) has no metadata.name")
        objects.append(doc)
    if not objects:
        raise ValueError("manifest holds no object")
    return objects


def group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


# Kinds whose resource name and scope krally rbac knows without asking a cluster.
KNOWN_KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("", "ConfigMap"): ("configmaps", True),
    ("", "Secret"): ("secrets", True),
    ("", "Service"): ("services", True),
    ("", "Pod"): ("pods", True),
    ("", "ServiceAccount"): ("serviceaccounts", True),
    ("", "Endpoints"): ("endpoints", True),
    ("", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("", "ResourceQuota"): ("resourcequotas", True),
    ("", "LimitRange"): ("limitranges", True),
    ("", "Namespace"): ("namespaces", False),
    ("", "Node"): ("nodes", False),
    ("", "PersistentVolume"): ("persistentvolumes", False),
    ("networking.k8s.io", "NetworkPolicy"): ("networkpolicies", True),
    ("networking.k8s.io", "Ingress"): ("ingresses", True),
    ("policy", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("apps", "Deployment"): ("deployments", True),
    ("apps", "StatefulSet"): ("statefulsets", True),
    ("apps", "DaemonSet"): ("daemonsets", True),
    ("apps", "ReplicaSet"): ("replicasets", True),
    ("batch", "Job"): ("jobs", True),
    ("batch", "CronJob"): ("cronjobs", True),
    ("rbac.authorization.k8s.io", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("scheduling.k8s.io", "PriorityClass"): ("priorityclasses", False),
    ("storage.k8s.io", "StorageClass"): ("storageclasses", False),
}


def guess_resource(group: str, kind: str) -> tuple[str, bool, bool]:
    """(plural resource, namespaced, known) of a kind, without a cluster: known kinds from a
    table, others pluralised the way the API server does for most kinds."""
    known = KNOWN_KINDS.get((group, kind))
    if known:
        return known[0], known[1], True
    lower = kind.lower()
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        plural = lower + "es"
    elif lower.endswith("y") and lower[-2:-1] not in "aeiou":
        plural = lower[:-1] + "ies"
    else:
        plural = lower + "s"
    return plural, True, False


def object_rules(manifest: Any, namespace: str, verbs: tuple[str, ...]) -> list[Rule]:
    """``verbs`` on each object of a manifest, where it lives (its metadata.namespace, else
    ``namespace``; cluster scope for cluster-scoped kinds)."""
    try:
        objects = manifest_objects(manifest)
    except ValueError:
        return []
    rules = []
    for obj in objects:
        group, _ = group_version(obj["apiVersion"])
        plural, namespaced, _ = guess_resource(group, obj["kind"])
        where = ((obj.get("metadata") or {}).get("namespace") or namespace) if namespaced else None
        rules.append(rule(where, group, plural, *verbs))
    return rules


def discover(kube: Kube, api_version: str, kind: str) -> tuple[str, bool]:
    """(plural resource, namespaced) of ``kind`` from the API server's discovery."""
    group, version = group_version(api_version)
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    status, data = kube.request(
        "GET",
        path,
        verb="get",
        resource=f"discovery {api_version}",
        namespace=None,
        ok_statuses=(404,),
    )
    for res in (data or {}).get("resources") or [] if status == 200 else []:
        if res.get("kind") == kind and "/" not in res.get("name", ""):
            return str(res["name"]), bool(res.get("namespaced"))
    raise HookFailure(
        "UnknownKind", f"the API server serves no kind {kind} in {api_version}", api_version
    )


def object_label(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
