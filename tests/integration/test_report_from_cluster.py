"""`krally report -n NS bt/NAME` against a real API server: the task is read with the shell's
kubeconfig; a task that does not exist, or has not started, is a one-line error, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from tests import bad_tasks
from tests.bad_tasks import GOOD_SPEC
from tests.cli import ROOT

pytestmark = pytest.mark.cluster


def _report(cluster, *args: str, kubeconfig: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUBECONFIG": kubeconfig or str(cluster.kubeconfig)}
    return subprocess.run(
        [sys.executable, "-m", "krally", "report", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )


def test_a_missing_task_and_a_task_not_started(cluster, crd_installed, namespace, tmp_path):
    done = _report(cluster, "-n", namespace, "bt/nope", "--html", str(tmp_path / "r.html"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        f'error: benchmarktask "nope" not found in namespace {namespace}'
    ), done.stderr
    body = json.dumps(bad_tasks.task("waiting", GOOD_SPEC))  # no operator: never starts
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=body)
    for reference in ("bt/waiting", "benchmarktasks.krally.dev/waiting"):
        done = _report(cluster, "-n", namespace, reference, "--junit", str(tmp_path / "r.xml"))
        assert done.returncode == 2, done.stdout + done.stderr
        assert "bt/waiting: the task has not started (phase Pending)" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "r.xml").exists()


def test_an_identity_that_may_not_read_tasks_is_told_so(
    cluster, crd_installed, namespace, tmp_path
):
    cluster.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    token = cluster.kubectl("create", "token", "nobody", "-n", namespace).stdout.strip()
    config = tmp_path / "kubeconfig"
    config.write_text(cluster.kubeconfig_text(token=token, namespace=namespace))
    done = _report(cluster, "bt/anything", kubeconfig=str(config))  # -n from the context
    assert done.returncode == 2, done.stdout + done.stderr
    line = done.stderr.strip()
    assert "forbidden" in line and namespace in line and len(line.splitlines()) == 1, line
