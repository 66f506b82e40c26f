"""``krally demo-server``: a small HTTP service to disrupt, for the examples and the e2e tests.

It answers ``GET /`` with 200 and the name of the pod that served it (``$POD_NAME`` or the host
name) after ``--delay`` seconds, serving at most ``--capacity`` requests at a time (the others
queue, as on a saturated replica: losing a replica then shows as latency, not only errors), and
``GET /healthz`` at once (the readiness probe). On SIGTERM it stops at once by default, as a
service without graceful shutdown does: requests still routed to it in the moment before its
endpoint is removed fail, which is what a disruption benchmark should see. ``--drain-seconds``
keeps serving that long after SIGTERM instead (the graceful variant, to compare).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class DemoServer(ThreadingHTTPServer):
    daemon_threads = True
    # Pending connections the kernel queues: a replica under load keeps them rather than refuse.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], delay: float, capacity: int | None) -> None:
        super().__init__(address, _Handler)
        self.delay = delay
        self.slots = threading.BoundedSemaphore(capacity) if capacity else None
        self.name = os.environ.get("POD_NAME") or socket.gethostname()
        self.served = 0


class _Handler(BaseHTTPRequestHandler):
    server: DemoServer
    protocol_version = "HTTP/1.1"  # keep-alive for clients that reuse connections

    def do_GET(self) -> None:
        if self.path.startswith("/healthz"):
            self._reply(b"ok\n")
            return
        slots = self.server.slots
        if slots is not None:
            slots.acquire()
        try:
            if self.server.delay:
                time.sleep(self.server.delay)
            self.server.served += 1
        finally:
            if slots is not None:
                slots.release()
        self._reply(self.server.name.encode() + b"\n")

    def _reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would flood the pod log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="krally demo-server", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds each answer takes (0)")
    parser.add_argument(
        "--capacity", type=int, default=0, help="requests served at a time (0: no limit)"
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=0.0,
        help="keep serving this long after SIGTERM (0: stop at once, like a service without "
        "graceful shutdown)",
    )


def run(args: argparse.Namespace) -> int:
    if args.delay < 0 or args.capacity < 0 or args.drain_seconds < 0:
        print("krally demo-server: --delay, --capacity and --drain-seconds must be >= 0")
        return 2
    server = DemoServer(("", args.port), args.delay, args.capacity or None)

    def on_term(signum: int, _frame: Any) -> None:
        print(f"{signal.Signals(signum).name}: served {server.served} requests", flush=True)
        if args.drain_seconds:
            threading.Timer(args.drain_seconds, os._exit, (0,)).start()
        else:
            os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    print(f"{server.name}: serving on :{args.port}, delay {args.delay}s", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
