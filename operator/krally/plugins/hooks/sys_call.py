"""Hook ``sys_call``: run a command (Rally's ``SysCallHook``, minus its JSON-parsing bug).

The command is shlex-split and run without a shell (write ``sh -c '...'`` for pipes). Exit code
0 is success; any other is ``failed`` with Rally's error ``{etype: "n/a", msg: "Subprocess
returned N", details: stderr or "stdout: ..."}``. Stdout that is a JSON object with ``additive``
and/or ``complete`` lists becomes the hook's chart output; any other stdout (``123`` from
``/bin/echo 123``, plain text, invalid charts) is kept as a TextArea and is not an error.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from typing import Any

from krally import consts
from krally.task import charts, hook

# Text kept per stream in errors and the TextArea (the full stdout is still parsed as JSON);
# results end up in task status, which must stay small.
MAX_TEXT_CHARS = 64 * 1024


_NOT_SPAWNED: Any = object()  # run_async() did not start the process


def _clip(text: str) -> str:
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return text[:MAX_TEXT_CHARS] + f"... [{len(text) - MAX_TEXT_CHARS} more characters]"


@hook.configure(name="sys_call")
class SysCallHook(hook.Hook):
    """Performs a system call (no shell); its JSON stdout may carry Rally chart output."""

    # run_async() starts the process early; run_sync() (the hook pod) starts it in run().
    _spawned: Any = _NOT_SPAWNED

    CONFIG_SCHEMA = {
        "$schema": consts.JSON_SCHEMA,
        "type": "string",
        "minLength": 1,
        "description": "command line, split like a POSIX shell would but run without one",
    }

    def run_async(self) -> None:
        # Start the command here, in the firing thread (the runner's), then let the hook thread
        # only wait for it: the subprocess starts within Popen's own cost (~0.2 ms) even while
        # the load keeps the GIL busy, where a fresh thread could wait several switch intervals.
        self._launched_at = time.time()
        self._spawned = self._spawn()
        super().run_async()

    def _spawn(self) -> subprocess.Popen[str] | tuple[str, str, str] | None:
        """The started process, or (etype, msg, details) when it cannot start, or None when
        the hook was already stopped. Never raises: it may run on the runner's thread."""
        command: str = self.config
        try:
            args = shlex.split(command)
        except ValueError as exc:
            return "ValueError", f"cannot parse command {command!r}: {exc}", ""
        if not args:
            return "ValueError", "empty command", f"Args: {command!r}"
        try:
            return self.popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except FileNotFoundError:
            return "FileNotFoundError", f"command not found: {args[0]}", f"Args: {command}"
        except PermissionError:
            return "PermissionError", f"command is not executable: {args[0]}", f"Args: {command}"
        except hook.HookStopped:
            return None  # timed out already; the Timeout result stands
        except (OSError, ValueError) as exc:
            return type(exc).__name__, f"cannot run {args[0]}: {exc}", f"Args: {command}"

    def run(self) -> None:
        command: str = self.config
        spawned = self._spawned if self._spawned is not _NOT_SPAWNED else self._spawn()
        if spawned is None:
            return
        if isinstance(spawned, tuple):
            self.set_error(*spawned)
            return
        proc = spawned
        stdout, stderr = proc.communicate()
        if self.stopping:
            return  # killed on timeout; the Timeout result stands
        returncode = proc.returncode
        if returncode:
            self.set_error(
                exception_name="n/a",
                description=f"Subprocess returned {returncode}",
                details=_clip(stderr) if stderr else f"stdout: {_clip(stdout)}",
            )
        if not self._add_chart_output(stdout):
            self.add_output(
                complete={
                    "title": "System call",
                    "chart_plugin": "TextArea",
                    "description": f"Args: {command}",
                    "data": [
                        f"RetCode: {returncode}",
                        f"StdOut: {_clip(stdout) or '(empty)'}",
                        f"StdErr: {_clip(stderr) or '(empty)'}",
                    ],
                }
            )

    def _add_chart_output(self, stdout: str) -> bool:
        """Add the charts of a Rally output document; False if stdout is not one (or a chart is
        invalid: like Rally, charts added before the bad one stay, and the TextArea is added)."""
        try:
            document: Any = json.loads(stdout)
        except ValueError:
            return False
        if not isinstance(document, dict) or not ({"additive", "complete"} & document.keys()):
            return False
        additive = document.get("additive", [])
        complete = document.get("complete", [])
        if not isinstance(additive, list) or not isinstance(complete, list):
            return False
        try:
            for item in additive:
                self.add_output(additive=item)
            for item in complete:
                self.add_output(complete=item)
        except charts.InvalidOutput:
            return False
        return True
