"""The kubelet's `containerLogs` endpoint, so `kubectl logs [-f] [--tail N]` works on the
process node: the API server proxies it to the node's daemon endpoint over HTTPS."""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

log = logging.getLogger("process-node.logs")


class LogServer:
    """Serves <pods>/<namespace>/<pod>/<container>.log; `running(ns, pod, container)` tells
    whether a follow should wait for more output."""

    def __init__(
        self,
        pods: Path,
        cert: Path,
        key: Path,
        running: Callable[[str, str, str], bool],
    ) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.serve(self)

            def log_message(self, format: str, *args: object) -> None:
                log.debug(format, *args)

        self.pods = pods
        self.running = running
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = int(self.httpd.server_address[1])

    def start(self) -> None:
        threading.Thread(target=self.httpd.serve_forever, name="logs", daemon=True).start()

    def serve(self, request: BaseHTTPRequestHandler) -> None:
        url = urlparse(request.path)
        parts = url.path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "containerLogs":
            request.send_error(404, "the process node serves only containerLogs")
            return
        _, namespace, pod, container = parts
        path = self.pods / namespace / pod / f"{container}.log"
        if not path.is_file():
            request.send_error(404, f"no log for container {container} of pod {namespace}/{pod}")
            return
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        data = path.read_bytes()
        if "tailLines" in query:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-int(query["tailLines"]) :]) if int(query["tailLines"]) else b""
        if "limitBytes" in query:
            data = data[: int(query["limitBytes"])]
        request.send_response(200)
        request.send_header("Content-Type", "text/plain")
        request.send_header("Connection", "close")
        request.end_headers()
        request.wfile.write(data)
        if query.get("follow") not in ("true", "1"):
            return
        offset = path.stat().st_size
        try:
            while True:
                alive = self.running(namespace, pod, container)
                with path.open("rb") as f:
                    f.seek(offset)
                    chunk = f.read()
                if chunk:
                    offset += len(chunk)
                    request.wfile.write(chunk)
                    request.wfile.flush()
                if not alive:
                    return
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client stopped following
