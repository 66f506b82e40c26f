"""Leader election on a ``coordination.k8s.io/v1`` Lease: only the leader reconciles.

Two operator replicas each run this loop beside kopf; the one holding the Lease reconciles, the
other keeps its watches warm and serves the admission webhook, and takes over on a lost Lease.
The rules are client-go's:

- A Lease is live while its record (holder, renewTime, transitions) keeps changing. A follower
  times its expiry from when *it* last saw the record change (its own monotonic clock), never
  from the renewTime written by another machine, so clock skew cannot make it steal a live lease.
- The leader renews every ``renew_period``; if it has not renewed for ``renew_deadline`` (shorter
  than the lease duration) it gives up before any follower may take over, then the process
  exits non-zero and its Deployment restarts it (controller-runtime does the same).
- Writes carry the read ``resourceVersion``: two candidates racing for an expired Lease get one
  success and one 409, never two leaders.
- A leader stopped on purpose (SIGTERM, e.g. a rolling update) releases the Lease, so the next
  replica takes over at once instead of after the lease duration.

A short overlap (a leader stalled past its deadline) cannot fire a hook twice anyway: the
operator is level-based, its children have deterministic names, so the second create of the same
Job is a 409 and the new leader rebuilds everything it needs from the cluster.

The pure parts (:func:`observe`, :func:`decide`, :func:`lease_spec`, :func:`release_spec`) take
plain dicts and a clock value; :class:`LeaderElector` does the API calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from krally.kube import client as kclient

log = logging.getLogger("krally.operator")

Obj = dict[str, Any]
Decision = Literal["create", "renew", "acquire", "wait"]

GROUP, VERSION, PLURAL = "coordination.k8s.io", "v1", "leases"


@dataclass(frozen=True)
class Observation:
    """The Lease record a candidate last saw change, and when (its monotonic clock)."""

    record: tuple[Any, ...]
    at: float


def record(spec: Obj | None) -> tuple[Any, ...]:
    """What identifies one write of the Lease by its holder."""
    spec = spec or {}
    return (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))


def observe(previous: Observation | None, spec: Obj | None, clock: float) -> Observation:
    """The observation after reading ``spec`` at ``clock``: the time only moves on a change."""
    current = record(spec)
    if previous is not None and previous.record == current:
        return previous
    return Observation(current, clock)


def decide(
    spec: Obj | None,
    identity: str,
    observation: Observation | None,
    clock: float,
    default_duration: float,
) -> Decision:
    """What a candidate does with the Lease ``spec`` it just read (None: no Lease yet)."""
    if spec is None:
        return "create"
    holder = spec.get("holderIdentity")
    if holder == identity:
        return "renew"
    if not holder:
        return "acquire"  # released
    if observation is None or observation.record != record(spec):
        return "wait"  # a change just seen: the holder is alive
    duration = float(spec.get("leaseDurationSeconds") or default_duration)
    return "acquire" if clock >= observation.at + duration else "wait"


def microtime(now: datetime) -> str:
    """A Kubernetes MicroTime: RFC 3339 in UTC with microseconds."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_spec(spec: Obj | None, identity: str, now: datetime, duration: int) -> Obj:
    """The spec ``identity`` writes to hold the Lease: a renewal keeps acquireTime and the
    transition count; taking it from another holder (or a released one) counts a transition."""
    spec = spec or {}
    stamp = microtime(now)
    renewing = spec.get("holderIdentity") == identity
    transitions = int(spec.get("leaseTransitions") or 0)
    return {
        "holderIdentity": identity,
        "leaseDurationSeconds": int(duration),
        "acquireTime": spec.get("acquireTime") if renewing else stamp,
        "renewTime": stamp,
        "leaseTransitions": transitions if renewing or not spec else transitions + 1,
    }


def release_spec(spec: Obj, now: datetime) -> Obj:
    """Given up on purpose: no holder and a one-second duration (client-go's release)."""
    stamp = microtime(now)
    return {
        "holderIdentity": None,
        "leaseDurationSeconds": 1,
        "acquireTime": stamp,
        "renewTime": stamp,
        "leaseTransitions": spec.get("leaseTransitions") or 0,
    }


