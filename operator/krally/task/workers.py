"""The process machinery under the runner plugins: fork, pipes, shared counters, ctypes
timeouts. Plugins never import this module; their API is :mod:`krally.task.runner`.

Execution model, and why:

* Like Rally, the load is split over ``processes = min(cpu_count, max_cpu_count, times,
  concurrency)`` worker processes, each running its share of the concurrency in threads, so a
  CPU-bound scenario is not capped by one GIL. When that is one process (concurrency 1, or
  ``max_cpu_count: 1``) the threads run in the calling process instead: no IPC at all, and
  ``on_iteration_start`` is called synchronously by the iteration's own thread (hook lag is a
  few microseconds).
* Worker processes are forked (plugins loaded from ``--plugin-path`` are inherited). Iteration
  numbers come from one counter shared by all processes under one lock; the worker that takes
  number N writes it to a single shared event pipe while still holding the lock, so start events
  reach the parent immediately and in order (an 8-byte write is atomic on a pipe).
* Records travel in pickled batches over one pipe per worker (flushed every 10 ms or every
  1024 records), so the per-iteration IPC cost is a fraction of a microsecond. A full pipe
  blocks the worker: memory stays bounded when the consumer is slower than the load.
* The parent dispatches events before results (every 32 records it drains the event pipe
  again), so ``on_iteration_start(n)`` always precedes ``on_result`` of iteration n and is never
  stuck behind a long batch.
* ``abort`` (a ``threading.Event``) is checked before each new iteration starts; running
  iterations finish. Worker processes see it through a shared flag set by the parent.
* A per-iteration ``timeout`` raises ``ThreadTimeoutException`` inside the iteration's thread
  (as Rally does, via ``PyThreadState_SetAsyncExc``), so the iteration records that error.
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import os
import pickle
import selectors
import signal
import struct
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from krally.errors import KrallyError
from krally.task.shard import Shard

OnStart = Callable[[int], None]
OnResult = Callable[[dict[str, Any]], None]

_EVENT = struct.Struct("<q")
FLUSH_INTERVAL = 0.01  # seconds a finished record may wait in a worker before being sent
FLUSH_RECORDS = 1024  # ... or this many records, whichever comes first
_EVENT_CHECK_EVERY = 32
EVENT_PIPE_BYTES = 4096
WORKER_NICENESS = 5  # records dispatched between two looks at the event pipe


# Where iteration numbers come from, and where records go


class _Value:
    """A plain counter/flag with the ``.value`` of multiprocessing's RawValue."""

    __slots__ = ("value",)

    def __init__(self, value: int = 0):
        self.value = value


WHOLE = Shard()


class Gate:
    """Hands out iteration numbers in start order and announces each start: 1, 2, ... or, for
    one ``shard`` of a distributed load, its global numbers. ``limit`` counts this load's own
    iterations."""

    def __init__(
        self,
        limit: int | None,
        lock: Any,
        counter: Any,
        stop: Any,
        announce: OnStart,
        abort: threading.Event | None = None,
        shard: Shard = WHOLE,
    ):
        self.limit = limit
        self._lock, self._counter, self._stop = lock, counter, stop
        self._announce = announce
        self._abort = abort
        # Shard.global_number, inlined: this runs once per iteration.
        self._stride, self._offset = shard.count, shard.index

    def halt(self) -> None:
        """Start no more iterations (running ones finish)."""
        self._stop.value = 1

    def stopped(self) -> bool:
        return bool(self._stop.value) or (self._abort is not None and self._abort.is_set())

    def claim(self) -> int | None:
        """The next iteration number, or None when the load is over or aborted."""
        with self._lock:
            if self._stop.value or (self._abort is not None and self._abort.is_set()):
                return None
            number = self._counter.value
            if self.limit is not None and number >= self.limit:
                return None
            number += 1
            self._counter.value = number
            if self._stride != 1:
                number = (number - 1) * self._stride + self._offset + 1
            # Announced under the lock so start events are emitted in number order.
            self._announce(number)
            return number


