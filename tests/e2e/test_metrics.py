"""End-to-end on the real node: the operator's /metrics (a host process here, on a port of its
own) and the runner pod's (its pod IP, reachable from the host) scraped during a task, then
checked against the task's status once it finished: the runner's counters are the summary's
iterations and failures, the operator counted each firing and each hook result once, measured
the lag of each hook Job, and saw the task Running, then Succeeded."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.cluster.controlplane import free_port
from tests.e2e.support import Operator, sys_call, task_yaml, wait_phase

from krally.kube import metrics as kmetrics
from krally.kube.operator import builders as kjobs

pytestmark = pytest.mark.cluster

TASK = "scraped"
TIMES = 1500
RPS = 150  # about 10 s of load
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def get(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def scrape(url: str) -> Samples | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return parse(reply.read().decode())
    except OSError:  # not up yet
        return None


# Scrapes the runner pod from the node's network namespace, as Prometheus would from a pod: the
# host reaches pod IPs but pods route only to pod and Service addresses (the harness' network
# rules), so the pod's reply to the host's own address would have no route.
POD_SCRAPER = """
import json, sys, time, urllib.request
while True:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=2) as reply:
            print(json.dumps({"text": reply.read().decode()}), flush=True)
    except OSError as exc:  # not up yet, or gone (the load's process has exited)
        print(json.dumps({"error": str(exc)}), flush=True)
    time.sleep(0.2)
