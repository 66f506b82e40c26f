"""End-to-end: a finished BenchmarkTask's status, exported to Rally 5.1.1's own tools.

`kubectl get bt NAME -o json | krally report - --json OUT`, then `rally task import` and
`rally task report --html` (tests/rally/rallyenv.py). The export has no per-iteration data:
see krally.results.cluster.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.support import ROOT, Operator, dummy_spec, sys_call, task_yaml, wait_phase
from tests.rally.rallyenv import start as start_rally

pytestmark = pytest.mark.cluster


def test_status_exports_to_rally(
    cluster: Any, ns: str, operator: Operator, wait_for: Any, tmp_path: Path
) -> None:
    """A finished task, as `kubectl get bt -o json` shows it → `krally report - --json` →
    Rally 5.1.1's `task import` and HTML report (no per-iteration data: krally.results.cluster).
    """
    spec = dummy_spec(
        times=30,
        sleep=0.01,
        hooks=[
            sys_call("/bin/echo 123", "event", unit="iteration", at=[5, 10]),
            sys_call("/bin/false", "event", unit="iteration", at=[20, 100]),
        ],
    )
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=task_yaml("export", spec))
    status = wait_phase(cluster, ns, "export", {"Succeeded", "Failed"}, wait_for, 120)
    assert status["phase"] == "Succeeded", status.get("message")
    obj = cluster.kubectl("get", "bt", "export", "-n", ns, "-o", "json").stdout
    out = tmp_path / "export-rally.json"
    proc = subprocess.run(
        [sys.executable, "-m", "krally", "report", "-", "--json", str(out)],
        input=obj, capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "iteration 20: failed" in proc.stdout and "not reached: iteration 100" in proc.stdout
    document = json.loads(out.read_text())
    (workload,) = document["tasks"][0]["subtasks"][0]["workloads"]
    assert workload["total_iteration_count"] == 30 and workload["data"] == []
    assert [h["summary"] for h in workload["hooks"]] == [{"success": 2}, {"failed": 1}]

    rally = start_rally(tmp_path / "rally")
    uuid = rally.import_results(out)
    html = rally.report_html(uuid)
    assert '"name": "sys_call"' in html and "iteration: 20" in html
