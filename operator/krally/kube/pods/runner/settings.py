"""The runner pod's settings, read once from its env variables (set by the operator's runner
Job, the Job controller and the kubelet): :meth:`RunnerSettings.load`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from krally.api import wire
from krally.errors import KrallyError
from krally.kube.pods.runner.writer import PROGRESS_PERIOD

Number = TypeVar("Number", int, float)


class BadSetting(KrallyError):
    """An environment variable of the runner pod is missing or unreadable (names it)."""


@dataclass(frozen=True)
class RunnerSettings:
    """What the runner pod runs and how; ``load(env)`` is the one reader of its environment."""

    spec: dict[str, Any]
    namespace: str
    name: str
    # Seconds between two progress writes (firings are written at once).
    progress_period: float = PROGRESS_PERIOD
    # The pod's address (downward API): set only in a pod, where the runner serves the firing
    # signal and its metrics.
    pod_ip: str = ""
    # Armed hook pods the load gives a moment to subscribe to the signal.
    armed_pods: int = 0
    # Pods sharing a distributed load, and this pod's index among them.
    parallelism: int = 1
    shard_index: int = 0
    # The kubelet's KUBERNETES_SERVICE_HOST is set: the lean in-cluster client, not a kubeconfig.
    in_pod: bool = False

    @classmethod
    def load(cls, env: Mapping[str, str]) -> RunnerSettings:
        return cls(
            spec=_spec(env),
            namespace=_required(env, wire.ENV_TASK_NAMESPACE),
            name=_required(env, wire.ENV_TASK_NAME),
            progress_period=_number(env, wire.ENV_PROGRESS_PERIOD, float, PROGRESS_PERIOD),
            pod_ip=env.get(wire.ENV_POD_IP) or "",
            armed_pods=_number(env, wire.ENV_ARMED_PODS, int, 0),
            parallelism=_number(env, wire.ENV_PARALLELISM, int, 1),
            shard_index=_number(env, wire.ENV_COMPLETION_INDEX, int, 0),
            in_pod=bool(env.get("KUBERNETES_SERVICE_HOST")),
        )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise BadSetting(f"{name} is not set (the operator's runner Job sets it)")
    return value


def _spec(env: Mapping[str, str]) -> dict[str, Any]:
    text = _required(env, wire.ENV_SPEC)
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise BadSetting(f"{wire.ENV_SPEC} is not JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise BadSetting(f"{wire.ENV_SPEC} is not a JSON object (the task's spec)")
    return spec


def _number(env: Mapping[str, str], name: str, kind: type[Number], default: Number) -> Number:
    text = env.get(name)
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise BadSetting(f"{name}={text!r} is not {what}") from None
