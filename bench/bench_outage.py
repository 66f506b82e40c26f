"""Outage-exact recovery against a real freeze: the full matrix of tests/outage.

HTTP load through krally's engine on a local server (127.0.0.1) that a ``sys_call`` hook
freezes with SIGSTOP for F seconds, then SIGCONT (tests/outage). For F in {0.5, 1, 2, 5} s x
concurrency {1, 2, 8} x the server's rate after the outage above / below the baseline's (its
delay 2 ms before; 0.5 ms or 3 ms after: latency still within the p95 tolerance), and 20
undisturbed runs with a no-op hook.

Prints, for each case, the freeze as the hook measured it, the truth (the server's resumption,
from the hook's start), krally's recoverySeconds and its error, ``degraded``, the baseline's
rate and the after window's rate over it; then a summary against the targets: |error| <= 0.25 s,
every freeze degraded, no undisturbed run degraded. Never passes or fails.

    python bench/bench_outage.py            # ~8 min on 2 cores
    python bench/bench_outage.py --quick    # F = 1 s only, 5 undisturbed runs
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import outage

TARGET = 0.25  # seconds
DELAY = 0.002
AFTER = {"above": 0.0005, "below": 0.003}


def freezes(durations: list[float], concurrencies: list[int]) -> list[float]:
    errors: list[float] = []
    degraded = 0
    print(
        f"{'F':>4} {'c':>2} {'after':>5} | {'frozen':>6} {'truth':>6} {'krally':>6} {'error':>6}"
        f" | degraded | {'base it/s':>9} {'after/base':>10}"
    )
    for freeze in durations:
        for concurrency in concurrencies:
            for name, after_delay in AFTER.items():
                run = outage.run(freeze, concurrency, delay=DELAY, after_delay=after_delay)
                entry = run.entry
                seconds = entry.get("recoverySeconds")
                degraded += entry.get("degraded") is True
                if run.error is not None:
                    errors.append(run.error)
                base = run.rate("baseline")
                ratio = run.rate("after") / base if base else float("nan")
                shown = "n/a" if seconds is None else f"{seconds:6.3f}"
                error = "n/a" if run.error is None else f"{run.error:+6.3f}"
                print(
                    f"{freeze:4g} {concurrency:2d} {name:>5} | {run.frozen or 0:6.3f}"
                    f" {run.truth or 0:6.3f} {shown:>6} {error:>6} | {entry.get('degraded')!s:>8}"
                    f" | {base:9.0f} {ratio:10.2f}",
                    flush=True,
                )
    cases = len(durations) * len(concurrencies) * len(AFTER)
    within = sum(1 for e in errors if abs(e) <= TARGET)
    print(
        f"freezes: {cases} runs; degraded {degraded}/{cases}; recovery within ±{TARGET} s of the"
        f" truth {within}/{cases}; error median {statistics.median(errors):+.3f} s, worst"
        f" {max(errors, key=abs):+.3f} s, mean |error| {statistics.fmean(map(abs, errors)):.3f} s"
        if errors
        else f"freezes: {cases} runs, none recovered"
    )
    return errors


def undisturbed(runs: int) -> None:
    flagged = 0
    rates = []
    for n in range(runs):
        run = outage.run(None, (1, 2, 8)[n % 3], delay=DELAY)
        flagged += run.entry.get("degraded") is True
        rates.append(run.rate("baseline"))
        if run.entry.get("degraded"):
            print(f"  undisturbed run {n + 1}: degraded, {run.entry}")
    print(
        f"undisturbed (no-op hook, concurrency 1, 2, 8 in turn): {runs} runs, degraded"
        f" {flagged}/{runs}; baseline {min(rates):.0f}-{max(rates):.0f} it/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        freezes([1.0], [1, 2, 8])
        undisturbed(5)
    else:
        freezes([0.5, 1.0, 2.0, 5.0], [1, 2, 8])
        undisturbed(20)


if __name__ == "__main__":
    main()
