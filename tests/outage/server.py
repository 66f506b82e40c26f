"""The controlled outage's server: krally's demo server on 127.0.0.1 (loopback only).

``python server.py PORT DELAY AFTER_DELAY``: answers each ``GET /`` after DELAY seconds; on
SIGUSR1 (sent by the freeze while the server is stopped, delivered as it resumes) after
AFTER_DELAY instead, so the load's rate after the outage can be above or below the baseline's.
Prints ``ready`` once listening.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from krally.demoserver import DemoServer


class QuietServer(DemoServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # requests that timed out during the freeze: their clients are gone


def main() -> None:
    port, delay, after = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    server = QuietServer(("127.0.0.1", port), delay, None)

    def slower_or_faster(_signum: int, _frame: Any) -> None:
        server.delay = after

    signal.signal(signal.SIGUSR1, slower_or_faster)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
