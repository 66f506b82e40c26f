"""Leader election's decisions (krally.kube.operator.leader): plain dicts and a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from krally.kube.operator.leader import (
    Observation,
    decide,
    default_identity,
    lease_spec,
    observe,
    release_spec,
)
from krally.kube.operator.settings import Settings

NOW = datetime(2026, 12, 1, 20, 0, 0, 123456, tzinfo=UTC)


def held(holder: str, renew: str = "2026-12-01T20:00:00.000000Z", duration: int = 10) -> dict:
    return {
        "holderIdentity": holder,
        "leaseDurationSeconds": duration,
        "renewTime": renew,
        "acquireTime": "2026-12-01T19:00:00.000000Z",
        "leaseTransitions": 3,
    }


def test_no_lease_is_created() -> None:
    assert decide(None, "me", None, clock=0.0, default_duration=10) == "create"


def test_own_lease_is_renewed() -> None:
    spec = held("me")
    seen = observe(None, spec, 100.0)
    assert decide(spec, "me", seen, clock=500.0, default_duration=10) == "renew"


def test_a_live_lease_of_another_is_not_stolen() -> None:
    spec = held("other")
    seen = observe(None, spec, 100.0)
    # First sight, then every read before the duration has passed since the last change: wait.
    assert decide(spec, "me", seen, clock=100.0, default_duration=10) == "wait"
    assert decide(spec, "me", observe(seen, spec, 109.9), clock=109.9, default_duration=10) == (
        "wait"
    )
    # The holder renews at 108: the record changes, the expiry moves with it.
    renewed = held("other", renew="2026-12-01T20:00:08.000000Z")
    seen = observe(seen, renewed, 108.5)
    assert seen.at == 108.5
    assert decide(renewed, "me", seen, clock=115.0, default_duration=10) == "wait"
    assert decide(renewed, "me", seen, clock=118.5, default_duration=10) == "acquire"


def test_an_expired_lease_is_acquired_by_our_clock_not_its_renew_time() -> None:
    # The renewTime is far in the past by our wall clock (skew, or a stopped holder): that alone
    # does not expire it; a duration of our own clock with no change does.
    spec = held("other", renew="2000-01-01T00:00:00.000000Z", duration=10)
    seen = observe(None, spec, 50.0)
    assert decide(spec, "me", seen, clock=55.0, default_duration=10) == "wait"
    assert decide(spec, "me", observe(seen, spec, 60.0), clock=60.0, default_duration=10) == (
        "acquire"
    )


def test_the_lease_duration_of_the_lease_counts() -> None:
    spec = held("other", duration=30)
    seen = observe(None, spec, 0.0)
    assert decide(spec, "me", seen, clock=20.0, default_duration=10) == "wait"
    assert decide(spec, "me", seen, clock=30.0, default_duration=10) == "acquire"


def test_a_released_lease_is_acquired_at_once() -> None:
    spec = release_spec(held("other"), NOW)
    assert spec["holderIdentity"] is None and spec["leaseDurationSeconds"] == 1
    assert spec["leaseTransitions"] == 3
    assert decide(spec, "me", observe(None, spec, 0.0), clock=0.0, default_duration=10) == (
        "acquire"
    )


def test_observation_time_moves_only_on_a_change() -> None:
    spec = held("other")
    first = observe(None, spec, 1.0)
    assert observe(first, dict(spec), 5.0) is first
    assert observe(first, {**spec, "leaseTransitions": 4}, 5.0) == Observation(
        ("other", spec["renewTime"], 4), 5.0
    )


def test_lease_spec_renewal_keeps_acquire_time_and_transitions() -> None:
    spec = lease_spec(held("me"), "me", NOW, 10)
    assert spec == {
        "holderIdentity": "me",
        "leaseDurationSeconds": 10,
        "acquireTime": "2026-12-01T19:00:00.000000Z",
        "renewTime": "2026-12-01T20:00:00.123456Z",
        "leaseTransitions": 3,
    }


def test_lease_spec_takeover_counts_a_transition() -> None:
    spec = lease_spec(held("other"), "me", NOW, 10)
    assert spec["holderIdentity"] == "me"
    assert spec["acquireTime"] == spec["renewTime"] == "2026-12-01T20:00:00.123456Z"
    assert spec["leaseTransitions"] == 4
    assert lease_spec(None, "me", NOW, 10)["leaseTransitions"] == 0  # a new lease


def test_identity_is_the_pod_name_and_unique_per_process() -> None:
    one, two = default_identity("krally-operator-abc"), default_identity("krally-operator-abc")
    assert one.startswith("krally-operator-abc_") and one != two


def test_leader_election_settings() -> None:
    assert Settings.from_env({}).leader_elect is False
    settings = Settings.load(
        {
            "KRALLY_LEADER_LEASE": "lease",
            "KRALLY_LEADER_NAMESPACE": "ops",
            "KRALLY_LEASE_DURATION": "15",
            "KRALLY_POD_NAME": "pod-1",
        },
        leader_elect=True,
    )
    assert (settings.leader_elect, settings.leader_lease, settings.leader_namespace) == (
        True,
        "lease",
        "ops",
    )
    assert (settings.lease_duration, settings.pod_name) == (15, "pod-1")
    assert Settings.from_env({"KRALLY_LEADER_ELECT": "1"}).leader_elect is True


@pytest.mark.parametrize("text", ["2", "ten", "-5"])
def test_a_bad_lease_duration_is_refused_by_name(text: str) -> None:
    with pytest.raises(ValueError, match="KRALLY_LEASE_DURATION"):
        Settings.from_env({"KRALLY_LEASE_DURATION": text})


def test_a_follower_does_nothing_until_it_leads_then_reconciles_every_known_task() -> None:
    """Followers run kopf (warm watches, the webhook) but their controller acts only once the
    Lease is theirs; then every task the watch has shown is reconciled at once."""
    import asyncio

    from tests.unit.test_kube_controller import KEY, FakeApi, make_task

    from krally.kube.operator.controller import Controller
    from krally.kube.operator.leader import Leadership
    from krally.kube.operator.store import Store

    api = FakeApi()
    store = Store({"task_index": {KEY: [make_task()]}, "job_index": {}, "pod_index": {}})
    leadership = Leadership()

    async def scenario() -> None:
        op = Controller(Settings(), api, store=store, leadership=leadership)
        op.kick(KEY)  # a watch event while following
        await op.queue.idle()
        assert api.created == [] and api.patches == []
        leadership.acquired()
        await op.queue.idle()

    asyncio.run(scenario())
    assert ("Job", "krally-t-runner") in api.created
    assert api.patches and api.patches[0]["phase"] == "Pending"
