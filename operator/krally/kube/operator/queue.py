"""The work queue: at most one reconcile per task at a time, bursts coalesced into one more.

``kick(key)`` asks for a pass; kicks arriving while one runs make exactly one more pass after it.
A failed pass is retried after the retry policy's back-off (level-based: the next watch event
would retry it too). ``later(key, delay)`` keeps one deferred kick per task (a held-back status
write); ``spawn`` keeps background work referenced until it ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from krally.kube.operator.planner import Key
from krally.kube.operator.retry import RetryPolicy

log = logging.getLogger("krally.operator")


@dataclass
class _Slot:
    dirty: bool = False
    running: bool = False
    timer: asyncio.TimerHandle | None = None


class WorkQueue:
    def __init__(
        self, work: Callable[[Key], Awaitable[None]], policy: RetryPolicy | None = None
    ) -> None:
        self._work = work
        self._policy = policy or RetryPolicy()
        self._slots: dict[Key, _Slot] = {}
        self._background: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._slots)

    def kick(self, key: Key) -> None:
        slot = self._slots.setdefault(key, _Slot())
        slot.dirty = True
        if slot.running:
            return
        slot.running = True
        self.spawn(self._loop(key, slot))

    def later(self, key: Key, delay: float) -> None:
        """Kick ``key`` after ``delay`` seconds, unless a deferred kick is already pending."""
        slot = self._slots.setdefault(key, _Slot())
        if slot.timer is None:
            slot.timer = asyncio.get_running_loop().call_later(delay, self._fire_later, key)

    def cancel_later(self, key: Key) -> None:
        slot = self._slots.get(key)
        if slot is not None and slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None

    def forget(self, key: Key) -> None:
        self.cancel_later(key)
        self._slots.pop(key, None)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def idle(self, timeout: float = 5.0) -> None:
        """Wait until no pass or background work is left (tests)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._background and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)

    def _fire_later(self, key: Key) -> None:
        slot = self._slots.get(key)
        if slot is not None:
            slot.timer = None
            self.kick(key)

    async def _loop(self, key: Key, slot: _Slot) -> None:
        try:
            failures = 0
            while slot.dirty:
                slot.dirty = False
                try:
                    await self._work(key)
                    failures = 0
                except Exception as exc:
                    failures += 1
                    delay = self._policy.backoff(failures)
                    if self._policy.transient(exc):  # an outage: one line, not a traceback each
                        log.warning("reconcile of %s/%s failed (%s); again in %.1f s",
                                    *key, type(exc).__name__, delay)  # fmt: skip
                    else:
                        log.exception("reconcile of %s/%s failed", *key)
                    await asyncio.sleep(delay)
                    slot.dirty = True
        finally:
            slot.running = False
