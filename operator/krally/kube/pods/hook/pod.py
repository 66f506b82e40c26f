"""The hook pod (``krally hook run``): runs one firing of a hook plugin, synchronously.

Input: env KRALLY_HOOK (JSON written by the operator into the Job: name, args, triggeredBy,
timeoutSeconds). Output: Rally's HookResult as JSON, in the container's termination message
(where the operator reads it) and on stdout. The termination message is limited to 4096 bytes,
so a large result is cut down (output first, then error details) and marked ``truncated``,
always staying valid JSON.

Exit code: 0 when the hook succeeded, 1 when it ran and failed (so ``kubectl get jobs`` shows
it), 2 when it could not even be started; the JSON says why in every case. An armed pod
(payload ``armed``) first waits for its firing (:mod:`.armed`), and exits 3 when stopped before
it (``wire.DISARMED_EXIT``: the Job starts a replacement).
"""

from __future__ import annotations

import copy
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from krally.api import wire
from krally.api.types import failed_now, hook_error
from krally.errors import KrallyError
from krally.kube.client import ApiEndpoint
from krally.kube.pods import podsignals, taskwatch
from krally.kube.pods.hook import armed as armedpod
from krally.kube.pods.hook import signal as firingsignal
from krally.task import plugin
from krally.task.hook import Hook

MAX_MESSAGE = 4096
# How long the main thread waits for the thread that stopped the hook to end the process.
ENDING_GRACE = 30.0
DEFAULT_TERMINATION_LOG = "/dev/termination-log"


def _dump(result: dict[str, Any]) -> str:
    return json.dumps(result, separators=(",", ":"), sort_keys=True, default=str)


