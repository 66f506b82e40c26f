"""The ``krally`` command line.

Engine commands (no cluster needed): ``run``, ``validate``, ``convert``, ``report``, ``rbac``.
The cluster commands (``operator``, ``runner``, ``hook``, ``crd``) are registered by
``krally.kube.commands``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml

import krally
from krally.errors import KrallyError, TaskFileError
from krally.results.text_table import ascii_table

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


def _error(message: str) -> None:
    print(f"error: {message}", file=err)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=err)


# --- loading -----------------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> Any:
    """Load plugin paths and the task; KrallyError propagates (exit 2 in main)."""
    from krally.task import plugin
    from krally.task.loader import load_task

    plugin.load_builtin_plugins()
    for path in args.plugin_path or []:
        plugin.load_plugin_path(path)
    return load_task(args.file)


def _print_task_errors(exc: KrallyError) -> None:
    from krally.task.loader import TaskInvalid

    if isinstance(exc, TaskInvalid):
        for line in exc.lines():
            _error(line)
    else:
        _error(str(exc))


# --- commands ----------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    task = _load(args)
    for warning in task.warnings:
        _warn(f"{task.source}: {warning}")
    hooks = sum(len(w.hooks) for w in task.workloads)
    print(f"{task.source}: valid ({len(task.workloads)} workload(s), {hooks} hook(s))")
    return EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    from krally.task.loader import benchmark_tasks

    task = _load(args)
    for warning in task.warnings:
        _warn(f"{task.source}: {warning}")
    sys.stdout.write(
        yaml.safe_dump_all(benchmark_tasks(task), sort_keys=False, default_flow_style=None)
    )
    return EXIT_OK


def cmd_rbac(args: argparse.Namespace) -> int:
    from krally.kube import rbac

    task = _load(args)
    for warning in task.warnings:
        _warn(f"{task.source}: {warning}")
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
        from krally.kube.fetch import fetch_task

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
        from krally.kube.fetch import task_reference
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
    from krally.task.task_run import run_task

    if args.json:
        parent = Path(args.json).resolve().parent
        if not parent.is_dir():
            raise KrallyError(f"--json {args.json}: directory {parent} does not exist")
    _check_outputs(args)
    task = _load(args)
    for warning in task.warnings:
        _warn(f"{task.source}: {warning}")
    display = _progress_display(args)
    abort = threading.Event()
    box: dict[str, Any] = {}
    writer = None
    if args.json:
        from krally.results.stream import RallyJSONWriter

        writer = RallyJSONWriter(args.json)  # per-iteration data streamed as the load runs

    def work() -> None:
        try:
            box["report"] = run_task(
                task,
                on_progress=display.update if display else None,
                on_workload=display.start if display else None,
                abort=abort,
                abort_on_sla_failure=args.abort_on_sla_failure,
                results=writer,
            )
            if writer is not None:
                writer.close(box["report"])
        except BaseException as exc:
            if writer is not None:
                writer.abort()
            box["error"] = exc
            box["traceback"] = traceback.format_exc()

    # The engine runs in a thread so that Ctrl-C in the main thread can abort it cleanly.
    worker = threading.Thread(target=work, name="krally-run", daemon=True)
    worker.start()
    interrupted = False
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: aborting the load (Ctrl-C again to quit at once)", file=err)
        abort.set()
        try:
            while worker.is_alive():
                worker.join(0.2)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    finally:
        if display:
            display.close()
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, KrallyError):
            raise exc
        _error(f"run failed: {type(exc).__name__}: {exc}")
        print(box["traceback"], file=err)
        return EXIT_RUN_ERROR
    report = box["report"]
    try:
        to_stdout = _write_outputs(report, args)
    except KrallyError as exc:  # the run's results are still printed below
        _error(str(exc))
        to_stdout = False
    if not to_stdout:
        # The warnings were printed on stderr before the run; the report is the same run's.
        sys.stdout.write(render_report(report, show_warnings=False))
    if args.json:
        print(f"Results written to {args.json}", file=err if to_stdout else sys.stdout)
    return EXIT_INTERRUPTED if interrupted else _exit_code(report)


def _exit_code(report: dict[str, Any]) -> int:
    workloads = [w for t in report["tasks"] for s in t.get("subtasks", []) for w in s["workloads"]]
    if any("error" in w for w in workloads):
        return EXIT_RUN_ERROR
    if not all(w.get("pass_sla") for w in workloads):
        return EXIT_SLA_FAILED
    return EXIT_OK


# --- progress ----------------------------------------------------------------------------------


class _PlainProgress:
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


class _RichProgress:
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


def _progress_display(args: argparse.Namespace) -> Any:
    if args.no_progress:
        return None
    if err.isatty():
        return _RichProgress(err)
    return _PlainProgress(err)


# --- the text report ---------------------------------------------------------------------------

_COLUMNS: tuple[str, ...] = (
    "Action",
    "Min (sec)",
    "Median (sec)",
    "90%ile (sec)",
    "95%ile (sec)",
    "Max (sec)",
    "Avg (sec)",
    "Success",
    "Count",
)
_KEYS = ("min", "median", "90%ile", "95%ile", "max", "avg")


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _duration_rows(durations: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []

    def add(node: dict[str, Any], depth: int) -> None:
        data = node.get("data", {})
        name = node.get("display_name") or node.get("name", "?")
        rows.append(
            [" " * depth + ("> " if depth else "") + str(name)]
            + [_num(data.get(k)) for k in _KEYS]
            + [str(data.get("success", "n/a")), str(data.get("iteration_count", 0))]
        )
        for child in node.get("children", []) or []:
            add(child, depth + 1)

    for node in durations.get("atomics", []) or []:
        add(node, 0)
    if durations.get("total"):
        total = dict(durations["total"])
        total["children"] = []
        total["display_name"] = "total"
        add(total, 0)
    return rows


def _hook_line(result: dict[str, Any]) -> str:
    by = result.get("triggered_by", {})
    took = (result.get("finished_at") or 0) - (result.get("started_at") or 0)
    line = f"    {by.get('event_type')} {by.get('value')}: {result.get('status')}, {took:.3f} s"
    if result.get("error"):
        error = result["error"]
        line += f", {error.get('etype')}: {error.get('msg')}"
    summary = _output_summary(result.get("output"))
    if summary:
        line += f", {summary}"
    return line


def _output_summary(output: dict[str, Any] | None) -> str:
    if not output:
        return ""
    for item in output.get("complete", []):
        if item.get("chart_plugin") == "TextArea":
            text = " ".join(
                str(d).strip() for d in item.get("data", []) if not str(d).startswith("RetCode")
            )
            return text if len(text) <= 80 else text[:77] + "..."
    n = len(output.get("additive", [])) + len(output.get("complete", []))
    return f"{n} chart(s)"


def render_workload(w: dict[str, Any], show_warnings: bool = True) -> str:
    from krally.results import impact_table

    out: list[str] = []
    ((scenario, _),) = w["scenario"].items()
    ((runner, runner_cfg),) = w["runner"].items()
    cfg = ", ".join(f"{k}={v}" for k, v in runner_cfg.items())
    pods = f", parallelism={w['parallelism']}" if w.get("parallelism") else ""
    out.append(f"\nTask {scenario} (runner {runner}{': ' + cfg if cfg else ''}{pods})\n")
    for warning in w.get("warnings", []) if show_warnings else []:
        out.append(f"warning: {warning}\n")
    if w.get("error"):
        out.append(f"RUN ERROR: {w['error'][0]}: {w['error'][1]}\n")
    out.append("\nResponse Times (sec):\n")
    rows = _duration_rows(w.get("statistics", {}).get("durations", {}))
    out.append(ascii_table(_COLUMNS, rows) if rows else "  (no iterations)\n")
    total, failed = w.get("total_iteration_count", 0), w.get("failed_iteration_count", 0)
    out.append(f"Iterations: {total}, failed: {failed}\n")
    out.append(f"Load duration: {w.get('load_duration', 0.0):.3f} s\n")
    out.append(f"Full duration: {w.get('full_duration', 0.0):.3f} s\n")
    if w.get("hooks"):
        out.append("\nHooks:\n")
        for index, hook in enumerate(w["hooks"]):
            config = hook["config"]
            ((action, action_cfg),) = config["action"].items()
            ((trigger, trigger_cfg),) = config["trigger"].items()
            summary = ", ".join(f"{k} {v}" for k, v in hook.get("summary", {}).items())
            desc = f" ({config['description']})" if config.get("description") else ""
            out.append(
                f"  #{index + 1} {action} {json.dumps(action_cfg)}{desc}; trigger {trigger} "
                f"{json.dumps(trigger_cfg)}: {summary or 'never fired'}\n"
            )
            out.extend(_hook_line(r) + "\n" for r in hook.get("results", []))
            unreached = hook.get("unreached") or []
            if unreached:
                values = ", ".join(f"{u['event_type']} {u['value']}" for u in unreached)
                count = hook.get("unreached_count", len(unreached))
                more = f" (and {count - len(unreached)} more)" if count > len(unreached) else ""
                out.append(f"    not reached: {values}{more}\n")
            if hook.get("trigger_error"):
                out.append(f"    trigger error: {hook['trigger_error']}\n")
    verdict = "PASSED" if w.get("pass_sla") else "FAILED"
    out.append(f"\nSLA: {verdict}\n")
    for item in w.get("sla_results", {}).get("sla", []):
        state = "passed" if item.get("success") else "FAILED"
        out.append(f"  {item.get('criterion')}: {state} - {item.get('detail', '')}\n")
    out.append(impact_table.render(w.get("impact")))
    return "".join(out)


def render_report(report: dict[str, Any], show_warnings: bool = True) -> str:
    """Rally-like text for a JSON report (``krally run`` and ``krally report``)."""
    out: list[str] = []
    for task in report["tasks"]:
        out.extend(
            render_workload(w, show_warnings)
            for s in task.get("subtasks", [])
            for w in s.get("workloads", [])
        )
        verdict = "PASSED" if task.get("pass_sla") else "FAILED"
        out.append(f"\nTask {task.get('title', '')!r}: {task.get('status')}, SLA {verdict}\n")
    return "".join(out)


# --- argument parsing --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="krally",
        description="Rally-style benchmarks with scheduled hooks, locally or on Kubernetes.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"krally {krally.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def task_command(name: str, help_text: str, func: Callable[..., int]) -> Any:
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument(
            "file", metavar="FILE", help="task file: Rally v1/v2 JSON/YAML or BenchmarkTask YAML"
        )
        p.add_argument(
            "--plugin-path",
            action="append",
            metavar="PATH",
            help="load plugins from a file or a folder of modules (repeatable)",
        )
        p.set_defaults(func=func)
        return p

    run = task_command("run", "run a task on this machine (hooks as local processes)", cmd_run)
    run.add_argument(
        "--json",
        metavar="OUT",
        help="write the results to OUT as Rally JSON (`rally task import --file OUT`), "
        "per-iteration data included; krally's extras in its 'krally' section",
    )
    run.add_argument(
        "--abort-on-sla-failure",
        action="store_true",
        help="stop the load as soon as an SLA criterion fails",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    _output_options(run)
    task_command("validate", "check a task file and every plugin config", cmd_validate)
    task_command("convert", "print a Rally task file as BenchmarkTask YAML", cmd_convert)
    rbac = task_command(
        "rbac",
        "print the ServiceAccount, Roles and bindings the task's kube.* hooks need (YAML)",
        cmd_rbac,
    )
    rbac.add_argument(
        "--service-account",
        metavar="NAME",
        help="the hooks' ServiceAccount (default: the one a hook names, else <task>-disruptor)",
    )
    rbac.add_argument(
        "-n",
        "--namespace",
        metavar="NS",
        help="the namespace the task runs in (default: its metadata.namespace, else default)",
    )
    report = sub.add_parser(
        "report",
        help="print the tables of a results file (krally run --json, Rally's JSON, or a "
        "BenchmarkTask) or of a task in the cluster (bt/NAME); --html, --junit, --markdown "
        "write reports, --json converts to Rally JSON",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument(
        "file",
        metavar="RESULTS.json",
        help="krally's or Rally's JSON results, or a BenchmarkTask (kubectl get bt NAME -o "
        "json|yaml); - reads stdin; bt/NAME reads the task from the cluster (-n NS)",
    )
    report.add_argument(
        "--json",
        metavar="OUT",
        help="also write the results as Rally JSON for `rally task import` (from a "
        "BenchmarkTask: no per-iteration data)",
    )
    report.add_argument(
        "-n",
        "--namespace",
        metavar="NS",
        help="with bt/NAME: the task's namespace (default: the kubeconfig context's)",
    )
    _output_options(report)
    report.set_defaults(func=cmd_report)
    _register_cluster_commands(sub)
    return parser


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--html",
        metavar="FILE",
        help="write a self-contained HTML report (charts, hook firings, impact) to FILE",
    )
    parser.add_argument(
        "--junit",
        metavar="FILE",
        help="write JUnit XML to FILE: a testcase per SLA criterion and per hook firing",
    )
    parser.add_argument(
        "--markdown",
        metavar="FILE",
        help="write a Markdown summary (for a pull request comment) to FILE",
    )
    parser.epilog = (
        parser.epilog or ""
    ) + "\nFILE - writes that report to stdout instead of the tables.\n"


def _register_cluster_commands(sub: Any) -> None:
    try:
        commands = importlib.import_module("krally.kube.commands")
    except ImportError as exc:
        # Only a missing krally.kube.commands module is tolerated (engine-only installs);
        # anything it fails to import itself is a real error.
        if exc.name != "krally.kube.commands":
            raise
        return
    commands.register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KrallyError as exc:
        _print_task_errors(exc)
        return EXIT_INVALID
    except BrokenPipeError:
        return EXIT_OK
