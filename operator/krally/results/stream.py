"""``RallyJSONWriter``: Rally's import document, written while the load runs.

JSON objects are unordered, so each object is opened with the part that grows and closed with
the fields known only at its end::

    {"info": {...}, "tasks": [{"subtasks": [
        {"workloads": [{"data": [<record>, <record>, ...],   ← appended as iterations finish
                        "uuid": ..., "hooks": [...], ...}],  ← end_workload
         "uuid": ..., "title": ..., ...},                     ← end_workload (its subtask)
        ...],
      "uuid": ..., "title": ..., "pass_sla": ...}],           ← close
     "krally": {...}}                                         ← close: krally's extras

Records are encoded ``BATCH`` at a time (orjson: ~0.5 µs a record in one call, against ~6 µs
for the standard library's encoder) and written through a 1 MiB buffer, so memory is flat and
the cost per iteration (~1 µs measured inside a run) is a few per cent of the fastest
scenario's (Dummy.dummy, sleep 0: ~15-20 µs an iteration) and nothing for real ones. The writes
stay in the recording thread: a writer thread was tried and cost more on a busy machine (each
hand-over of the GIL waits for the load's thread to be scheduled again). The file is
written as ``<path>.part`` and renamed at ``close()``: a run that crashes leaves no half file
under the requested name.

The engine calls ``begin_workload``, ``record`` (under its consumer lock, so one thread at a
time) and ``end_workload``; the caller calls ``close(report)`` or ``abort()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import krally
from krally.results import rally

# Records encoded together. Small on purpose: a batch's dicts stay alive until encoded, and
# 1024 of them made the load ~10 % slower (allocator and cache pressure, extra gen-0 GCs);
# encoding each record alone keeps 1024 small bytes objects instead, which was slower still.
BATCH = 64

try:  # a well-kept C encoder, ~12x faster than json for these records
    import orjson

    def _encode_batch(batch: list[dict[str, Any]]) -> bytes:
        try:
            return orjson.dumps(batch)
        except (TypeError, orjson.JSONEncodeError):
            return _stdlib_batch(batch)

except ImportError:  # pragma: no cover - orjson is a dependency; stay correct without it

    def _encode_batch(batch: list[dict[str, Any]]) -> bytes:
        return _stdlib_batch(batch)


def _stdlib_batch(batch: list[dict[str, Any]]) -> bytes:
    return json.dumps(rally.finite(batch), separators=(",", ":"), default=str).encode()


def _encode(value: Any) -> bytes:
    return json.dumps(rally.finite(value), separators=(",", ":"), default=str).encode()


def _fields(value: dict[str, Any]) -> bytes:
    """``{"a": 1, "b": 2}`` → ``"a":1,"b":2`` (to continue an object already opened)."""
    return _encode(value)[1:-1]


class RallyJSONWriter:
    """Streams one task's results to ``path`` in the format ``rally task import`` reads."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.part = self.path.with_name(self.path.name + ".part")
        self._file = open(self.part, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in close()
        self._write = self._file.write
        self._section = rally.empty_section()
        self._batch: list[dict[str, Any]] = []  # records not yet encoded
        self._records = 0  # in the current workload
        self._workloads = 0
        self._in_workload = False
        self.records_written = 0
        info = {
            "rally_version": f"krally {krally.__version__}",
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
            "format_version": "1.2",
        }
        self._write(b'{"info":' + _encode(info) + b',"tasks":[{"subtasks":[')

    # -- the engine's calls ---------------------------------------------------------------------

    def begin_workload(self, position: int, workload: Any = None) -> None:
        if self._in_workload:
            raise RuntimeError("begin_workload: the previous workload was not ended")
        self._write((b"," if self._workloads else b"") + b'{"workloads":[{"data":[')
        self._in_workload = True
        self._records = 0
        self._workloads += 1

    def record(self, record: dict[str, Any]) -> None:
        """One finished iteration (Rally's per-iteration record)."""
        batch = self._batch
        batch.append(record)
        if len(batch) >= BATCH:
            self._flush()

    def end_workload(self, result: dict[str, Any], subtask: dict[str, Any]) -> None:
        """The workload's result (its summary) and its subtask's own fields."""
        self._flush()
        workload, extras = rally.rally_workload(result)
        if extras:
            self._section["workloads"][str(result.get("uuid"))] = extras
        self._write(b"]," + _fields(workload) + b"}]")
        fields = _fields(rally.rally_subtask(subtask))
        self._write((b"," + fields if fields else b"") + b"}")
        self._in_workload = False

    # -- the caller's -------------------------------------------------------------------------

    def close(self, report: dict[str, Any]) -> Path:
        """Finish the document with the task's fields and krally's extras; rename into place."""
        if self._in_workload:
            raise RuntimeError("close: a workload was not ended")
        task = (report.get("tasks") or [{}])[0]
        fields, extras = rally.rally_task(task)
        if extras:
            self._section["tasks"][str(task.get("uuid"))] = extras
        body = _fields(fields)
        self._write(b"]" + (b"," + body if body else b"") + b"}]")
        self._write(b',"' + rally.SECTION.encode() + b'":' + _encode(self._section) + b"}\n")
        self._file.close()
        os.replace(self.part, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file (the run failed before it could be completed)."""
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            self.part.unlink()

    # -- internals ----------------------------------------------------------------------------

    def _flush(self) -> None:
        batch = self._batch
        if not batch:
            return
        self._batch = []
        encoded = _encode_batch(batch)[1:-1]  # without the list's brackets
        self._write(b"," + encoded if self._records else encoded)
        self._records += len(batch)
        self.records_written += len(batch)
