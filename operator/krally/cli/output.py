"""What every krally command shares: exit codes, stderr for warnings and errors, loading a task
file with its plugins."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from krally.errors import KrallyError

EXIT_OK = 0
EXIT_SLA_FAILED = 1
EXIT_INVALID = 2
EXIT_RUN_ERROR = 3
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """\
exit codes (run, validate, convert, report):
  0    success: the task is valid; the run finished and its SLA passed
  1    the run finished but the SLA failed (hook failures never affect it, as in Rally)
  2    invalid task or bad input: one line per problem, naming the file and the field
  3    run error: a context or the runner crashed, or an unexpected error
  130  interrupted (Ctrl-C): the load was aborted; what was recorded is still reported
"""

# Warnings and progress go to stderr; the report (tables) to stdout.
err: TextIO = sys.stderr


def error(message: str) -> None:
    print(f"error: {message}", file=err)


def warn(message: str) -> None:
    print(f"warning: {message}", file=err)


# --- loading -----------------------------------------------------------------------------------


def load(args: argparse.Namespace) -> Any:
    """Load plugin paths and the task; KrallyError propagates (exit 2 in main)."""
    from krally.task import plugin
    from krally.task.loader import load_task

    plugin.load_builtin_plugins()
    for path in args.plugin_path or []:
        plugin.load_plugin_path(path)
    return load_task(args.file)


def print_task_errors(exc: KrallyError) -> None:
    from krally.task.loader import TaskInvalid

    if isinstance(exc, TaskInvalid):
        for line in exc.lines():
            error(line)
    else:
        error(str(exc))
