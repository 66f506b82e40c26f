"""Cluster subcommands of ``krally``: ``operator``, ``runner``, ``hook run``, ``crd``.

``krally.cli`` calls :func:`register`. Heavy imports (kopf, the kubernetes client) happen inside
the commands, so ``krally run`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from krally import demoserver
from krally.kube import client

if TYPE_CHECKING:
    from krally.kube.operator.leader import Leadership
    from krally.kube.operator.metrics import OperatorMetrics
    from krally.kube.operator.settings import Settings


def _plugin_paths(args: argparse.Namespace) -> None:
    from krally.task import plugin

    plugin.load_builtin_plugins()
    paths = list(getattr(args, "plugin_path", None) or [])
    paths += [p for p in os.environ.get("KRALLY_PLUGIN_PATH", "").split(os.pathsep) if p]
    for path in paths:
        plugin.load_plugin_path(path)


def cmd_operator(args: argparse.Namespace) -> int:
    import kopf

    from krally.kube.operator import handlers
    from krally.kube.operator.leader import Leadership
    from krally.kube.operator.settings import Settings

    _plugin_paths(args)
    # The one read of the operator's settings: the environment, with the CLI flags over it.
    settings = Settings.load(
        os.environ,
        image=args.image,
        hook_timeout=args.hook_timeout,
        webhook=args.webhook,
        leader_elect=args.leader_elect,
    )
    kopf.configure(verbose=args.verbose, debug=args.debug, quiet=not args.verbose)
    # kopf's per-event lines stay quiet; krally's own (Jobs created, phases) are always logged.
    logging.getLogger("krally").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    metrics = _serve_metrics(args.metrics_port)
    # The operator's own namespace: where the webhook's Service and certificate Secret live.
    own = os.environ.get("KRALLY_NAMESPACE") or client.own_namespace() or "default"
    # Without leader election this process leads from the start.
    leadership = Leadership(leading=not settings.leader_elect)
    handlers.register(settings, namespace=own, leadership=leadership, metrics=metrics)

    namespaces = args.namespace or []
    if not namespaces and not args.all_namespaces:
        namespaces = [own]
    options: dict[str, Any] = {
        "clusterwide": bool(args.all_namespaces),
        "namespaces": [] if args.all_namespaces else namespaces,
        "priority": args.priority,
        "liveness_endpoint": args.liveness,
    }
    if not settings.leader_elect:
        kopf.run(standalone=args.standalone, **options)
        return 0
    return _run_leader_elected(settings, options, namespaces, leadership)


def _serve_metrics(port: int | None) -> OperatorMetrics | None:
    """The operator's metrics, served on ``port`` (None: the default port, 0: none). A port
    asked for must be free (else the operator stops with a one-line error); the default one,
    when taken (a second operator on the same host), only costs a warning."""
    import prometheus_client

    from krally.kube import metrics as kmetrics
    from krally.kube.operator.metrics import OperatorMetrics

    chosen = kmetrics.OPERATOR_PORT if port is None else port
    if chosen == 0:
        return None
    # No `*_created` series: a process-wide switch, set by the process' own entry point.
    prometheus_client.disable_created_metrics()
    metrics = OperatorMetrics()
    try:
        kmetrics.serve(metrics.registry, chosen)
    except kmetrics.MetricsPortError as exc:
        if port is not None:
            raise SystemExit(f"krally operator: {exc} (--metrics-port=0: no metrics)") from None
        logging.getLogger("krally").warning(
            "%s: no metrics (--metrics-port chooses another port)", exc
        )
        return None
    logging.getLogger("krally").info("metrics at http://0.0.0.0:%d%s", chosen, kmetrics.PATH)
    return metrics


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number (0-65535): {text!r}")
    return value


def _run_leader_elected(
    settings: Settings, options: dict[str, Any], namespaces: list[str], leadership: Leadership
) -> int:
    """kopf beside the Lease (krally.kube.operator.leader): every replica watches and serves
    the webhook, the leader alone reconciles; the Lease replaces kopf's peering."""
    import asyncio

    import kopf

    from krally.kube.operator import leader

    namespace = (
        settings.leader_namespace or client.own_namespace() or (namespaces or ["default"])[0]
    )
    api = leader.LeaseApi(namespace, settings.leader_lease)
    elector = leader.LeaderElector(
        api,
        leader.default_identity(settings.pod_name),
        duration=settings.lease_duration,
        renew_period=settings.lease_duration / 5,
        retry_period=settings.lease_duration / 5,
    )
    logging.getLogger("krally").info(
        "leader election on lease %s/%s as %s", namespace, settings.leader_lease, elector.identity
    )

    async def operator(stop: asyncio.Event) -> None:
        await kopf.operator(standalone=True, stop_flag=stop, **options)

    return asyncio.run(leader.run_leading(elector, operator, leadership))


