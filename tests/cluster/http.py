"""A small JSON client for the Kubernetes API over urllib3 (the kubernetes client's transport).

The process node handles pods as plain dicts (arbitrary specs, strategic-merge status patches,
raw watch events), which is simpler and sturdier with raw JSON than with generated models.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import urllib3

JSON = dict[str, Any]


class ApiError(Exception):
    """A non-2xx answer from the API server."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        self.status = status
        self.body = body
        try:
            message = json.loads(body).get("message", body)
        except ValueError:
            message = body
        self.message = str(message)
        super().__init__(f"{method} {path}: HTTP {status}: {self.message}")


class KubeHTTP:
    """Thread-safe: one urllib3 pool shared by every thread."""

    def __init__(self, server: str, ca_file: str, token: str, timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._timeout = timeout
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=16, cert_reqs="CERT_REQUIRED", ca_certs=ca_file
        )

    def request(
        self,
        method: str,
        path: str,
        body: JSON | None = None,
        *,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> JSON:
        headers = dict(self._headers)
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body).encode()
        resp = self._pool.request(
            method,
            self.server + path + _query_string(query),
            body=data,
            headers=headers,
            timeout=self._timeout,
            retries=False,
        )
        text = resp.data.decode("utf-8", "replace")
        if resp.status >= 300:
            raise ApiError(method, path, resp.status, text)
        if "json" not in resp.headers.get("Content-Type", ""):
            return {"body": text}  # /readyz, /healthz answer plain text
        return json.loads(text) if text else {}

    def get(self, path: str, **query: str) -> JSON:
        return self.request("GET", path, query=query or None)

    def watch(self, path: str, resource_version: str, timeout_seconds: int = 300) -> Iterator[JSON]:
        """Yield watch events ({"type", "object"}) until the server ends the watch."""
        query = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        resp = self._pool.request(
            "GET",
            self.server + path + _query_string(query),
            headers=self._headers,
            preload_content=False,
            timeout=urllib3.Timeout(connect=self._timeout, read=timeout_seconds + 30),
            retries=False,
        )
        try:
            if resp.status >= 300:
                raise ApiError("WATCH", path, resp.status, resp.read().decode("utf-8", "replace"))
            buffer = b""
            for chunk in resp.stream(4096, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            resp.release_conn()


def _query_string(query: dict[str, str] | None) -> str:
    return "?" + urlencode(query) if query else ""
