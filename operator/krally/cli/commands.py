"""The engine commands: ``run``, ``validate``, ``convert``, ``rbac``, ``report`` (no cluster needed,
but ``report bt/NAME`` reads a task from one)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import yaml

from krally.cli.output import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUN_ERROR,
    EXIT_SLA_FAILED,
    err,
    error,
    load,
    warn,
)
from krally.cli.progress import progress_display
from krally.errors import KrallyError, TaskFileError

# --- commands ----------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    task = load(args)
    for warning in task.warnings:
        warn(f"{task.source}: {warning}")
    hooks = sum(len(w.hooks) for w in task.workloads)
    print(f"{task.source}: valid ({len(task.workloads)} workload(s), {hooks} hook(s))")
    return EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    from krally.task.loader import benchmark_tasks

    task = load(args)
    for warning in task.warnings:
        warn(f"{task.source}: {warning}")
    sys.stdout.write(
        yaml.safe_dump_all(benchmark_tasks(task), sort_keys=False, default_flow_style=None)
    )
    return EXIT_OK


def cmd_rbac(args: argparse.Namespace) -> int:
    from krally.kube import rbac

    task = load(args)
    for warning in task.warnings:
        warn(f"{task.source}: {warning}")
    sys.stdout.write(rbac.render_file(args.file, task, args.service_account, args.namespace))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from krally.results import rally

    _check_outputs(args)
    report = _read_report(args)
    if args.json:
        out = rally.to_rally(report)
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    to_stdout = _write_outputs(report, args)
    if not to_stdout:
        from krally.results.console import render_report

        sys.stdout.write(render_report(report))
    if args.json:
        print(
            f"Rally JSON written to {args.json} (rally task import --file {args.json})",
            file=err if to_stdout else sys.stdout,
        )
    return _exit_code(report)


def _read_report(args: argparse.Namespace) -> dict[str, Any]:
    """krally's report shape from a results file, stdin, or a task in the cluster."""
    from krally.results import cluster, rally

    name = None if Path(args.file).exists() else _task_reference(args.file)
    if name is not None:
        from krally.cli.fetch import fetch_task

        document: Any = fetch_task(name, args.namespace)
        source = f"bt/{name}"
    else:
        if args.namespace:
            raise TaskFileError(
                f"{args.file}: -n/--namespace is for a task in the cluster (bt/NAME)"
            )
        source = args.file
        try:
            text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
        except OSError as exc:
            raise TaskFileError(f"{args.file}: cannot read results: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise TaskFileError(
                f"{args.file}: not a krally/Rally results JSON (not text)"
            ) from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            document = _yaml_task(text)  # `kubectl get bt NAME -o yaml`
            if document is None:
                raise TaskFileError(
                    f"{args.file}:{exc.lineno}:{exc.colno}: malformed JSON (truncated?): {exc.msg}"
                ) from None
    try:
        if cluster.is_benchmark_task(document):
            phase = (document.get("status") or {}).get("phase") or "Pending"
            if phase == "Pending":
                raise TaskFileError(
                    f"{source}: the task has not started (phase {phase}): no results yet"
                )
            return cluster.report_from_task(document)
        if isinstance(document, dict) and isinstance(document.get("tasks"), list):
            report = rally.inline_extras(document)
            _check_report_shape(report)
            return report
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise TaskFileError(
            f"{source}: not a readable krally/Rally results document: {exc}"
        ) from None
    raise TaskFileError(
        f"{source}: not a krally/Rally JSON report (no 'tasks' list) nor a BenchmarkTask"
    )


def _check_report_shape(report: dict[str, Any]) -> None:
    for task in report["tasks"]:
        for subtask in task["subtasks"]:
            for workload in subtask["workloads"]:
                if not isinstance(workload, dict):
                    raise TypeError("a workload is not an object")


def _task_reference(text: str) -> str | None:
    try:
        from krally.cli.fetch import task_reference
    except ImportError:  # an engine-only install
        return None
    return task_reference(text)


# (option, what it is, renderer module, its function)
_OUTPUTS = (
    ("html", "HTML report", "krally.results.html", "render_html"),
    ("junit", "JUnit XML", "krally.results.junit", "render_junit"),
    ("markdown", "Markdown summary", "krally.results.markdown", "render_markdown"),
)


