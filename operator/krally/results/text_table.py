"""Rally-style ASCII tables for the command line's reports."""

from __future__ import annotations

from collections.abc import Sequence


def ascii_table(headers: Sequence[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def fmt(row: Sequence[str]) -> str:
        return "|" + "|".join(f" {c!s:<{w}} " for c, w in zip(row, widths, strict=True)) + "|"

    return "\n".join([line, fmt(headers), line, *(fmt(r) for r in rows), line]) + "\n"
