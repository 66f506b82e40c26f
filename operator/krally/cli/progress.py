"""``krally run``'s progress: a bar on a terminal, periodic lines in logs and pipes."""

from __future__ import annotations

import argparse
import time
from typing import Any, TextIO

from krally.cli.output import err

# --- progress ----------------------------------------------------------------------------------


class PlainProgress:
    """Periodic lines for logs and pipes (every 5 s and at the end of each workload)."""

    PERIOD = 5.0

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.name = ""
        self.last_print = 0.0
        self.last: Any = None

    def start(self, index: int, workload: Any) -> None:
        self._flush()
        self.name = workload.scenario_name
        self.last, self.last_print = None, time.monotonic()

    def update(self, p: Any) -> None:
        self.last = p
        if time.monotonic() - self.last_print >= self.PERIOD:
            self._print(p)

    def _print(self, p: Any) -> None:
        self.last_print = time.monotonic()
        total = f"/{p.total}" if p.total is not None else ""
        print(
            f"{self.name}: {p.done}{total} iterations, {p.failures} failed, "
            f"hooks {p.hooks_fired} fired / {p.hooks_finished} finished, {p.elapsed:.1f} s",
            file=self.stream,
            flush=True,
        )

    def _flush(self) -> None:
        if self.last is not None:
            self._print(self.last)
            self.last = None

    def close(self) -> None:
        self._flush()


class RichProgress:
    """A progress bar on a terminal: iterations, failures, hooks fired/finished."""

    def __init__(self, stream: TextIO):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("failed {task.fields[failures]}"),
            TextColumn("hooks {task.fields[hooks]}"),
            TimeElapsedColumn(),
            console=Console(file=stream),
            transient=False,
        )
        self.progress.start()
        self.task_id: Any = None

    def start(self, index: int, workload: Any) -> None:
        self.task_id = self.progress.add_task(
            workload.scenario_name, total=None, failures=0, hooks="0 fired"
        )

    def update(self, p: Any) -> None:
        if self.task_id is None:
            return
        self.progress.update(
            self.task_id,
            completed=p.done,
            total=p.total,
            failures=p.failures,
            hooks=f"{p.hooks_fired} fired, {p.hooks_finished} done",
        )

    def close(self) -> None:
        self.progress.stop()


def progress_display(args: argparse.Namespace) -> Any:
    if args.no_progress:
        return None
    if err.isatty():
        return RichProgress(err)
    return PlainProgress(err)
