"""The e2e tests run on the real node: `cluster` here is the session's real-node cluster
(kubelet + containerd, runner and hook pods from the image built from Dockerfile)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cluster import Cluster
from tests.e2e.support import (
    CLUSTER_ROLE,
    CRD,
    OPERATOR_SA,
    REQUESTER_POLICY,
    SCHEDULE_CRD,
    Operator,
    wait_requester_policy,
)


@pytest.fixture(scope="session")
def cluster(real_cluster: Cluster) -> Iterator[Cluster]:
    yield real_cluster


@pytest.fixture(scope="session")
def crd_installed(cluster: Any) -> None:
    text = CRD.read_text() + "---\n" + SCHEDULE_CRD.read_text()
    cluster.apply_crd(text, "benchmarktasks.krally.dev", "benchmarkschedules.krally.dev")
    cluster.kubectl("apply", "-f", str(CLUSTER_ROLE))
    # The requester policy, as the install ships it: a task referencing a Secret, a ConfigMap
    # or a hook ServiceAccount runs only if it was in force at the task's creation.
    cluster.kubectl("apply", "-f", str(REQUESTER_POLICY))
    wait_requester_policy(cluster)


@pytest.fixture
def ns(cluster: Any, namespace: str, crd_installed: None) -> str:
    # Every pod krally creates must be admitted under the `restricted` Pod Security level.
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    cluster.kubectl("create", "serviceaccount", OPERATOR_SA, "-n", namespace)
    cluster.kubectl(
        "create", "rolebinding", OPERATOR_SA, "-n", namespace,
        "--clusterrole=krally-operator", f"--serviceaccount={namespace}:{OPERATOR_SA}",
    )  # fmt: skip
    # Cluster-scoped: reading the requester policy (requester.py), as the install grants.
    cluster.kubectl(
        "create", "clusterrolebinding", f"krally-requester-{namespace}"[:63],
        "--clusterrole=krally-operator-requester", f"--serviceaccount={namespace}:{OPERATOR_SA}",
    )  # fmt: skip
    return namespace


@pytest.fixture
def operator(cluster: Any, ns: str, tmp_path: Path) -> Iterator[Operator]:
    op = Operator(cluster, ns, tmp_path).start()
    yield op
    # Delete the tasks while the operator runs (there is no finalizer, but be tidy), then stop.
    cluster.kubectl("delete", "bt", "--all", "-n", ns, "--wait=false", check=False)
    op.stop()
    # Captured: pytest shows it with a failing test only.
    print(f"--- operator log ({op.log}) ---\n{op.output(120)}")