class _DirectSink:
    """In-process delivery: callbacks are serialised by a lock."""

    def __init__(self, on_result: OnResult):
        self._on_result = on_result
        self._lock = threading.Lock()

    def put(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._on_result(record)

    def close(self) -> None:
        pass


class _BatchSink:
    """Worker-process delivery: records are pickled in batches by a flusher thread."""

    def __init__(self, conn: Any):
        self._conn = conn
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._batch: list[dict[str, Any]] = []
        self._closed = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="krally-flush", daemon=True)
        self._flusher.start()

    def put(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._batch.append(record)
            full = len(self._batch) >= FLUSH_RECORDS
        if full:
            self.flush()  # inline: a slow consumer slows the load instead of growing memory

    def flush(self) -> None:
        with self._send_lock:
            with self._lock:
                batch, self._batch = self._batch, []
            if batch:
                self._conn.send_bytes(pickle.dumps(("records", batch), pickle.HIGHEST_PROTOCOL))

    def _flush_loop(self) -> None:
        try:
            while not self._closed.wait(FLUSH_INTERVAL):
                self.flush()
        except OSError:
            self._closed.set()  # the parent is gone; the next inline flush raises for the caller

    def close(self) -> None:
        self._closed.set()
        self._flusher.join()
        self.flush()


class Sink(Protocol):
    """Where a worker's records go (in process: the callback; in a worker process: a pipe)."""

    def put(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


# What a worker runs: its share of the load, given its gate, sink, index and concurrency share.
WorkerBody = Callable[[Gate, Sink, int, int], None]


@dataclass
class WorkerSpec:
    """Everything one forked worker process needs (all inherited through fork, never pickled)."""

    body: WorkerBody
    index: int  # this worker's position among the processes
    share: int  # its share of the concurrency
    limit: int | None  # the iteration limit of the whole load
    lock: Any  # guards the shared counter and the event pipe
    counter: Any  # the last iteration number handed out (shared)
    stop: Any  # set: start no more iterations (shared)
    event_r: int  # the shared start-event pipe (the worker closes its read end)
    event_w: int
    conn: Any  # this worker's result pipe
    siblings: list[Any] = field(default_factory=list)  # earlier workers' pipe ends, to close
    shard: Shard = WHOLE


def run_in_process(
    body: WorkerBody,
    concurrency: int,
    limit: int | None,
    on_iteration_start: OnStart,
    on_result: OnResult,
    abort: threading.Event,
    shard: Shard = WHOLE,
) -> None:
    """The whole load in this process's threads: no IPC at all."""
    gate = Gate(limit, threading.Lock(), _Value(), _Value(), on_iteration_start, abort, shard)
    body(gate, _DirectSink(on_result), 0, concurrency)


def run_in_processes(
    body: WorkerBody,
    shares: list[int],
    limit: int | None,
    on_iteration_start: OnStart,
    on_result: OnResult,
    abort: threading.Event,
    shard: Shard = WHOLE,
) -> None:
    """The load over one forked worker process per share; events and records come back over
    pipes and are dispatched here, start events first."""
    mp = multiprocessing.get_context("fork")
    stop = mp.RawValue("b", 1 if abort.is_set() else 0)
    event_r, event_w = os.pipe()
    # A small pipe bounds how far start events can queue up behind a saturated parent
    # (512 events): workers then wait, instead of hooks firing late.
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(event_w, fcntl.F_SETPIPE_SZ, EVENT_PIPE_BYTES)
    processes: list[Any] = []
    conns: list[Any] = []
    try:
        shared = (mp.Lock(), mp.RawValue("q", 0), stop)
        for index, share in enumerate(shares):
            recv, send = mp.Pipe(duplex=False)
            spec = WorkerSpec(
                body, index, share, limit, *shared, event_r, event_w, send, list(conns), shard
            )
            proc = mp.Process(
                target=_child_main, args=(spec,), name=f"krally-runner-{index}", daemon=True
            )
            proc.start()
            send.close()
            processes.append(proc)
            conns.append(recv)
    finally:
        os.close(event_w)
    try:
        failures = _Dispatcher(event_r, conns, on_iteration_start, on_result, abort, stop).run()
    except BaseException:
        stop.value = 1
        raise
    finally:
        os.close(event_r)
        for conn in conns:
            conn.close()
        _reap(processes)
    if failures:
        raise KrallyError(f"runner worker process failed: {failures[0]}")


def _reap(processes: list[Any]) -> None:
    """Wait for the workers; those that do not end are terminated, then killed."""
    for proc in processes:
        proc.join(5)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()


def _child_main(spec: WorkerSpec) -> None:
    os.close(spec.event_r)
    # Fork copies the parent's ends of the earlier workers' result pipes: close them, or a
    # worker blocked on a full pipe would never see the parent stop reading (no EPIPE).
    for sibling in spec.siblings:
        sibling.close()
    # Fork also copies the parent's Python-level SIGTERM handler (the runner pod installs one);
    # terminate() must end a worker for real.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Ctrl-C reaches the whole process group: the parent decides (it stops the load and the
    # workers exit after their running iterations), so the workers ignore it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Slightly lower CPU priority than the parent: when the load saturates the CPUs the
    # parent still dispatches start events (hooks) and results promptly.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    pack, event_w, conn = _EVENT.pack, spec.event_w, spec.conn

    def announce(number: int) -> None:
        os.write(event_w, pack(number))

    sink = _BatchSink(conn)
    try:
        gate = Gate(spec.limit, spec.lock, spec.counter, spec.stop, announce, shard=spec.shard)
        spec.body(gate, sink, spec.index, spec.share)
        sink.close()
        conn.send_bytes(pickle.dumps(("done", None)))
    except (BrokenPipeError, ConnectionResetError):
        return  # the parent stopped listening (it failed or was interrupted): just end
    except BaseException as exc:
        with contextlib.suppress(Exception):
            sink.close()
        with contextlib.suppress(Exception):
            conn.send_bytes(
                pickle.dumps(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
            )
        raise SystemExit(1) from None  # the parent reports it; no second traceback here


class _Dispatcher:
    """The parent's loop: start events first, then result batches, until every worker ends."""

    def __init__(
        self,
        event_r: int,
        conns: list[Any],
        on_iteration_start: OnStart,
        on_result: OnResult,
        abort: threading.Event,
        stop: Any,
    ) -> None:
        self.event_r = event_r
        self.on_iteration_start = on_iteration_start
        self.on_result = on_result
        self.abort = abort
        self.stop = stop
        self.pending = b""
        self.events_open = True
        self.selector = selectors.DefaultSelector()
        self.open_conns = {conn.fileno(): conn for conn in conns}
        self.failures: list[str] = []

    def run(self) -> list[str]:
        """Dispatch until every worker ended; the failures they reported."""
        os.set_blocking(self.event_r, False)
        self.selector.register(self.event_r, selectors.EVENT_READ)
        for fd in self.open_conns:
            self.selector.register(fd, selectors.EVENT_READ)
        try:
            while self.open_conns or self.events_open:
                if self.abort.is_set():
                    self.stop.value = 1
                ready = self.selector.select(timeout=0.05)
                self.drain_events()
                for key, _ in ready:
                    conn = self.open_conns.get(key.fd)
                    if conn is not None:
                        self.receive(key.fd, conn)
            self.drain_events()
        finally:
            self.selector.close()
        return self.failures

    def receive(self, fd: int, conn: Any) -> None:
        """One message of a worker: a batch of records, its end, or its failure."""
        try:
            kind, payload = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            kind, payload = "error", "exited without reporting"
        if kind == "records":
            on_result = self.on_result
            for i, record in enumerate(payload, 1):
                on_result(record)
                if i % _EVENT_CHECK_EVERY == 0:
                    self.drain_events()
            if self.abort.is_set():
                self.stop.value = 1
            return
        if kind == "error":
            self.failures.append(payload)
            self.stop.value = 1
        self.selector.unregister(fd)
        del self.open_conns[fd]

    def drain_events(self) -> None:
        """Every start event the pipe holds, in order (8 bytes each; a read may split one)."""
        while self.events_open:
            try:
                chunk = os.read(self.event_r, 65536)
            except BlockingIOError:
                return
            if not chunk:
                self.events_open = False
                self.selector.unregister(self.event_r)
                return
            data = self.pending + chunk if self.pending else chunk
            whole = len(data) - len(data) % 8
            for (number,) in _EVENT.iter_unpack(data[:whole] if whole != len(data) else data):
                self.on_iteration_start(number)
            self.pending = data[whole:]
            if len(chunk) < 65536:
                return
