"""The dip detector's measured validation figures, shipped with the package.

`benchmarks/detector_validation.py --write` measures them on planted curves and writes the file;
the analysis only reads it, so the report quotes what was measured, never a typed-in number.
"""

from __future__ import annotations

from importlib import resources

from pydantic import ValidationError

from sftscope.analysis_file import DetectorValidation, MethodNote
from sftscope.errors import InputError

VALIDATION_FILE = "data/detector_validation.json"


def detector_validation() -> DetectorValidation | None:
    """The shipped figures; None when the benchmark has not written them."""
    path = resources.files("sftscope.analyze").joinpath(VALIDATION_FILE)
    if not path.is_file():
        return None
    try:
        return DetectorValidation.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise InputError(str(path), f"not the benchmark's output: {exc.errors()[0]['msg']}") from exc


def validation_note(figures: DetectorValidation) -> MethodNote:
    """The figures in words, for the report's methods section."""
    shapes = ", ".join(f"{n} {shape}" for shape, n in figures.runs_per_shape.items())
    depths = ", ".join(f"{rate:.0%} at {size}" for size, rate in figures.recall_by_size.items())
    lo, hi = figures.size_range
    text = (
        f"`{figures.command}` ({figures.date}) planted known shapes in {figures.runs} synthetic runs "
        f"({shapes}) over {', '.join(map(str, figures.prompt_counts))} prompts with one sample each, on the "
        f"checkpoint schedules {', '.join(figures.spacings)}, with sizes of {lo:g} to {hi:g} CI widths (the "
        f"full width of the base score's 95% interval), and judged each with the rule above. The "
        f"dip-and-recovery label's precision was {figures.precision:.1%} and its recall {figures.recall:.1%} "
        f"({depths} CI widths; {figures.recall_at_2ci:.1%} for dips of at least 2 CI widths). On flat and "
        f"monotone runs it fired in {figures.false_positive_rate:.1%}; on dips that never came back to base, "
        f"in {figures.false_positive_by_shape.get('dip-no-recovery', float('nan')):.1%}."
    )
    return MethodNote(key="detector-validation", title="Dip detector validation", text=text)
