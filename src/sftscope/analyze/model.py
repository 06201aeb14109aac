"""The analysis record: everything the report shows, as numbers, serialised to `analysis.json`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from sftscope.analyze.bootstrap import Estimate
from sftscope.analyze.dips import DipResult

ANALYSIS_FILE = "analysis.json"


class RunMeta(BaseModel):
    """What a run is: which data condition, on which base, with which recipe (a runs.json entry)."""

    model_config = ConfigDict(extra="forbid")

    condition: str = "unknown"
    """Data condition (the data directory's name, e.g. `countdown-long-cot-verified`)."""
    base: str = "unknown"
    """Base model name."""
    preset: str | None = None
    """Training preset, when one was used."""
    seed: int | None = None
    """Training seed."""
    capability: str | None = None
    """Capability label of the base (e.g. weak, strong), when the study spec gives one."""
    blocks: list[str] = Field(default_factory=list)
    """The study's grid blocks (questions) this run belongs to."""
    run_dir: str | None = None
    """Where the run's directory is, when known (a study writes it; the analysis does not need it)."""


class RunInfo(RunMeta):
    """A run's metadata with the name it has in the results store."""

    run: str
    """Run name as it appears in the results store."""


class TaskInfo(BaseModel):
    """One evaluation task as seen in the store."""

    task: str
    """Task name."""
    domain: str
    """`in-domain`, `cross-domain`, `safety`, `general`, or the derived `over-refusal` (safety tasks
    that expect compliance)."""
    higher_is_better: bool
    """Direction of the score."""
    n_prompts: int
    """Distinct prompts over all runs."""
    n_samples: int
    """Rows in the store."""
    statuses: dict[str, int]
    """Row count per status (`ok`, `wrong`, `truncated`, `error`, ...): nothing is dropped unseen."""


class CurvePoint(BaseModel):
    """One checkpoint of a curve with its pointwise 95% interval."""

    step: int
    """Optimizer step (0 = base model)."""
    value: float | None
    """Mean over prompts of the per-prompt mean."""
    lo: float | None
    """Lower bound."""
    hi: float | None
    """Upper bound."""


class Curve(BaseModel):
    """A metric over training steps for one run and one task (or a domain average)."""

    run: str
    """Run name."""
    task: str
    """Task name, or `all <domain>` for the average over a domain's tasks."""
    domain: str
    """Domain of the task(s)."""
    metric: str
    """Metric name (see `sftscope.analyze.features.METRICS`, plus `procedure_index`)."""
    points: list[CurvePoint]
    """One point per evaluated checkpoint, in step order."""


class CalibrationRow(BaseModel):
    """Precision and recall of a behaviour classifier on one split of the labelled set."""

    classifier: str = "lexicon"
    """`lexicon`, or `judge` for the optional LLM judge."""
    behaviour: str
    """Behaviour name."""
    split: str
    """`calibration`, `holdout` or `all`."""
    precision: float
    """TP / (TP + FP)."""
    recall: float
    """TP / (TP + FN)."""
    support: int
    """Labelled positives."""
    n: int
    """Traces in the split."""


class EffectRow(BaseModel):
    """Score of one (condition, base, preset) cell in one domain at one step, averaged over its runs."""

    condition: str
    """Data condition."""
    base: str
    """Base model."""
    preset: str | None
    """Training preset."""
    domain: str
    """Domain averaged over its tasks (goodness: lower-is-better scores are flipped)."""
    step: int
    """Optimizer step; rows with equal steps are equal-budget comparisons."""
    n_runs: int
    """Runs (seeds) averaged."""
    score: Estimate
    """Mean domain score."""
    delta: Estimate
    """Score minus the base model's score (paired over prompts)."""


class BudgetComparison(BaseModel):
    """Conditions compared at the same number of optimizer steps."""

    base: str
    """Base model."""
    domain: str
    """Domain."""
    step: int
    """The largest step every arm of this base reached."""
    arm: str
    """The data condition, with the preset when this base was trained with several."""
    reference: str
    """The arm compared against."""
    delta: Estimate
    """This arm's gain over the base model."""
    vs_reference: Estimate | None
    """This arm's score minus the reference's (paired); None for the reference itself."""


class GainCost(BaseModel):
    """Per run: what the training gained in reasoning and cost in safety, at its last checkpoint."""

    run: str
    """Run name."""
    condition: str
    """Data condition."""
    base: str
    """Base model."""
    step: int
    """Last checkpoint."""
    in_domain_gain: Estimate | None
    """In-domain score change vs base."""
    cross_domain_gain: Estimate | None
    """Cross-domain score change vs base."""
    safety_cost: Estimate | None
    """Loss of safe behaviour (refusal-rate drop, or attack-success rise); positive = worse."""
    over_refusal: Estimate | None = None
    """Change in refusals of benign look-alikes (compliance-rate drop); positive = more over-refusal."""


class Finding(BaseModel):
    """One of the study's questions, answered only as far as the numbers allow."""

    key: str
    """`optimization`, `data`, `capability` or `cost`."""
    question: str
    """The question, in words."""
    observed: bool | None
    """True/False when measured; None when the runs cannot answer it (e.g. a single condition)."""
    estimate: Estimate | None
    """The headline number with its 95% interval."""
    statement: str
    """A sentence generated from the numbers."""


class Analysis(BaseModel):
    """Everything `sftscope report` renders."""

    source: str
    """Path of the results store."""
    runs: list[RunInfo]
    """Runs found in the store, with their metadata."""
    tasks: list[TaskInfo]
    """Tasks found in the store."""
    log_spaced_steps: bool
    """True when checkpoints are log-spaced (plots then use a log step axis)."""
    curves: list[Curve] = Field(default_factory=list)
    """Score, length, shape and behaviour curves."""
    dips: list[DipResult] = Field(default_factory=list)
    """Dip-and-recovery per (run, task) and per (run, domain average)."""
    effects: list[EffectRow] = Field(default_factory=list)
    """Condition x base x step table."""
    budget: list[BudgetComparison] = Field(default_factory=list)
    """Equal-budget comparisons between conditions."""
    gain_cost: list[GainCost] = Field(default_factory=list)
    """Reasoning gain vs safety cost per run."""
    behaviour_classifier: str = "lexicon"
    """What counted the behaviours in the curves: `lexicon`, or `judge <model> at <url>`."""
    calibration: list[CalibrationRow] = Field(default_factory=list)
    """Behaviour-classifier precision/recall on the labelled set."""
    calibration_errors: list[str] = Field(default_factory=list)
    """The labelled traces the classifier gets wrong."""
    findings: list[Finding] = Field(default_factory=list)
    """The four questions of the study."""
    notes: list[str] = Field(default_factory=list)
    """Caveats the reader needs (skipped curves, missing metadata, ...)."""

    def write(self, directory: Path) -> Path:
        path = Path(directory) / ANALYSIS_FILE
        path.write_text(self.model_dump_json(indent=1), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> Analysis:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))
