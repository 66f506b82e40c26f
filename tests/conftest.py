"""Shared pytest fixtures: a real Kubernetes control plane for tests marked `cluster`.

Fixtures (see tests/cluster for the harness):
- `cluster` (session): a started tests.cluster.Cluster (`.kubeconfig`, `.server`, `.kubectl()`,
  `.api_client()`, `.token_for()`, `.create_namespace()`, `.pod_log()`, `.logs()`, `.node_name`).
  Here it has the process node (pods as host processes: fast, for the control plane's own
  behaviour); tests/e2e/conftest.py makes it the real node there. Started on first use only, so
  `pytest tests/unit` never starts it.
- `real_cluster` (session): the same control plane kind with the real node (kubelet,
  containerd, images built from Dockerfile). Never replaced by the process node.
- `namespace`: a fresh namespace (its default ServiceAccount ready), deleted after the test.
- `apply_yaml(source, namespace=None) -> str`: `kubectl apply` as admin of YAML text (dedented),
  a file/directory path, or a dict / list of dicts; returns kubectl's output.
- `wait_for(predicate, timeout=30, message="", interval=0.2)`: the predicate's truthy value, or a
  failure naming what was awaited and the last value seen.

If the control plane cannot start, cluster tests fail with its logs when CI=true (or
KRALLY_REQUIRE_CLUSTER=1) and are skipped, with the reason, otherwise. KRALLY_KEEP_CLUSTER=1
keeps the cluster's directory (component logs, pod logs and files) after the session.
"""

from __future__ import annotations

import os
import secrets
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster import Cluster, ClusterError, start
from tests.cluster import wait_for as _wait_for
from tests.cluster.controlplane import dns_label

_started: dict[str, Cluster] = {}


def _cluster_required() -> bool:
    flags = (os.environ.get("CI", ""), os.environ.get("KRALLY_REQUIRE_CLUSTER", ""))
    return any(f.lower() in ("1", "true", "yes") for f in flags)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A test that uses the cluster is a cluster test, marked or not (for `-m "not cluster"`).
    for item in items:
        if "cluster" in getattr(item, "fixturenames", ()) and not item.get_closest_marker(
            "cluster"
        ):
            item.add_marker(pytest.mark.cluster)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    used = getattr(item, "funcargs", {}).get("cluster")
    if report.failed and isinstance(used, Cluster) and item.get_closest_marker("cluster"):
        report.sections.append(("krally cluster components", used.logs(lines=25)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for kind, running in _started.items():
        parts = ", ".join(f"{k} {v:.2f}s" for k, v in running.timings.items())
        terminalreporter.write_line(f"krally test cluster ({kind} node) start: {parts}")


def _session_cluster(node: str) -> Iterator[Cluster]:
    try:
        running = start(
            node=node, keep_workdir=os.environ.get("KRALLY_KEEP_CLUSTER", "") not in ("", "0")
        )
    except ClusterError as exc:
        if _cluster_required():
            pytest.fail(str(exc), pytrace=False)
        print(f"\n{exc}", file=sys.stderr)
        first = str(exc).splitlines()[0]
        pytest.skip(f"{node} node cluster unavailable ({first}); CI=true makes this a failure")
    _started[node] = running
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    yield from _session_cluster("process")


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[Cluster]:
    yield from _session_cluster("real")


@pytest.fixture(autouse=True)
def _cluster_health(request: pytest.FixtureRequest) -> None:
    """Start the cluster for tests marked `cluster` and fail fast, with logs, if it died."""
    if request.node.get_closest_marker("cluster"):
        running: Cluster = request.getfixturevalue("cluster")
        running.check()


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = cluster.create_namespace(f"t-{dns_label(request.node.name)}-{secrets.token_hex(2)}")
    yield name
    cluster.delete_namespace(name)


@pytest.fixture
def apply_yaml(cluster: Cluster) -> Callable[..., str]:
    def apply(
        source: str | Path | dict[str, Any] | list[dict[str, Any]], namespace: str | None = None
    ) -> str:
        """Apply YAML text (dedented), a file or directory path, or object dict(s)."""
        args = ["apply"]
        if namespace:
            args += ["-n", namespace]
        text: str | None = None
        if isinstance(source, dict | list):
            text = yaml.safe_dump_all(source if isinstance(source, list) else [source])
        elif isinstance(source, Path) or _is_path(source):
            args += ["-f", str(source)]
        else:
            text = textwrap.dedent(source)
        if text is not None:
            args += ["-f", "-"]
        return cluster.kubectl(*args, input=text).stdout

    return apply


def _is_path(text: str) -> bool:
    if "\n" in text:
        return False
    try:
        return Path(text).exists()
    except OSError:  # e.g. a one-line YAML document longer than a file name may be
        return False


@pytest.fixture
def wait_for() -> Callable[..., object]:
    return _wait_for
