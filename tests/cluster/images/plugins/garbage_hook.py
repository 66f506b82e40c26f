"""A hook for the real node's tests only (it ships in the `alt` image, never in krally's): it
writes its config, verbatim, as the pod's termination message and exits 0 at once, before
`krally hook run` can write a result: a custom hook image writing anything there."""

from __future__ import annotations

import os

from krally.task import hook


@hook.configure(name="krally_test_garbage")
class GarbageHook(hook.Hook):
    CONFIG_SCHEMA = {"type": "string"}

    def run(self) -> None:
        path = os.environ.get("KRALLY_TERMINATION_LOG") or "/dev/termination-log"
        with open(path, "w", encoding="utf-8") as out:
            out.write(self.config)
        os._exit(0)
