"""krally's argument parser: the engine commands here, the cluster commands from
``krally.kube.commands`` when that package is installed."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

import krally
from krally.cli.commands import cmd_convert, cmd_rbac, cmd_report, cmd_run, cmd_validate
from krally.cli.output import EXIT_CODES_HELP
from krally.cli.plugins import cmd_plugin_list, cmd_plugin_show

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
    _run_parser(
        _task_command(sub, "run", "run a task on this machine (hooks as local processes)", cmd_run)
    )
    _task_command(sub, "validate", "check a task file and every plugin config", cmd_validate)
    _task_command(sub, "convert", "print a Rally task file as BenchmarkTask YAML", cmd_convert)
    _rbac_parser(sub)
    _report_parser(sub)
    _plugin_parser(sub)
    _register_cluster_commands(sub)
    return parser


def _task_command(sub: Any, name: str, help_text: str, func: Callable[..., int]) -> Any:
    """A command that reads a task file (and plugins from --plugin-path)."""
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


def _run_parser(run: argparse.ArgumentParser) -> None:
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


def _rbac_parser(sub: Any) -> None:
    rbac = _task_command(
        sub,
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


def _report_parser(sub: Any) -> None:
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


def _plugin_parser(sub: Any) -> None:
    help_text = "list the plugins (scenarios, runners, contexts, hooks, triggers, SLA) or show one"
    group = sub.add_parser("plugin", help=help_text, description=help_text)
    commands = group.add_subparsers(dest="plugin_command", metavar="SUBCOMMAND", required=True)
    listing = commands.add_parser(
        "list", help="a table of every plugin: name, kind, platform, module, description"
    )
    listing.add_argument("--name", metavar="TEXT", help="only plugins whose name contains TEXT")
    listing.set_defaults(func=cmd_plugin_list)
    show = commands.add_parser(
        "show", help="one plugin: its docstring, kind, module and CONFIG_SCHEMA"
    )
    show.add_argument("name", metavar="NAME", help="the plugin's name, e.g. kube.pod_kill")
    show.add_argument(
        "--config",
        metavar="JSON",
        help="a sample config (JSON or YAML): checked against the CONFIG_SCHEMA; for a "
        "kube.* hook, the RBAC rules it needs are printed",
    )
    show.add_argument(
        "-n",
        "--namespace",
        metavar="NS",
        default="default",
        help="with --config: the namespace the task runs in (default: default)",
    )
    show.set_defaults(func=cmd_plugin_show)
    for p in (listing, show):
        p.add_argument(
            "--kind",
            metavar="KIND",
            help="only this kind: scenario, runner, context, hook, trigger, sla (or its base "
            "class, e.g. ScenarioRunner)",
        )
        p.add_argument("--json", action="store_true", help="JSON for machines")
        p.add_argument(
            "--plugin-path",
            action="append",
            metavar="PATH",
            help="also load plugins from a file or a folder of modules (repeatable; "
            "$KRALLY_PLUGIN_PATH too)",
        )


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
