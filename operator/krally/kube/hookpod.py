"""The hook pod (``krally hook run``): runs one firing of a hook plugin, synchronously.

Input: env KRALLY_HOOK (JSON written by the operator into the Job: name, args, triggeredBy,
timeoutSeconds). Output: Rally's HookResult as JSON, in the container's termination message
(where the operator reads it) and on stdout. The termination message is limited to 4096 bytes,
so a large result is cut down (output first, then error details) and marked ``truncated``,
always staying valid JSON.

Exit code: 0 when the hook succeeded, 1 when it ran and failed (so ``kubectl get jobs`` shows
it), 2 when it could not even be started; the JSON says why in every case.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import sys
import threading
from typing import Any

from krally.api.types import failed_now, hook_error
from krally.kube import podsignals

MAX_MESSAGE = 4096
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


def run_hook(payload: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Run the hook of ``payload`` synchronously; (result, hook instance or None)."""
    from krally.errors import KrallyError
    from krally.task.hook import Hook

    triggered_by = payload.get("triggeredBy") or {}
    try:
        hook_cls = Hook.get(payload["name"])
        problems = hook_cls.validate_config(payload.get("args"), "args")
        if problems:
            return failed_result(triggered_by, "InvalidConfig", str(problems[0])), None
        hook = hook_cls(None, copy.deepcopy(payload.get("args")), triggered_by)
    except KrallyError as exc:
        return failed_result(triggered_by, type(exc).__name__, str(exc)), None
    _CURRENT.append(hook)
    hook.run_sync()
    return hook.result() or failed_result(triggered_by, "NoResult", "hook gave no result"), hook


_CURRENT: list[Any] = []


def main(argv_path: str | None = None, payload: dict[str, Any] | None = None) -> int:
    path = argv_path or os.environ.get("KRALLY_TERMINATION_LOG") or DEFAULT_TERMINATION_LOG
    try:
        payload = payload if payload is not None else json.loads(os.environ["KRALLY_HOOK"])
    except (KeyError, ValueError) as exc:
        result = failed_result({}, "BadPayload", f"KRALLY_HOOK missing or not JSON: {exc}")
        text = fit(result)
        _write(text, path)
        print(text)
        return 2
    triggered_by = payload.get("triggeredBy") or {}
    done = threading.Event()

    def on_term(signum: int, _frame: Any) -> None:
        # activeDeadlineSeconds (timeout) or deletion: stop the hook's processes and say why;
        # the kubelet would otherwise record only "Error" with no result.
        if done.is_set():
            return
        for hook in _CURRENT:
            hook.stop()
        timeout = payload.get("timeoutSeconds")
        result = failed_result(
            triggered_by,
            "Timeout" if timeout else "Terminated",
            f"hook pod received {signal.Signals(signum).name}"
            + (f" (timeout {timeout} s or deletion)" if timeout else ""),
        )
        text = fit(result)
        _write(text, path)
        print(text, flush=True)
        os._exit(1)

    with podsignals.handling(on_term, signal.SIGTERM):
        try:
            from krally.task import plugin

            plugin.load_builtin_plugins()
            result, _ = run_hook(payload)
        except Exception as exc:  # anything unexpected still ends as a readable failed result
            result = failed_result(triggered_by, type(exc).__name__, str(exc))
        done.set()
    text = fit(result)
    _write(text, path)
    print(text, flush=True)
    status = result.get("status")
    return 0 if status == "success" else 1