"""


class Scraper:
    """Scrapes the operator (a host process) every ``period`` seconds in a thread and, once
    its pod has an IP, the runner pod on the port its spec names ``metrics``, keeping every
    successful scrape."""

    def __init__(self, cluster: Any, ns: str, operator_url: str, period: float = 0.25) -> None:
        self.cluster, self.ns, self.operator_url, self.period = cluster, ns, operator_url, period
        self.operator: list[Samples] = []
        self.runner: list[Samples] = []
        self.runner_errors: list[str] = []
        self.runner_url: str | None = None
        self.runner_pod: str | None = None
        self._pod_scraper: subprocess.Popen[str] | None = None
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._operator_loop, daemon=True)]

    def __enter__(self) -> Scraper:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._pod_scraper is not None:
            self._pod_scraper.terminate()
            self._pod_scraper.wait(10)
        for thread in self._threads:
            thread.join(10)

    def _operator_loop(self) -> None:
        while not self._stop.wait(self.period):
            found = scrape(self.operator_url)
            if found is not None:
                self.operator.append(found)
            if self._pod_scraper is None:
                self._start_pod_scraper()

    def _start_pod_scraper(self) -> None:
        out = self.cluster.kubectl(
            "get", "pods", "-n", self.ns, "-l", f"job-name={kjobs.runner_name(TASK)}",
            "-o", "json", check=False,
        ).stdout  # fmt: skip
        pods = [p for p in json.loads(out or "{}").get("items") or [] if p["status"].get("podIP")]
        if not pods:
            return
        (pod,) = pods
        (container,) = pod["spec"]["containers"]
        port = {p["name"]: p["containerPort"] for p in container["ports"]}[kmetrics.PORT_NAME]
        self.runner_pod = pod["metadata"]["name"]
        self.runner_url = f"http://{pod['status']['podIP']}:{port}{kmetrics.PATH}"
        argv = self.cluster.net.in_netns(sys.executable, "-c", POD_SCRAPER, self.runner_url)
        self._pod_scraper = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        thread = threading.Thread(target=self._read_pod_scrapes, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _read_pod_scrapes(self) -> None:
        assert self._pod_scraper is not None and self._pod_scraper.stdout is not None
        for line in self._pod_scraper.stdout:
            scraped = json.loads(line)
            if "text" in scraped:
                self.runner.append(parse(scraped["text"]))
            else:
                self.runner_errors.append(scraped["error"])


@pytest.fixture
def operator_port(cluster: Any, ns: str, tmp_path: Path) -> Iterator[int]:
    """`krally operator` (as the e2e fixture runs it) serving its metrics on a free port."""
    port = free_port()
    op = Operator(cluster, ns, tmp_path, args=("--standalone", f"--metrics-port={port}")).start()
    yield port
    cluster.kubectl("delete", "bt", "--all", "-n", ns, "--wait=false", check=False)
    op.stop()
    print(f"--- operator log ({op.log}) ---\n{op.output(120)}")


def test_operator_and_runner_metrics_during_a_task_match_its_status(
    cluster: Any, ns: str, operator_port: int, wait_for: Any
) -> None:
    operator_url = f"http://127.0.0.1:{operator_port}{kmetrics.PATH}"
    wait_for(lambda: scrape(operator_url), timeout=60, message="the operator's /metrics")
    spec = {
        "scenario": {
            "name": "Dummy.dummy_exception_probability",
            "args": {"exception_probability": 0.05},
        },
        "runner": {"type": "rps", "times": TIMES, "rps": RPS},
        "sla": {"failure_rate": {"max": 100}},
        # Every hook Job is created on its firing: the operator measures the lag of each.
        "arming": {"enabled": False},
        "hooks": [
            sys_call("/bin/echo tick", "event", unit="iteration", at=[100, 700]),
            # Fired as the last iteration starts; the runner waits for its result after the
            # load, so its final counts stay served for a few seconds before the pod exits.
            sys_call("/bin/sleep 4", "event", unit="iteration", at=[TIMES]),
        ],
    }
    with Scraper(cluster, ns, operator_url) as scraper:
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml(TASK, spec))
        status = wait_phase(cluster, ns, TASK, {"Succeeded", "Failed"}, wait_for, 240)
        assert status["phase"] == "Succeeded", status.get("message")

        def final() -> Samples | None:
            found = scrape(operator_url)
            done = found and get(found, "krally_operator_tasks", namespace=ns, phase="Succeeded")
            return found if done == 1 else None

        after = wait_for(final, timeout=30, message="the operator's metrics show Succeeded")
    summary = status["runner"]["summary"]
    firings = status["runner"]["firings"]
    results = [r for hook in status["hooks"] for r in hook["results"]]
    print(
        f"{len(scraper.runner)} runner and {len(scraper.operator)} operator scrapes; "
        f"summary {summary['iterations']} iterations, {summary['failures']} failures; "
        f"{len(firings)} firings, {len(results)} results"
    )

    # -- the runner pod ------------------------------------------------------------------------
    assert scraper.runner, (
        f"the runner pod's metrics were never reached ({scraper.runner_url}): "
        f"{scraper.runner_errors[-3:]}\n{cluster.pod_log(ns, scraper.runner_pod or '?')}"
    )
    task = {"task": TASK}
    series = [
        (get(s, "krally_runner_iterations_total", **task) or 0.0,
         get(s, "krally_runner_failures_total", **task) or 0.0, s)
        for s in scraper.runner
    ]  # fmt: skip
    counts = [(i, f) for i, f, _ in series]
    assert counts == sorted(counts), "the runner's counters went back"
    during = [s for i, _, s in series if 0 < i < TIMES]
    assert during, f"no scrape during the load: {counts}"
    rates = [get(s, "krally_runner_iterations_per_second", **task) or 0.0 for s in during]
    assert max(rates) > 0
    assert RPS / 3 < sorted(rates)[len(rates) // 2] < RPS * 3, rates  # the median, about RPS
    # After the load (the runner waits for the last hook's result): the final counts.
    iterations, failures, last = series[-1]
    assert summary["iterations"] == TIMES
    assert (iterations, failures) == (summary["iterations"], summary["failures"]), counts[-5:]
    assert summary["failures"] > 0  # 5% of 1500
    duration = "krally_runner_iteration_duration_seconds"
    assert get(last, f"{duration}_count", **task) == iterations
    assert get(last, f"{duration}_bucket", le="+Inf", **task) == iterations
    assert (get(last, f"{duration}_sum", **task) or 0) > 0

    # -- the operator -------------------------------------------------------------------------
    phases = {
        phase
        for s in scraper.operator
        for phase in ("Pending", "Running", "Finishing", "Succeeded")
        if get(s, "krally_operator_tasks", namespace=ns, phase=phase) == 1
    }
    assert "Running" in phases, phases
    assert get(after, "krally_operator_tasks", namespace=ns, phase="Running") == 0
    assert get(after, "krally_operator_leader") == 1
    assert len(firings) == len(results) == 3
    hook = {"namespace": ns, "hook": "sys_call"}
    assert get(after, "krally_operator_firings_total", **hook) == len(firings)
    succeeded = sum(r["status"] == "success" for r in results)
    assert succeeded == len(results), results
    assert get(after, "krally_operator_hook_results_total", status="success", **hook) == succeeded
    assert get(after, "krally_operator_hook_results_total", status="failed", **hook) is None
    lag = "krally_operator_hook_job_creation_lag_seconds"
    assert get(after, f"{lag}_count") == len(firings)  # none armed: each Job made on its firing
    assert get(after, f"{lag}_bucket", le="10.0") == len(firings)  # seconds at most
    writes = get(after, "krally_operator_status_writes_total", namespace=ns) or 0
    assert writes >= 3  # accepted, running, finished at least
    assert (get(after, "krally_operator_reconcile_duration_seconds_count") or 0) >= writes
    lags = (get(after, f"{lag}_sum") or 0) / len(firings)
    print(f"operator: {writes:.0f} status writes, hook Job lag {lags * 1000:.0f} ms on average")
