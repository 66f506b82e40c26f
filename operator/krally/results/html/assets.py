"""The chart library the HTML report embeds: uPlot, pinned and checked.

Why uPlot: MIT licensed, one 50 KB script and a 2 KB stylesheet with no dependencies (Chart.js
is 200 KB, ECharts 1 MB, Plotly 3.5 MB: the last alone would take most of the 5 MB budget), made
for time series (thousands of points per chart draw in milliseconds), maintained since 2019
with regular releases. It is embedded in the report (offline, no CDN) and is not in krally's
repository: ``scripts/fetch-chart-lib`` takes the npm package (integrity checked against the
hash below) into ``vendor/`` beside this module, which pip then installs as package data;
the image's Dockerfile does the same in a build stage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from krally.errors import KrallyError

UPLOT_VERSION = "1.6.32"
# npm's `integrity` of uplot-1.6.32.tgz (Subresource Integrity form): what the fetch checks.
UPLOT_INTEGRITY = (
    "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGz"
    "Qm/ep3tOkyTxpiQIw=="
)
# The files the report needs, from the package's dist/ (and its licence, kept beside them).
FILES = ("uPlot.iife.min.js", "uPlot.min.css", "LICENSE")
VENDOR_DIR = Path(__file__).resolve().parent / "vendor"
ENV_DIR = "KRALLY_CHART_LIB_DIR"  # another folder holding FILES (e.g. a distribution's package)


class ChartLibraryMissing(KrallyError):
    pass


@dataclass(frozen=True)
class ChartLibrary:
    script: str
    stylesheet: str
    licence: str


def chart_library() -> ChartLibrary:
    """uPlot's script, stylesheet and licence, from $KRALLY_CHART_LIB_DIR or ``vendor/``."""
    candidates = [Path(os.environ[ENV_DIR])] if os.environ.get(ENV_DIR) else []
    candidates.append(VENDOR_DIR)
    for folder in candidates:
        if all((folder / name).is_file() for name in FILES):
            script, css, licence = ((folder / name).read_text("utf-8") for name in FILES)
            return ChartLibrary(script, css, licence)
    where = " or ".join(str(c) for c in candidates)
    raise ChartLibraryMissing(
        f"the HTML report's chart library (uPlot {UPLOT_VERSION}) is not installed in {where}: "
        "run scripts/fetch-chart-lib (it needs npm), or set "
        f"{ENV_DIR} to a folder with {', '.join(FILES)}"
    )
