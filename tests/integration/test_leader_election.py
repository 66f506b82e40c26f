"""Leader election (krally.kube.operator.leader) against a real API server, acting as the
operator's ServiceAccount with only the shipped leader-election Role (moved into the test's
namespace): one holder at a time, a live lease is not stolen, a stalled leader loses it and
notices, a released lease is taken at once, and the Role reaches no other Lease."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from krally.kube.operator.leader import LeaderElector, LeaseApi, LostLeadership

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
LEASE = "krally-operator"
SA = "krally-operator"


@pytest.fixture
def lease_client(cluster: Any, namespace: str) -> Any:
    cluster.kubectl("create", "serviceaccount", SA, "-n", namespace)
    manifest = ROOT / "manifests" / "operator" / "leader-election.yaml"
    docs = list(yaml.safe_load_all(manifest.read_text()))
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects") or []:
            subject["namespace"] = namespace
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    return cluster.api_client(token=cluster.token_for(namespace, SA))


def _elector(api: LeaseApi, identity: str) -> LeaderElector:
    return LeaderElector(api, identity, duration=4, renew_period=0.5, retry_period=0.5)


def test_one_leader_at_a_time_with_the_shipped_role(lease_client: Any, namespace: str) -> None:
    api = LeaseApi(namespace, LEASE, api_client=lease_client)

    async def scenario() -> None:
        a, b = _elector(api, "a"), _elector(api, "b")
        await asyncio.wait_for(a.acquire(), 30)  # creates the Lease
        assert api.get()["spec"]["holderIdentity"] == "a"
        keeping = asyncio.create_task(a.keep())
        # While `a` renews, `b` keeps waiting: its lease duration never passes without a change.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(b.acquire(), 8)
        assert api.get()["spec"]["holderIdentity"] == "a"
        # `a` stalls (no renewal, no release): `b` takes over once the lease expires.
        keeping.cancel()
        await asyncio.wait_for(b.acquire(), 30)
        spec = api.get()["spec"]
        assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("b", 1)
        # `a` wakes up: its write with the old resourceVersion conflicts, it sees it lost.
        with pytest.raises(LostLeadership, match="held by b"):
            await a.renew_once()
        # `b` stops on purpose: a newcomer takes the released lease at its first try.
        await b.release()
        assert not api.get()["spec"].get("holderIdentity")
        assert await _elector(api, "c").try_once()
        assert api.get()["spec"]["holderIdentity"] == "c"

    asyncio.run(scenario())


def test_the_role_reaches_only_the_operators_lease(lease_client: Any, namespace: str) -> None:
    other = LeaseApi(namespace, "someone-elses", api_client=lease_client)
    with pytest.raises(ApiException) as refused:
        other.get()
    assert refused.value.status == 403