def cmd_runner(args: argparse.Namespace) -> int:
    from krally.kube.pods.runner import main as runner

    _plugin_paths(args)
    return runner.main()


def cmd_hook_run(args: argparse.Namespace) -> int:
    from krally.kube.pods.hook import pod as hookpod

    _plugin_paths(args)
    return hookpod.main(args.termination_log)


def cmd_crd(args: argparse.Namespace) -> int:
    from krally.api.crd import render_yaml

    # The very text committed under crds/: `krally crd > crds/...` never shows as drift.
    sys.stdout.write(render_yaml())
    return 0


def _plugin_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin-path",
        action="append",
        metavar="PATH",
        help="load plugins from a file or a folder of modules (repeatable; also "
        "$KRALLY_PLUGIN_PATH)",
    )


def register(sub: Any) -> None:
    """Add the cluster subcommands to ``krally``'s subparsers."""
    _operator_parser(sub)
    _pod_parsers(sub)
    crd = sub.add_parser("crd", help="print the BenchmarkTask CustomResourceDefinition (YAML)")
    crd.set_defaults(func=cmd_crd)
    demo = sub.add_parser(
        "demo-server",
        help="serve a small HTTP service to disrupt (the examples' target)",
        description="A small HTTP service for disruption examples: GET / answers 200 with the "
        "pod's name after --delay, at most --capacity at a time; /healthz for probes; stops "
        "at once on SIGTERM unless --drain-seconds.",
    )
    demoserver.add_arguments(demo)
    demo.set_defaults(func=demoserver.run)


def _operator_parser(sub: Any) -> None:
    op = sub.add_parser(
        "operator",
        help="run the BenchmarkTask operator (kopf)",
        description="Run the operator: watches BenchmarkTasks, runs them as Jobs, keeps status. "
        "Defaults come from the environment: KRALLY_IMAGE (or KRALLY_RUNNER_IMAGE / "
        "KRALLY_HOOK_IMAGE), KRALLY_HOOK_TIMEOUT (seconds), KRALLY_COMMAND.",
    )
    scope = op.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        metavar="NS",
        help="watch this namespace (repeatable; default: $KRALLY_NAMESPACE or the pod's own)",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    op.add_argument(
        "--standalone",
        action="store_true",
        help="no kopf peering (run exactly one operator replica)",
    )
    op.add_argument(
        "--leader-elect",
        action="store_true",
        help="handle tasks only while holding the operator's Lease, so several replicas can "
        "run (else $KRALLY_LEADER_ELECT=1); implies no kopf peering",
    )
    op.add_argument("--priority", type=int, default=0, help="kopf peering priority")
    op.add_argument(
        "--liveness",
        metavar="URL",
        default=None,
        help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
    op.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        default=None,
        help="serve Prometheus metrics at http://0.0.0.0:PORT/metrics (default 8000, skipped "
        "with a warning when taken; a port given here must be free; 0: no metrics)",
    )
    op.add_argument("--image", help="default runner and hook image (else $KRALLY_IMAGE)")
    op.add_argument("--hook-timeout", type=int, help="default hook timeout in seconds (else 600)")
    op.add_argument(
        "--webhook",
        action="store_true",
        help="serve the validating admission webhook and manage its configuration "
        "(else $KRALLY_WEBHOOK=1; see KRALLY_WEBHOOK_URL for an operator outside the cluster)",
    )
    op.add_argument("-v", "--verbose", action="store_true", help="log every handler call")
    op.add_argument("--debug", action="store_true", help="kopf debug logging")
    _plugin_arg(op)
    op.set_defaults(func=cmd_operator)


def _pod_parsers(sub: Any) -> None:
    """``krally runner`` and ``krally hook run``: what the runner and hook pods run."""
    runner = sub.add_parser(
        "runner",
        help="(in the runner pod) run a BenchmarkTask's workload",
        description="Runs the workload of $KRALLY_SPEC for task $KRALLY_TASK_NAMESPACE/"
        "$KRALLY_TASK_NAME and reports progress and firings in its status.runner.",
    )
    _plugin_arg(runner)
    runner.set_defaults(func=cmd_runner)

    hook = sub.add_parser("hook", help="(in a hook pod) hook commands")
    hook_sub = hook.add_subparsers(dest="hook_command", metavar="COMMAND", required=True)
    hook_run = hook_sub.add_parser(
        "run",
        help="run the hook of $KRALLY_HOOK; its result goes to the termination message",
    )
    hook_run.add_argument(
        "--termination-log",
        metavar="PATH",
        default=None,
        help="where to write the result (default $KRALLY_TERMINATION_LOG or /dev/termination-log)",
    )
    _plugin_arg(hook_run)
    hook_run.set_defaults(func=cmd_hook_run)
