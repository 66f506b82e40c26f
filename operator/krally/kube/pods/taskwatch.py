"""A watch on one BenchmarkTask (the armed hook pod), its GET and its status patch (the runner
pod): the standard library only, over :class:`~krally.kube.client.ApiEndpoint`.

The armed pod waits for its firing to appear in ``status.runner.firings``. It watches its own
task (``fieldSelector=metadata.name=<task>``, which RBAC authorizes against a Role limited by
``resourceNames`` to that one task) and gets each status write within milliseconds, from the API
server's watch cache, with no operator in the path. Plain ``http.client`` instead of the
kubernetes package: the pod waits with ~15 MB of memory instead of ~60 MB and starts a second
sooner, and an armed task may keep many of them waiting.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from krally.api import names
from krally.kube.client import ApiEndpoint

# The server ends a watch after this many seconds (then it is resumed from the last version).
WATCH_SECONDS = 300
# No byte for this long on an open watch (bookmarks come every minute or so): reconnect.
READ_TIMEOUT = 90.0
_VERSION = re.compile(rb'"resourceVersion":"([0-9]+)"')


class WatchRefused(RuntimeError):
    """The API server refused the watch for good (no right to read the task, or no such task)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def task_path(namespace: str, name: str, resource_version: str = "") -> str:
    query = {
        "fieldSelector": f"metadata.name={name}",
        "watch": "1",
        "allowWatchBookmarks": "true",
        "timeoutSeconds": str(WATCH_SECONDS),
    }
    if resource_version:
        query["resourceVersion"] = resource_version
    return (
        f"/apis/{names.GROUP}/{names.VERSION}/namespaces/{namespace}/{names.PLURAL}"
        f"?{urllib.parse.urlencode(query)}"
    )


