"""The runner pod's live metrics: counts, the duration histogram, the rate, what the pod serves,
and the runner feeding them from every iteration the engine finishes."""

from __future__ import annotations

import os
import urllib.request
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from krally.kube import metrics as kmetrics
from krally.kube.operator import builders as kjobs
from krally.kube.operator.settings import Settings
from krally.kube.pods.runner import main
from krally.kube.pods.runner.metrics import DURATION_BUCKETS, RATE_WINDOW, RunnerMetrics
from krally.kube.pods.runner.settings import RunnerSettings


def samples(metrics: RunnerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition as the Prometheus text parser reads it."""
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: RunnerMetrics, name: str, **labels: str) -> float:
    return samples(metrics)[(name, tuple(sorted({"task": metrics.task, **labels}.items())))]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_iterations_failures_and_the_duration_histogram() -> None:
    metrics = RunnerMetrics("web")
    durations = [0.0001, 0.0005, 0.003, 0.003, 0.2, 1.0, 400.0]
    for i, duration in enumerate(durations):
        metrics.record({"duration": duration, "error": ["E", "boom", ""] if i % 3 == 0 else []})
    assert value(metrics, "krally_runner_iterations_total") == 7
    assert value(metrics, "krally_runner_failures_total") == 3
    name = "krally_runner_iteration_duration_seconds"
    assert value(metrics, f"{name}_count") == 7
    assert value(metrics, f"{name}_sum") == pytest.approx(sum(durations))
    # Cumulative buckets, "le" inclusive: 0.0005 falls in le=0.0005, 400 only in +Inf.
    assert value(metrics, f"{name}_bucket", le="0.0005") == 2
    assert value(metrics, f"{name}_bucket", le="0.005") == 4
    assert value(metrics, f"{name}_bucket", le="1.0") == 6
    assert value(metrics, f"{name}_bucket", le="300.0") == 6
    assert value(metrics, f"{name}_bucket", le="+Inf") == 7
    buckets = [k for k in samples(metrics) if k[0] == f"{name}_bucket"]
    assert len(buckets) == len(DURATION_BUCKETS) + 1


def test_a_record_without_a_duration_counts_as_zero() -> None:
    metrics = RunnerMetrics("t")
    metrics.record({"error": ["X", "", ""]})
    assert value(metrics, "krally_runner_iteration_duration_seconds_bucket", le="0.0005") == 1
    assert value(metrics, "krally_runner_failures_total") == 1


def test_rate_is_over_the_last_few_seconds() -> None:
    clock = Clock()
    metrics = RunnerMetrics("t", clock=clock)
    metrics.tick()
    for _ in range(20):  # 100 iterations/s for 20 s, ticked 10 times a second
        for _ in range(10):
            for _ in range(10):
                metrics.record({"duration": 0.01})
            clock.now += 0.1
            metrics.tick()
    assert metrics.rate() == pytest.approx(100, rel=0.05)
    for _ in range(10):  # then 500/s: the window forgets the slower past
        for _ in range(10):
            for _ in range(50):
                metrics.record({"duration": 0.01})
            clock.now += 0.1
            metrics.tick()
    assert metrics.rate() == pytest.approx(500, rel=0.05)
    # The load stopped: no ticks (no progress callback), only scrapes; the rate falls to 0.
    clock.now += RATE_WINDOW / 2
    assert 0 < metrics.rate() < 500
    clock.now += RATE_WINDOW
    metrics.rate()
    clock.now += 1
    assert metrics.rate() == 0
    assert value(metrics, "krally_runner_iterations_per_second") == 0


def test_served_on_its_own_registry_and_port() -> None:
    metrics = RunnerMetrics("served")
    metrics.record({"duration": 0.002})
    server = kmetrics.serve(metrics.registry, 0, "127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.port}{kmetrics.PATH}"
        with urllib.request.urlopen(url, timeout=5) as reply:
            text = reply.read().decode()
            assert reply.headers["Content-Type"].startswith("text/plain")
        assert 'krally_runner_iterations_total{task="served"} 1.0' in text
        # Nothing of prometheus_client's global registry (process, GC metrics) leaks in.
        assert "python_gc" not in text and "process_" not in text
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/other", timeout=5)
        assert missing.value.code == 404
        # A second server on the same port: a one-line error naming the port.
        with pytest.raises(kmetrics.MetricsPortError) as taken:
            kmetrics.serve(metrics.registry, server.port, "127.0.0.1")
        assert str(taken.value) == (
            f"cannot serve metrics on port {server.port}: address already in use"
        )
    finally:
        server.close()


def _spec(times: int) -> dict[str, Any]:
    return {
        "scenario": {"name": "Dummy.dummy_exception_probability", "args": {
            "exception_probability": 0.3}},
        "runner": {"type": "constant", "times": times, "concurrency": 2},
    }  # fmt: skip


def test_the_runner_feeds_every_iteration_result() -> None:
    metrics = RunnerMetrics("fed")
    patches: list[dict[str, Any]] = []
    assert (
        main.main(RunnerSettings(_spec(300), "ns", "fed"), patch_fn=patches.append, metrics=metrics)
        == 0
    )
    summary = patches[-1]["summary"]
    assert metrics.iterations == summary["iterations"] == 300
    assert metrics.failures == summary["failures"] > 0
    assert value(metrics, "krally_runner_iteration_duration_seconds_count") == 300


def test_no_metrics_server_outside_a_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KRALLY_POD_IP", raising=False)
    assert main.metrics_server("t", os.environ.get("KRALLY_POD_IP", "")) is None


def test_a_taken_port_leaves_the_load_without_metrics(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = kmetrics.serve(RunnerMetrics("other").registry, 0, "127.0.0.1")
    try:
        monkeypatch.setenv("KRALLY_POD_IP", "127.0.0.1")
        monkeypatch.setattr(kmetrics, "RUNNER_PORT", blocker.port)
        assert main.metrics_server("t", os.environ.get("KRALLY_POD_IP", "")) is None
        assert f"port {blocker.port}: address already in use" in caplog.text
    finally:
        blocker.close()


def test_the_runner_pod_names_its_metrics_port() -> None:
    task = {
        "apiVersion": "krally.dev/v1alpha1",
        "kind": "BenchmarkTask",
        "metadata": {"name": "t", "namespace": "ns", "uid": "u"},
        "spec": _spec(10),
    }
    job = kjobs.runner_job(task, Settings())
    (container,) = job["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[kmetrics.PORT_NAME] == kmetrics.RUNNER_PORT
    assert len(set(ports.values())) == len(ports)  # distinct from the signal port
    # The runner serves only where it knows it runs in a pod: the Job gives it its IP.
    assert any(e["name"] == "KRALLY_POD_IP" for e in container["env"])
