"""The runner pod's two calls on its task: the merge patch of ``status.runner`` and a GET of
the task. In a pod: the lean standard-library client over one kept-alive connection
(:class:`~krally.kube.pods.taskwatch.StatusPatcher`); outside one (a kubeconfig): the
``kubernetes`` package, from :mod:`krally.kube.client` either way."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from krally.api import names
from krally.kube import client
from krally.kube.pods import taskwatch

log = logging.getLogger("krally.runner")

# Each status write gives up after this many seconds (then it is retried): a hung connection
# during an API outage must not stall the writer.
REQUEST_TIMEOUT = 15.0
# A pod may start a moment before its credentials are usable: tries, half a second apart.
CONNECT_ATTEMPTS = 20

Patch = Callable[[dict[str, Any]], Any]
ReadTask = Callable[[], dict[str, Any]]


def _custom_objects() -> Any:
    # Imported here: in a pod the runner never needs the package (tens of MB).
    from kubernetes.client import CustomObjectsApi  # noqa: PLC0415 (lazy)

    return CustomObjectsApi(client.api_client())


def make_patcher(namespace: str, name: str, in_pod: bool) -> Patch:
    """A callable sending ``{"status": {"runner": state}}`` as a merge patch to /status."""
    if in_pod:
        patcher = taskwatch.StatusPatcher(
            client.ApiEndpoint.in_cluster(), namespace, name, REQUEST_TIMEOUT
        )
        return lambda state: patcher({"status": {"runner": state}})
    api = _custom_objects()

    def patch(state: dict[str, Any]) -> None:
        api.patch_namespaced_custom_object_status(
            names.GROUP,
            names.VERSION,
            namespace,
            names.PLURAL,
            name,
            {"status": {"runner": state}},
            _request_timeout=REQUEST_TIMEOUT,
        )

    return patch


def make_reader(namespace: str, name: str, in_pod: bool) -> ReadTask:
    """A callable returning the task (one GET)."""
    if in_pod:
        endpoint = client.ApiEndpoint.in_cluster()
        return lambda: taskwatch.get_task(endpoint, namespace, name)
    api = _custom_objects()
    return lambda: api.get_namespaced_custom_object(
        names.GROUP, names.VERSION, namespace, names.PLURAL, name, _request_timeout=REQUEST_TIMEOUT
    )


def patcher_with_retry(namespace: str, name: str, in_pod: bool) -> Patch:
    """:func:`make_patcher`, retried while the pod's credentials are not usable yet; the last
    failure is raised."""
    for attempt in range(CONNECT_ATTEMPTS):
        try:
            return make_patcher(namespace, name, in_pod)
        except Exception as exc:
            if attempt == CONNECT_ATTEMPTS - 1:
                raise
            log.warning("kubernetes client not ready (%s); retrying", exc)
            time.sleep(0.5)
    raise AssertionError("unreachable")