def default_identity(pod_name: str | None) -> str:
    """The pod's name (downward API) or the host name, plus a per-process suffix: a restarted
    container is a new candidate, never mistaken for the holder it replaced."""
    return f"{pod_name or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


# -- the API side ------------------------------------------------------------------------------


class Conflict(Exception):
    """The Lease was written (or created) by someone else since it was read."""


class LeaseApi:
    """get/create/replace of one Lease as plain dicts, each call with a timeout (blocking: the
    elector runs them in a thread)."""

    def __init__(
        self, namespace: str, name: str, timeout: float = 5.0, api_client: Any = None
    ) -> None:

        if api_client is None:
            api_client = kclient.api_client()
        self.api = client.CustomObjectsApi(api_client)
        self.namespace, self.name, self.timeout = namespace, name, timeout

    def get(self) -> Obj | None:

        try:
            obj: Obj = self.api.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name, _request_timeout=self.timeout
            )  # type: ignore[assignment]  # the client types it as object: it is the JSON dict
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    def create(self, spec: Obj) -> Obj:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": spec,
        }
        return self._conflicts(
            self.api.create_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL, body
        )

    def replace(self, lease: Obj, spec: Obj) -> Obj:
        # The read resourceVersion makes this a compare-and-swap: a concurrent write is a 409.
        body = {**lease, "spec": spec}
        return self._conflicts(
            self.api.replace_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            self.name,
            body,
        )

    def _conflicts(self, fn: Callable[..., Any], *args: Any) -> Obj:

        try:
            result: Obj = fn(*args, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(str(exc.reason)) from exc
            raise
        return result


class LostLeadership(Exception):
    pass


class LeaderElector:
    """One candidate for the Lease. ``acquire()`` returns once leading; ``keep()`` renews and
    raises :class:`LostLeadership` when the lease is lost; ``release()`` gives it up."""

    def __init__(
        self,
        api: Any,
        identity: str,
        *,
        duration: int = 10,
        renew_period: float = 2.0,
        retry_period: float = 2.0,
        renew_deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.api, self.identity, self.duration = api, identity, duration
        self.renew_period, self.retry_period = renew_period, retry_period
        # Give up well before a follower may take over (client-go: 10 s lease, 8 s deadline).
        self.renew_deadline = renew_deadline if renew_deadline is not None else 0.7 * duration
        self.clock, self.wall = clock, wall
        self.observation: Observation | None = None
        self.lease: Obj | None = None
        self.renewed_at = 0.0

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def try_once(self) -> bool:
        """One read and, if the rules allow, one write. True if this candidate now leads."""
        lease = await self._call(self.api.get)
        spec = (lease or {}).get("spec") if lease is not None else None
        now = self.clock()
        self.observation = observe(self.observation, spec, now)
        decision = decide(spec, self.identity, self.observation, now, self.duration)
        if decision == "wait":
            self.lease = lease
            return False
        new_spec = lease_spec(spec, self.identity, self.wall(), self.duration)
        try:
            if decision == "create":
                self.lease = await self._call(self.api.create, new_spec)
            else:
                self.lease = await self._call(self.api.replace, lease, new_spec)
        except Conflict:
            return False  # another candidate won the race: read again
        self.renewed_at = self.clock()
        return True

    def _retry_delay(self) -> float:
        """Poll every retry period, but wake right when the observed lease would expire."""
        spec = (self.lease or {}).get("spec") or {}
        if self.observation is None or not spec.get("holderIdentity"):
            return self.retry_period
        duration = float(spec.get("leaseDurationSeconds") or self.duration)
        left = self.observation.at + duration - self.clock()
        return max(0.05, min(self.retry_period, left + 0.05))

    async def acquire(self) -> None:
        holder: Any = object()
        while True:
            try:
                if await self.try_once():
                    log.info("became leader: %s holds the lease", self.identity)
                    return
                current = ((self.lease or {}).get("spec") or {}).get("holderIdentity")
                if current != holder:
                    holder = current
                    log.info("waiting for the lease, held by %s", current)
            except Exception as exc:  # an API error: keep trying, as a follower does nothing
                log.warning("lease read/write failed (%s); retrying", exc)
            await asyncio.sleep(self._retry_delay())

    async def renew_once(self) -> None:
        """One renewal attempt; raises LostLeadership if another holder is seen."""
        lease = self.lease
        try:
            if lease is None:
                raise Conflict("no lease read yet")
            self.lease = await self._call(
                self.api.replace, lease, lease_spec(lease.get("spec"), self.identity,
                                                   self.wall(), self.duration)
            )  # fmt: skip
            self.renewed_at = self.clock()
            return
        except Conflict:
            pass
        # Written by someone else since our last write: read it and see whose it is now.
        lease = await self._call(self.api.get)
        holder = ((lease or {}).get("spec") or {}).get("holderIdentity")
        if holder != self.identity:
            raise LostLeadership(f"the lease is now held by {holder or 'nobody'}")
        self.lease = lease

    async def keep(self) -> None:
        """Renew until the lease is lost (raises LostLeadership)."""
        while True:
            await asyncio.sleep(self.renew_period)
            try:
                await asyncio.wait_for(self.renew_once(), timeout=self.renew_period * 2)
            except LostLeadership:
                raise
            except Exception as exc:
                log.warning("lease renewal failed (%s)", exc)
            if self.clock() - self.renewed_at > self.renew_deadline:
                raise LostLeadership(f"not renewed for {self.renew_deadline:.0f} s")

    async def release(self) -> None:
        if self.lease is None:
            return
        try:
            await self._call(
                self.api.replace, self.lease, release_spec(self.lease["spec"], self.wall())
            )
            log.info("released the lease")
        except Exception as exc:  # the lease expires by itself anyway
            log.warning("could not release the lease (%s)", exc)


# -- kopf under the lease -------------------------------------------------------------------


class Leadership:
    """Whether this replica may act. Every replica runs kopf (its watches keep the store warm
    and it serves the admission webhook, which the Service may route to any replica); only the
    leader's controller reconciles. ``on_acquired`` callbacks run when this replica takes over
    (the controller then reconciles every task it already knows)."""

    def __init__(self, leading: bool = False) -> None:
        self.leading = leading
        self._listeners: list[Callable[[], None]] = []

    def on_acquired(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def acquired(self) -> None:
        self.leading = True
        for listener in self._listeners:
            listener()


async def run_leading(
    elector: LeaderElector,
    operator: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
    leadership: Leadership,
    *,
    stop_grace: float = 5.0,
) -> int:
    """Run ``operator(stop_flag)`` at once and, beside it, wait for the lease, then keep it
    (``leadership`` says which phase we are in). Returns 0 when the operator stops by itself (a
    signal; a held lease is released); on a lost lease, stops the operator and exits the process
    with 1 at once (a restarted pod rebuilds from the cluster)."""
    stop = asyncio.Event()
    running = asyncio.create_task(operator(stop), name="kopf operator")

    async def elect() -> None:
        await elector.acquire()
        # The loop is single-threaded: the flag and the kicks it triggers happen together.
        leadership.acquired()
        await elector.keep()

    electing = asyncio.create_task(elect(), name="leader election")
    await asyncio.wait({running, electing}, return_when=asyncio.FIRST_COMPLETED)
    if electing.done():
        log.error("lost leadership (%s): stopping", electing.exception())
        stop.set()
        with contextlib.suppress(BaseException):  # stopping anyway
            await asyncio.wait_for(running, timeout=stop_grace)
        logging.shutdown()
        os._exit(1)  # no lingering thread may keep a non-leader acting
    electing.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await electing
    if leadership.leading:
        await elector.release()
    running.result()  # re-raise the operator's own failure
    return 0
