"""One visual language for every figure: colour = data condition, line style = base model.

Figures are rendered to inline SVG with text as paths, so the page needs no fonts, scripts or
files beyond itself and looks the same in every browser.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar

import matplotlib
from matplotlib.figure import Figure

P = ParamSpec("P")
R = TypeVar("R")

# Okabe-Ito: distinguishable with the common colour-vision deficiencies and in greyscale print.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P")

RC = {
    "figure.dpi": 100,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.6,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "svg.fonttype": "path",
    "svg.hashsalt": "sftscope",  # stable element ids: the same analysis gives the same page
}


class Styles:
    """Stable colour per condition and line style/marker per base, shared by all figures of a report."""

    def __init__(self, conditions: Iterable[str], bases: Iterable[str]) -> None:
        self.conditions = sorted(set(conditions))
        self.bases = sorted(set(bases))

    def colour(self, condition: str) -> str:
        return PALETTE[self.conditions.index(condition) % len(PALETTE)]

    def linestyle(self, base: str) -> str:
        return LINESTYLES[self.bases.index(base) % len(LINESTYLES)]

    def marker(self, base: str) -> str:
        return MARKERS[self.bases.index(base) % len(MARKERS)]


def styled(plot: Callable[P, R]) -> Callable[P, R]:
    """Run a plotting function under the report's rcParams without touching the global ones."""

    @functools.wraps(plot)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with matplotlib.rc_context(RC):
            return plot(*args, **kwargs)

    return wrapper


def new_figure(
    n_panels: int, columns: int = 3, panel: tuple[float, float] = (3.4, 2.5)
) -> tuple[Figure, list]:
    """A grid of panels; unused trailing panels are removed."""
    columns = max(1, min(columns, n_panels))
    rows = -(-n_panels // columns)
    # A bare Figure, not pyplot: no global backend or figure registry is touched, so building a
    # report inside a notebook or another program leaves its matplotlib state alone.
    fig = Figure(figsize=(panel[0] * columns, panel[1] * rows + 0.5))
    axes = fig.subplots(rows, columns, squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n_panels:]:
        ax.remove()
    return fig, flat[:n_panels]


def to_svg(fig: Figure) -> str:
    """The figure as an inline <svg> element (no XML prologue)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]
