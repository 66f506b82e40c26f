"""A scenario for the real node's tests only (it ships in the `alt` image, never in krally's):
each iteration keeps `megabytes` more memory, so a runner pod with a memory limit is OOM-killed
after a few recorded iterations."""

from __future__ import annotations

import time

from krally.task import scenario

_kept: list[bytes] = []


@scenario.configure(name="KrallyTest.keep_memory")
class KeepMemory(scenario.Scenario):
    def run(self, megabytes: int = 1, sleep: float = 0.05) -> None:
        _kept.append(b"\x01" * (megabytes << 20))  # bytes filled in: the pages are really used
        time.sleep(sleep)