def fit(result: dict[str, Any], limit: int = MAX_MESSAGE) -> str:
    """``result`` as JSON of at most ``limit`` bytes; trimmed fields are named in ``truncated``."""
    text = _dump(result)
    if len(text.encode()) <= limit:
        return text
    result = copy.deepcopy(result)
    result["truncated"] = True
    # Cheapest loss first: chart output, then error details, then the error message.
    output = result.get("output")
    if isinstance(output, dict):
        for kind in ("complete", "additive"):
            while output.get(kind) and len(_dump(result).encode()) > limit:
                output[kind].pop()
        if len(_dump(result).encode()) > limit or not any(output.values()):
            result.pop("output", None)
    error = result.get("error")
    if isinstance(error, dict):
        for key in ("details", "msg"):
            value = str(error.get(key) or "")
            while len(_dump(result).encode()) > limit and value:
                over = len(_dump(result).encode()) - limit
                # Keep the end of the text: a traceback's or stderr's last lines matter most.
                cut = max(over + 16, len(value) // 4)
                value = value[cut:]
                error[key] = "..." + value if value else ""
    text = _dump(result)
    if len(text.encode()) > limit:
        # Still too long (huge triggered_by value?): keep only the essentials.
        minimal = {k: result.get(k) for k in ("status", "started_at", "finished_at")}
        minimal["truncated"] = True
        if isinstance(error, dict):
            minimal["error"] = hook_error(
                str(error.get("etype", ""))[:200], str(error.get("msg", ""))[:1000]
            )
        text = _dump(minimal)
    return text


def _write(text: str, path: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        print(f"krally hook run: cannot write termination message {path}: {exc}", file=sys.stderr)


def failed_result(triggered_by: dict[str, Any], etype: str, msg: str, details: str = "") -> dict:
    return failed_now(triggered_by, hook_error(etype, msg, details))


def prepare_hook(payload: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
    """(the hook instance ready to run, None) or (None, the failed result saying why not)."""
    triggered_by = payload.get("triggeredBy") or {}
    try:
        hook_cls = Hook.get(payload["name"])
        problems = hook_cls.validate_config(payload.get("args"), "args")
        if problems:
            return None, failed_result(triggered_by, "InvalidConfig", str(problems[0]))
        hook = hook_cls(None, copy.deepcopy(payload.get("args")), triggered_by)
    except KrallyError as exc:
        return None, failed_result(triggered_by, type(exc).__name__, str(exc))
    return hook, None


def _finish(result: dict[str, Any], path: str) -> None:
    text = fit(result)
    _write(text, path)
    print(text, flush=True)


def main(
    argv_path: str | None = None,
    payload: dict[str, Any] | None = None,
    task_states: Iterable[dict[str, Any]] | None = None,
) -> int:
    """Run one firing. An armed payload first waits for the firing in ``task_states`` (default:
    a watch on the pod's own task)."""
    path = argv_path or os.environ.get(wire.ENV_TERMINATION_LOG) or DEFAULT_TERMINATION_LOG
    try:
        payload = payload if payload is not None else json.loads(os.environ[wire.ENV_HOOK])
    except (KeyError, ValueError) as exc:
        _finish(failed_result({}, "BadPayload", f"KRALLY_HOOK missing or not JSON: {exc}"), path)
        return wire.EXIT_INCOMPLETE
    run = HookRun(payload, path)
    with podsignals.handling(run.on_term, signal.SIGTERM):
        result = run.run(task_states)
        if result is None:
            return wire.EXIT_OK  # never reached: already reported
        ended_elsewhere = run.end()
    if ended_elsewhere:
        # The timeout or a signal stopped the hook (whose run() may then return as if it had
        # succeeded): that thread writes the result and ends the process; never overwrite it.
        time.sleep(ENDING_GRACE)
        return wire.EXIT_FAILED
    _finish(result, path)
    return wire.EXIT_OK if result.get("status") == "success" else wire.EXIT_FAILED


class HookRun:
    """One firing in this pod, and the race between its end and a stop (SIGTERM, the armed
    pod's own timeout): whichever comes first writes the result, once."""

    def __init__(self, payload: dict[str, Any], path: str) -> None:
        self.payload, self.path = payload, path
        self.triggered_by = payload.get("triggeredBy") or {}
        self.armed: dict[str, Any] | None = payload.get("armed") or None
        self.timeout = payload.get("timeoutSeconds")
        self.lock = threading.Lock()
        self.done = False  # the result is written (or being written)
        self.running = False  # the hook began: never disarmed, never replaced
        self.hooks: list[Any] = []  # what a stop must stop

    def run(self, task_states: Iterable[dict[str, Any]] | None) -> dict[str, Any] | None:
        """The firing's result; None when it never came (the result is written already)."""
        try:
            plugin.load_builtin_plugins()
            hook, failed = prepare_hook(self.payload)
            if failed is not None:
                return failed
            if self.armed is None:
                return self.execute(hook)
            hook.prepare()  # while the pod waits, not after the firing
            outcome = _await_firing(self.payload, self.armed, task_states)
            if outcome.firing is None:
                with self.lock:
                    self.done = True
                _finish({"status": "unreached", "reason": outcome.unreached}, self.path)
                return None
            return self.fire_armed(hook, outcome.firing)
        except Exception as exc:  # anything unexpected still ends as a readable failed result
            return failed_result(self.triggered_by, type(exc).__name__, str(exc))

    def end(self) -> bool:
        """Claim the result's write; True when a stop already did."""
        with self.lock:
            ended_elsewhere = self.done
            self.done = True
        return ended_elsewhere

    def execute(self, hook: Any) -> dict[str, Any]:
        self.hooks.append(hook)
        hook.run_sync()
        return hook.result() or failed_result(self.triggered_by, "NoResult", "hook gave no result")

    def stop_with(self, etype: str, msg: str) -> None:
        with self.lock:
            if self.done:
                return
            self.done = True
        for hook in self.hooks:
            hook.stop()
        _finish(failed_result(self.triggered_by, etype, msg), self.path)
        os._exit(wire.EXIT_FAILED)

    def on_term(self, signum: int, _frame: Any) -> None:
        # activeDeadlineSeconds (timeout) or deletion: stop the hook's processes and say why;
        # the kubelet would otherwise record only "Error" with no result.
        with self.lock:
            disarm = self.armed is not None and not self.running and not self.done
            if disarm:
                self.done = True
        name = signal.Signals(signum).name
        if disarm:
            # Not fired yet: nothing ran, so the Job may start a replacement pod.
            _finish({"status": "disarmed", "reason": name}, self.path)
            os._exit(wire.DISARMED_EXIT)
        timed = bool(self.timeout) and self.armed is None
        self.stop_with(
            "Timeout" if timed else "Terminated",
            f"hook pod received {name}"
            + (f" (timeout {self.timeout} s or deletion)" if timed else ""),
        )

    def fire_armed(self, hook: Any, firing: dict[str, Any]) -> dict[str, Any]:
        """Run the armed hook now, unless its firing is already too old (a replacement pod
        started long after it): the same Late rule the operator applies to a Job created too
        late."""
        max_delay = (self.armed or {}).get("maxDelaySeconds")
        late = armedpod.delay(firing, time.time())
        if isinstance(max_delay, int | float) and late is not None and late > max_delay:
            return failed_result(
                self.triggered_by,
                "Late",
                f"not run: the armed pod saw its firing {late:.0f} s after it happened "
                f"(maxDelaySeconds {max_delay})",
            )
        with self.lock:
            if self.done:
                return failed_result(
                    self.triggered_by, "Terminated", "hook pod stopped before firing"
                )
            self.running = True
        if self.timeout:
            # An armed Job has no activeDeadlineSeconds (it waits first): the pod keeps the
            # timeout.
            timer = threading.Timer(
                float(self.timeout),
                self.stop_with,
                ("Timeout", f"hook did not finish within its timeout of {self.timeout} s"),
            )
            timer.daemon = True
            timer.start()
        return self.execute(hook)


def _await_firing(
    payload: dict[str, Any],
    armed: dict[str, Any],
    task_states: Iterable[dict[str, Any]] | None,
) -> armedpod.Outcome:
    """Watch the task (ready once the watch is open) until the firing is recorded or cannot
    come any more."""
    triggered_by = payload.get("triggeredBy") or {}
    index, unit = int(payload.get("index", 0)), str(triggered_by.get("event_type", ""))
    value = triggered_by.get("value")
    ready = armedpod.ReadyPort(int(armed.get("readyPort") or wire.READY_PORT))
    if task_states is None:
        task_states = taskwatch.watch_task(
            os.environ[wire.ENV_TASK_NAMESPACE],
            os.environ[wire.ENV_TASK_NAME],
            ApiEndpoint.in_cluster(),
            on_connected=ready.open,
            interesting=armedpod.FiringFilter(index, value),
        )
    else:
        ready.open()

    def subscribe(address: str, on_firing: Any) -> None:
        firingsignal.subscribe(address, index, unit, value, on_firing)

    # The signal's reader thread must get the GIL at once from the watch thread.
    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(wire.SWITCH_INTERVAL)
    try:
        return armedpod.wait_for_firing(task_states, index, unit, value, subscribe)
    finally:
        ready.close()
        sys.setswitchinterval(previous_interval)