def watch_task(
    namespace: str,
    name: str,
    endpoint: ApiEndpoint,
    *,
    patience: float = 120.0,
    on_connected: Any = None,
    interesting: Callable[[bytes], bool] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the task each time it is written (first its current state), for ever: a closed or
    broken watch is resumed from the last version seen (from scratch after 410 Gone). Failures,
    refusals (401/403/404) included, are retried with a capped back-off for ``patience`` seconds
    in a row, then raised (a refusal as WatchRefused). ``on_connected()`` is called after each
    connect. ``interesting(line)``, when given, says which raw watch events are worth parsing:
    the others are skipped (their version is still kept); many armed pods watch one task, and
    parsing every status write in each of them would compete with the one that must fire."""
    cursor = _Cursor()
    failing_since: float | None = None
    attempt = 0
    while True:
        try:
            if not cursor.version:
                # The current state first, then a watch from its version (a watch with no
                # version would need the storage's watch-progress feature on some servers).
                task = _get(endpoint, object_path(namespace, name))
                cursor.version = (task.get("metadata") or {}).get("resourceVersion") or ""
                yield task
            conn, response = _open(endpoint, task_path(namespace, name, cursor.version))
            failing_since, attempt = None, 0
            if on_connected is not None:
                on_connected()
            yield from _events(response, cursor, interesting, f"{namespace}/{name}")
            conn.close()
        except (OSError, http.client.HTTPException, ValueError, WatchRefused) as exc:
            # Refusals too, for a while: the reader Role is created just before the pod, and
            # the API server's authorizer may not know it yet.
            if isinstance(exc, WatchRefused) and exc.status == 404 and cursor.version:
                raise  # the task was deleted while watched
            now = time.monotonic()
            failing_since = failing_since if failing_since is not None else now
            if now - failing_since > patience:
                if isinstance(exc, WatchRefused):
                    raise
                raise OSError(f"watch of task {namespace}/{name} failing: {exc}") from exc
            attempt += 1
            time.sleep(min(0.2 * 2 ** min(attempt, 5), 3.0))


@dataclass
class _Cursor:
    """The last resourceVersion seen ('': start again from the current state)."""

    version: str = ""


def _events(
    response: http.client.HTTPResponse,
    cursor: _Cursor,
    interesting: Callable[[bytes], bool] | None,
    task: str,
) -> Iterator[dict[str, Any]]:
    """The task as each watch event of ``response`` carries it, until the server ends the
    watch (its timeoutSeconds) or says the version is too old (410: ``cursor`` reset)."""
    while True:
        line = response.readline()
        if not line:
            return  # the server's timeoutSeconds: resume
        if interesting is not None and not interesting(line):
            # metadata sorts before spec and status: the first is the object's.
            found = _VERSION.search(line)
            cursor.version = found.group(1).decode() if found else cursor.version
            continue
        event = json.loads(line)
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                cursor.version = ""  # too old: start again from the current state
                return
            raise OSError(f"watch error: {obj.get('message') or obj}")
        cursor.version = (obj.get("metadata") or {}).get("resourceVersion") or cursor.version
        if kind in ("ADDED", "MODIFIED"):
            yield obj
        elif kind == "DELETED":
            raise WatchRefused(404, f"task {task} was deleted")


def object_path(namespace: str, name: str) -> str:
    return f"/apis/{names.GROUP}/{names.VERSION}/namespaces/{namespace}/{names.PLURAL}/{name}"


def _open(
    endpoint: ApiEndpoint, path: str
) -> tuple[http.client.HTTPSConnection, http.client.HTTPResponse]:
    conn = endpoint.connect(READ_TIMEOUT)
    conn.request(
        "GET",
        path,
        headers={"Authorization": f"Bearer {endpoint.token()}", "Accept": "application/json"},
    )
    response = conn.getresponse()
    if response.status in (401, 403, 404):
        text = response.read(2000).decode(errors="replace")
        conn.close()
        raise WatchRefused(response.status, text)
    if response.status != 200:
        text = response.read(500).decode(errors="replace")
        conn.close()
        raise OSError(f"HTTP {response.status}: {text}")
    return conn, response


def get_task(endpoint: ApiEndpoint, namespace: str, name: str) -> dict[str, Any]:
    """One GET of the task (WatchRefused on 401/403/404, OSError on other failures)."""
    return _get(endpoint, object_path(namespace, name))


def _get(endpoint: ApiEndpoint, path: str) -> dict[str, Any]:
    conn, response = _open(endpoint, path)
    try:
        value = json.loads(response.read())
    finally:
        conn.close()
    if not isinstance(value, dict):
        raise ValueError("the task is not a JSON object")
    return value


class ApiError(RuntimeError):
    """The API server answered a request with an error (``status``: its HTTP code)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class StatusPatcher:
    """Merge patches of one task's status over one kept-alive connection: the runner's firing
    writes, where the kubernetes package's per-call work (and its GIL time in a busy process)
    would add to every hook's lag. ``patcher(body)`` sends ``body``; a failed request closes the
    connection (the next one reconnects) and raises OSError, or ApiError with the status."""

    def __init__(
        self, endpoint: ApiEndpoint, namespace: str, name: str, timeout: float = 15.0
    ) -> None:
        self.endpoint, self.timeout = endpoint, timeout
        self.path = object_path(namespace, name) + "/status"
        self._conn: http.client.HTTPSConnection | None = None

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body, separators=(",", ":")).encode()
        if self._conn is None:
            self._conn = self.endpoint.connect(self.timeout)
        try:
            self._conn.request(
                "PATCH",
                self.path,
                body=data,
                headers={
                    "Authorization": f"Bearer {self.endpoint.token()}",
                    "Content-Type": "application/merge-patch+json",
                    "Accept": "application/json",
                },
            )
            response = self._conn.getresponse()
            text = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if response.status >= 300:
            raise ApiError(response.status, text[:1000].decode(errors="replace"))
        reply = json.loads(text)
        return reply if isinstance(reply, dict) else {}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
