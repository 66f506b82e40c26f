"""manifests/monitoring cannot drift from the code: the dashboard's PromQL names only metrics
(and labels) the code registers, and the monitors select the pods, Service and ports the
operator's manifests and Job builders make."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from tests.unit.test_manifests import MANIFESTS, _kustomize, _one, _operator_container

from krally.kube import metrics as kmetrics
from krally.kube.operator import builders as kjobs
from krally.kube.operator.metrics import OperatorMetrics
from krally.kube.operator.settings import Settings
from krally.kube.pods.runner.metrics import RunnerMetrics

MONITORING = MANIFESTS / "monitoring"
DASHBOARD = MONITORING / "krally-dashboard.json"
# Labels Prometheus adds to every series of a target (PodMonitor / ServiceMonitor).
TARGET_LABELS = {"namespace", "pod", "container", "instance", "job", "service", "endpoint"}
METRIC = re.compile(r"\bkrally_[a-z0-9_]+")


@cache
def registered() -> dict[str, set[str]]:
    """Every series name the code exposes → its label names (each metric exercised once, so
    that labelled families have samples)."""
    operator = OperatorMetrics()
    task = {
        "metadata": {"namespace": "ns", "uid": "u"},
        "spec": {"hooks": [{"name": "sys_call"}]},
        "status": {"phase": "Running", "runner": {"firings": [{"hook": 0, "value": 1}]}},
    }
    operator.observe_task(("ns", "t"), task)
    results = [{"triggeredBy": {"eventType": "iteration", "value": 1}, "status": "success"}]
    operator.status_written(("ns", "t"), task, {"hooks": [{"index": 0, "results": results}]})
    operator.hook_job_created({"firedAt": "2026-01-01T00:00:00Z"})
    operator.api_error(lambda: None, TimeoutError())
    operator.reconcile_duration.observe(0.01)
    runner = RunnerMetrics("t")
    runner.record({"duration": 0.01, "error": ["E", "", ""]})
    names: dict[str, set[str]] = {}
    for registry in (operator.registry, runner.registry):
        for family in registry.collect():
            for sample in family.samples:
                if not sample.name.endswith("_created"):
                    names.setdefault(sample.name, set()).update(sample.labels)
    return names


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def expressions() -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and template variables."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "definition") and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(dashboard())
    return found


def test_the_dashboard_names_only_registered_metrics() -> None:
    names = registered()
    exprs = expressions()
    assert len(exprs) >= 12
    unknown = {m for e in exprs for m in METRIC.findall(e)} - set(names)
    assert not unknown, f"the dashboard names metrics the code does not register: {unknown}"


def test_the_dashboard_uses_only_labels_the_metrics_have() -> None:
    names = registered()
    for expr in exprs_with_metrics():
        allowed = set(TARGET_LABELS)
        for metric in METRIC.findall(expr):
            allowed |= names[metric]
        used = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"", expr))
        for clause in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
            used |= {label.strip() for label in clause.split(",") if label.strip()}
        assert used <= allowed, f"{expr}: labels {used - allowed} do not exist"


def exprs_with_metrics() -> list[str]:
    return [e for e in expressions() if METRIC.search(e)]


def test_every_metric_has_a_panel() -> None:
    used = {m for e in expressions() for m in METRIC.findall(e)}
    families = {re.sub(r"_(bucket|count|sum)$", "", name) for name in registered()}
    shown = {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
    assert families - shown == set()


def test_the_dashboard_is_a_grafana_dashboard_of_unique_panels() -> None:
    board = dashboard()
    assert board["uid"] == "krally" and board["schemaVersion"] >= 36
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    variables = {v["name"] for v in board["templating"]["list"]}
    assert variables == {"datasource", "namespace", "task"}
    for panel in panels:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"


@cache
def monitoring() -> tuple[dict[str, Any], ...]:
    return _kustomize(MONITORING)


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) == {"matchLabels"}, selector  # what these monitors use
    return selector["matchLabels"].items() <= labels.items()


def test_the_pod_monitor_selects_runner_pods_and_their_metrics_port() -> None:
    monitor = _one(monitoring(), "PodMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    task = {"metadata": {"name": "t", "namespace": "ns", "uid": "u"}, "spec": {"hooks": []}}
    runner = kjobs.runner_job(task, Settings())["spec"]["template"]
    assert _matches(monitor["spec"]["selector"], runner["metadata"]["labels"])
    # Hook pods are not selected (they serve no metrics).
    hook = kjobs.hook_labels("t", 0, "iteration", 5)
    assert not _matches(monitor["spec"]["selector"], hook)
    assert monitor["spec"]["namespaceSelector"] == {"any": True}  # tasks run anywhere
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    (container,) = runner["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[endpoint["port"]] == kmetrics.RUNNER_PORT
    assert endpoint["path"] == kmetrics.PATH
    assert not endpoint.get("honorLabels")  # a task's own image may serve any labels


def test_the_service_monitor_selects_the_operators_metrics_service() -> None:
    monitor = _one(monitoring(), "ServiceMonitor")
    install = _kustomize(MANIFESTS)
    services = [
        d
        for d in install
        if d["kind"] == "Service"
        and _matches(monitor["spec"]["selector"], d["metadata"].get("labels") or {})
    ]
    (service,) = services  # not the webhook's
    assert service["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == kmetrics.PATH
    assert endpoint["honorLabels"] is True  # the task metrics' namespace is the task's
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
    deployment = _one(install, "Deployment", "krally-operator")["spec"]["template"]
    assert service["spec"]["selector"].items() <= deployment["metadata"]["labels"].items()
    container = _operator_container(install)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port["targetPort"] == kmetrics.PORT_NAME
    # The port the operator serves on: the args' and, for overlays that replace the args, the
    # default.
    assert ports[kmetrics.PORT_NAME] == kmetrics.OPERATOR_PORT
    assert f"--metrics-port={kmetrics.OPERATOR_PORT}" in container["args"]
    assert len(set(ports.values())) == len(ports)  # not the liveness or webhook port


def test_the_dashboard_ships_as_a_configmap_for_grafana() -> None:
    config_map = _one(monitoring(), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"][DASHBOARD.name]) == dashboard()
    for doc in monitoring():
        assert doc["metadata"]["namespace"] == "krally-system"
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "krally"


def test_monitoring_is_not_part_of_the_install() -> None:
    """The install works without the Prometheus Operator's CRDs."""
    kinds = {d["kind"] for d in _kustomize(MANIFESTS)}
    assert not kinds & {"ServiceMonitor", "PodMonitor"}
    assert Path(MONITORING / "kustomization.yaml").is_file()
