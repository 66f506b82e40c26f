"""A real outage of known length: a local server frozen by a sys_call hook (see the package).

Each case checks the engine's verdict against the freeze as the hook measured it (SIGSTOP and
SIGCONT instants), never against the analysis itself. The full matrix (F in 0.5, 1, 2, 5 s x
concurrency 1, 2, 8, the rate after the outage above and below the baseline's, 20 undisturbed
runs) is bench/bench_outage.py; here a few representative cases (about 55 s in all).
"""

from __future__ import annotations

import pytest

from tests import outage

TOLERANCE = 0.25  # seconds: one bucket (resolutionSeconds) either way
MIN_RATE = 100  # iterations per second: the load must be dense enough to see the freeze


@pytest.mark.parametrize(("freeze", "concurrency"), [(0.5, 8), (1.0, 2), (2.0, 1)])
def test_recovery_is_the_freeze(freeze: float, concurrency: int) -> None:
    run = outage.run(freeze, concurrency)
    entry = run.entry
    assert run.frozen == pytest.approx(freeze, abs=0.1), "the hook did not freeze as asked"
    assert run.rate("baseline") >= MIN_RATE, f"the load was too slow: {run.rate('baseline')}"
    assert entry["degraded"] is True and entry["recovered"] is True, entry
    assert run.error is not None and abs(run.error) <= TOLERANCE, (
        f"recovery {entry['recoverySeconds']:.3f} s, the server resumed {run.truth:.3f} s "
        f"after the hook started (frozen {run.frozen:.3f} s)"
    )


@pytest.mark.parametrize("concurrency", [1, 8])
def test_an_undisturbed_run_with_a_no_op_hook_is_not_degraded(concurrency: int) -> None:
    run = outage.run(None, concurrency)
    assert run.rate("baseline") >= MIN_RATE
    assert run.failures == 0
    assert run.entry["degraded"] is False, run.entry
    assert run.entry["recoverySeconds"] == 0.0
