"""One pod's part of a distributed load (``runner.parallelism: N``): which iterations it runs.

A load spread over ``count`` runner pods runs as ``count`` shards; shard ``index`` runs the
global iterations ``index + 1, index + 1 + count, index + 1 + 2*count, ...`` (interleaved, not
blocks). Why interleaved: the shards start together and run at the same pace, so global
iteration n starts close to when it would in one pod, and an iteration trigger ("iteration 1500
of 3000 starts") fires halfway through the load, as written; with blocks, iteration 1500 would be
shard 1's first and fire at the very start. Each number has exactly one owner, so an iteration
trigger fires exactly once, from the pod that starts that iteration. Time triggers are kept by
shard 0 alone (:attr:`Shard.keeps_time`), counting from the shared start instant.

Concurrency, rates and ``max_concurrency`` are split with Rally's divmod split
(:meth:`Shard.part`), so the shards' shares add up to the total exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from krally.api.spec_schema import MAX_PARALLELISM, POD_FAILURE_POLICIES

__all__ = ["MAX_PARALLELISM", "POD_FAILURE_POLICIES", "Shard"]


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (the default: the whole load in one place)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_PARALLELISM or not 0 <= self.index < self.count:
            raise ValueError(f"no shard {self.index} of {self.count}")

    @property
    def whole(self) -> bool:
        """True when this shard is the whole load (one pod)."""
        return self.count == 1

    @property
    def keeps_time(self) -> bool:
        """Whether this shard fires the time triggers (exactly one shard does)."""
        return self.index == 0

    def global_number(self, local: int) -> int:
        """The global number of this shard's ``local``-th iteration (both from 1)."""
        return (local - 1) * self.count + self.index + 1

    def owns(self, number: int) -> bool:
        """Whether global iteration ``number`` is this shard's."""
        return number >= 1 and (number - 1) % self.count == self.index

    def share(self, total: int) -> int:
        """How many of the global iterations 1..``total`` this shard runs."""
        return len(range(self.index + 1, total + 1, self.count))

    def part(self, value: int) -> int:
        """This shard's part of ``value`` (e.g. the concurrency): divmod split, the first
        shards one larger, so the parts add up to ``value``."""
        share, extra = divmod(value, self.count)
        return share + (1 if self.index < extra else 0)
