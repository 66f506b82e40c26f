"""Serving ``/metrics`` (the Prometheus text format) for the operator and the runner pod.

Each process keeps its metrics in a :class:`prometheus_client.CollectorRegistry` of its own, never
the library's global one, so tests and several operators in one process stay apart. The
operator's metrics are in :mod:`krally.kube.operator.metrics`, the runner pod's in
:mod:`krally.kube.pods.runner.metrics`; both are served by :func:`serve`.
"""

from __future__ import annotations

import errno
import socketserver
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from prometheus_client.exposition import MetricsHandler

# The container port's name in the operator's Deployment and the runner pod, which the
# ServiceMonitor and PodMonitor (manifests/monitoring/) select.
PORT_NAME = "metrics"
PATH = "/metrics"
# `krally operator --metrics-port` (0: no metrics).
OPERATOR_PORT = 8000
# The runner pod's (beside its firing signal on 8087: wire.SIGNAL_PORT).
RUNNER_PORT = 8088


class MetricsPortError(RuntimeError):
    """The metrics port cannot be had; the message is one line naming it."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a scrape in flight never holds the process at exit

    def server_bind(self) -> None:
        # http.server's own server_bind looks the host's name up (getfqdn, possibly a DNS
        # query) for a name nothing here uses.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", self.server_address[1]


class MetricsServer:
    """``/metrics`` of one registry, served from a daemon thread."""

    def __init__(self, registry: Any, port: int, host: str = "0.0.0.0") -> None:

        class Handler(MetricsHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] not in (PATH, "/"):
                    self.send_error(404, f"metrics are at {PATH}")
                    return
                super().do_GET()

        Handler.registry = registry
        try:
            self._httpd = _Server((host, port), Handler)
        except OSError as exc:
            in_use = exc.errno == errno.EADDRINUSE
            why = "address already in use" if in_use else (exc.strerror or str(exc))
            raise MetricsPortError(f"cannot serve metrics on port {port}: {why}") from None
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="krally-metrics", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def serve(registry: Any, port: int, host: str = "0.0.0.0") -> MetricsServer:
    """Serve ``registry`` at http://host:port/metrics (port 0: any free port, see ``.port``);
    raises :class:`MetricsPortError` when the port cannot be had."""
    return MetricsServer(registry, port, host)