def _check_outputs(args: argparse.Namespace) -> None:
    """Before any work: every output's folder exists, and the HTML report can be made."""
    for option, _, _, _ in _OUTPUTS:
        target = getattr(args, option, None)
        if target and target != "-":
            parent = Path(target).resolve().parent
            if not parent.is_dir():
                raise KrallyError(f"--{option} {target}: directory {parent} does not exist")
    if getattr(args, "html", None):
        from krally.results.html.assets import chart_library

        chart_library()


def _write_outputs(report: dict[str, Any], args: argparse.Namespace) -> bool:
    """Write each requested report; True when one went to stdout (``-``)."""
    # Once a report goes to stdout, the "written to" lines go to stderr (stdout stays clean).
    to_stdout = any(getattr(args, option, None) == "-" for option, _, _, _ in _OUTPUTS)
    for option, what, module, function in _OUTPUTS:
        target = getattr(args, option, None)
        if not target:
            continue
        text = getattr(importlib.import_module(module), function)(report)
        if target == "-":
            sys.stdout.write(text)
            continue
        try:
            Path(target).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise KrallyError(f"--{option} {target}: cannot write: {exc.strerror}") from None
        print(f"{what} written to {target}", file=err if to_stdout else sys.stdout)
    return to_stdout


def _yaml_task(text: str) -> Any:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    from krally.results import cluster

    return document if cluster.is_benchmark_task(document) else None


def cmd_run(args: argparse.Namespace) -> int:
    if args.json:
        parent = Path(args.json).resolve().parent
        if not parent.is_dir():
            raise KrallyError(f"--json {args.json}: directory {parent} does not exist")
    _check_outputs(args)
    task = load(args)
    for warning in task.warnings:
        warn(f"{task.source}: {warning}")
    display = progress_display(args)
    run = _BackgroundRun(task, args, display)
    try:
        interrupted = run.wait()
    finally:
        if display:
            display.close()
    if interrupted is None:
        return EXIT_INTERRUPTED  # Ctrl-C twice: quit at once
    if run.error is not None:
        if isinstance(run.error, KrallyError):
            raise run.error
        error(f"run failed: {type(run.error).__name__}: {run.error}")
        print(run.traceback, file=err)
        return EXIT_RUN_ERROR
    report = run.report
    try:
        to_stdout = _write_outputs(report, args)
    except KrallyError as exc:  # the run's results are still printed below
        error(str(exc))
        to_stdout = False
    if not to_stdout:
        # The warnings were printed on stderr before the run; the report is the same run's.
        from krally.results.console import render_report

        sys.stdout.write(render_report(report, show_warnings=False))
    if args.json:
        print(f"Results written to {args.json}", file=err if to_stdout else sys.stdout)
    return EXIT_INTERRUPTED if interrupted else _exit_code(report)


class _BackgroundRun:
    """The engine in a thread, so that Ctrl-C in the main thread can abort it cleanly."""

    def __init__(self, task: Any, args: argparse.Namespace, display: Any) -> None:
        self.task = task
        self.args = args
        self.display = display
        self.abort = threading.Event()
        self.report: dict[str, Any] = {}
        self.error: BaseException | None = None
        self.traceback = ""
        # --json: the per-iteration data streamed to the file as the load runs.
        from krally.results.stream import RallyJSONWriter

        self.writer = RallyJSONWriter(args.json) if args.json else None

    def work(self) -> None:
        display, writer = self.display, self.writer
        from krally.task.task_run import run_task

        try:
            self.report = run_task(
                self.task,
                on_progress=display.update if display else None,
                on_workload=display.start if display else None,
                abort=self.abort,
                abort_on_sla_failure=self.args.abort_on_sla_failure,
                results=writer,
            )
            if writer is not None:
                writer.close(self.report)
        except BaseException as exc:
            if writer is not None:
                writer.abort()
            self.error = exc
            self.traceback = traceback.format_exc()

    def wait(self) -> bool | None:
        """Run until the load ends: whether Ctrl-C aborted it (None: pressed twice)."""
        worker = threading.Thread(target=self.work, name="krally-run", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.2)
            return False
        except KeyboardInterrupt:
            print("\ninterrupted: aborting the load (Ctrl-C again to quit at once)", file=err)
            self.abort.set()
        try:
            while worker.is_alive():
                worker.join(0.2)
        except KeyboardInterrupt:
            return None
        return True


def _exit_code(report: dict[str, Any]) -> int:
    workloads = [w for t in report["tasks"] for s in t.get("subtasks", []) for w in s["workloads"]]
    if any("error" in w for w in workloads):
        return EXIT_RUN_ERROR
    if not all(w.get("pass_sla") for w in workloads):
        return EXIT_SLA_FAILED
    return EXIT_OK
