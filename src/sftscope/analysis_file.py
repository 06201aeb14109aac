"""The contract between analyze/ and report/: the schema of `analysis.json`.

`sftscope analyze` computes every number, label, interval and methods text the report shows and
writes them here; `sftscope report` reads this file and nothing else. Both stages import this module,
neither imports the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from sftscope.outdir import atomic_file

ANALYSIS_FILE = "analysis.json"
OVER_REFUSAL = "over-refusal"
"""The derived domain of safety tasks that expect compliance (refusing benign look-alikes)."""
DOMAIN_ORDER = ("in-domain", "cross-domain", "safety", OVER_REFUSAL, "general")
"""The order in which domains are shown."""

Label = Literal["dip-and-recovery", "dip-no-recovery", "monotone gain", "monotone loss", "flat within noise"]
LABELS: tuple[str, ...] = Label.__args__  # type: ignore[attr-defined]
Verdict = Literal["observed", "partly observed", "not observed", "not measurable"]
"""One verdict per finding; the report's badge and its sentence both come from it."""


class Estimate(BaseModel):
    """A point estimate with its confidence interval (bounds are None when undefined)."""

    value: float | None
    """The estimate on the full sample."""
    lo: float | None
    """Lower bound of the interval."""
    hi: float | None
    """Upper bound of the interval."""

    def excludes(self, x: float) -> bool:
        return self.lo is not None and self.hi is not None and not (self.lo <= x <= self.hi)


class DipResult(BaseModel):
    """Dip-and-recovery statistics of one (run, task) curve."""

    run: str
    """Run name."""
    task: str
    """Task name."""
    domain: str
    """`in-domain`, `cross-domain`, `safety` or `general`."""
    higher_is_better: bool
    """Direction of the score; deltas below are raw score differences."""
    steps: list[int]
    """Checkpoint steps, base (0) first."""
    n_prompts: int
    """Prompts shared across checkpoints (the bootstrap resamples these)."""
    base: Estimate
    """Score of the base model (step 0)."""
    lowest_step: int
    """Checkpoint with the lowest score, whether or not it is a dip."""
    lowest_delta: Estimate
    """Lowest score - base (simultaneous band): the largest drop, significant or not."""
    bottom_step: int | None
    """Step of the dip's bottom; None without a dip."""
    dip_depth: Estimate | None
    """Score(bottom) - base with the simultaneous band; None without a dip."""
    recovery_step: int | None
    """First checkpoint after the bottom back at >= base, given a significant rebound; None if never."""
    recovery_delta: Estimate | None
    """Score(recovery) - base with the simultaneous band."""
    best_step: int
    """Checkpoint with the best score."""
    best_delta: Estimate
    """Best score - base (simultaneous band)."""
    final_step: int
    """Last checkpoint."""
    final_delta: Estimate
    """Final score - base (percentile interval)."""
    label: Label
    """The curve's shape under the documented decision rule."""


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
    unsandboxed: int = 0
    """Rows whose model-written code ran without the sandbox (the user opted in with
    `allow_unsandboxed`)."""


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


class DeltaArm(BaseModel):
    """One data condition's arm in the equal-budget comparison of one base."""

    arm: str
    """The data condition (with the preset when the base was trained with several)."""
    delta: Estimate
    """The arm's cross-domain change over the base model."""
    margin: Estimate | None
    """The reference arm minus this arm (paired); None for the reference itself."""
    beaten: bool
    """True when the reference beat this arm beyond noise (the margin's interval is above 0)."""


class DataBase(BaseModel):
    """The data comparison on one base model."""

    base: str
    """Base model."""
    step: int
    """The equal-budget step."""
    reference: DeltaArm
    """The reference arm (verified long-CoT by default)."""
    others: list[DeltaArm]
    """Every other arm."""


class BaseProcedure(BaseModel):
    """One base model's side of the capability comparison."""

    base: str
    """Base model."""
    label: str | None
    """Its capability label in the study spec, when given."""
    strength: float
    """Mean base-model (step 0) score over in- and cross-domain tasks: the measured capability."""
    procedure: float | None
    """Share of backtrack markers followed by a genuinely different attempt; None without markers."""
    cross_domain_gains: list[Estimate]
    """Cross-domain change at each of its runs' last checkpoint."""


class CostRun(BaseModel):
    """One run's safety cost next to its reasoning gain."""

    run: str
    """Run name."""
    base: str
    """Base model."""
    cost: Estimate
    """Loss of safe behaviour; positive = less safe."""
    cross_domain_gain: Estimate | None
    """Cross-domain change at the same checkpoint."""
    over_refusal: Estimate | None
    """Change in refusals of benign look-alikes."""


class OptimizationFacts(BaseModel):
    """The numbers behind the optimization finding."""

    kind: Literal["optimization"] = "optimization"
    label_counts: dict[str, int]
    """Labels of the runs' cross-domain averages."""
    per_task_recovered: int
    """Single-task cross-domain curves labelled dip-and-recovery."""
    per_task_total: int
    """Single-task cross-domain curves."""
    headline: DipResult | None
    """The deepest recovered dip when observed, else the curve with the largest drop."""


class DataFacts(BaseModel):
    """The numbers behind the data finding."""

    kind: Literal["data"] = "data"
    bases: list[DataBase]
    """One comparison per base trained on two or more conditions."""


class CapabilityFacts(BaseModel):
    """The numbers behind the capability finding."""

    kind: Literal["capability"] = "capability"
    reference: str
    """The data condition both bases were trained on."""
    step: int
    """The equal-budget step compared."""
    strong: BaseProcedure
    """The stronger base."""
    weak: BaseProcedure
    """The weaker base."""


class CostFacts(BaseModel):
    """The numbers behind the cost finding."""

    kind: Literal["cost"] = "cost"
    reference: str
    """The data condition whose runs are counted."""
    runs: list[CostRun]
    """Each of its runs."""
    other_conditions: dict[str, float]
    """Mean cost of every other condition."""


Facts = OptimizationFacts | DataFacts | CapabilityFacts | CostFacts


class Finding(BaseModel):
    """One of the study's four questions, answered only as far as the numbers allow.

    The report words it; everything it says comes from these fields.
    """

    key: Literal["optimization", "data", "capability", "cost"]
    """Which question."""
    verdict: Verdict
    """`observed` only when the interval excludes zero in the stated direction for every compared run
    or arm; `partly observed` when for some; `not measurable` when the runs cannot answer it."""
    estimate: Estimate | None
    """The headline number with its 95% interval."""
    reason: str | None = None
    """Why it is not measurable (a short clause), when it is not."""
    facts: Annotated[Facts, Field(discriminator="kind")] | None = None
    """The numbers a sentence about it needs."""


class MethodNote(BaseModel):
    """A methods paragraph: how a number in the report was computed."""

    key: str
    """Short identifier (`dips`, `bootstrap`, `detector-validation`, ...)."""
    title: str
    """Heading."""
    text: str
    """The method, in words (may contain figures computed by a benchmark and shipped with the package)."""


class DetectorValidation(BaseModel):
    """How well the dip-and-recovery label finds planted shapes (`benchmarks/detector_validation.py`,
    which writes these figures; analysis passes them through, it does not compute them)."""

    date: str
    """When the benchmark ran (UTC, ISO 8601)."""
    command: str
    """The command that produced the figures."""
    runs: int
    """Synthetic runs in all."""
    runs_per_shape: dict[str, int]
    """Runs of each planted shape (`dip-and-recovery`, `dip-no-recovery`, `monotone gain`, ...)."""
    prompt_counts: list[int]
    """Prompts per curve drawn from."""
    spacings: dict[str, list[int]]
    """Checkpoint schedules drawn from (name -> steps, base first)."""
    size_range: tuple[float, float]
    """Planted sizes (dip depth, gain or loss), in CI widths of the base score (full 95% widths)."""
    precision: float
    """Of the curves labelled dip-and-recovery, the share planted so."""
    recall: float
    """Of the planted dip-and-recovery curves, the share labelled so."""
    recall_at_2ci: float
    """Recall on planted dips of at least 2 CI widths."""
    recall_by_size: dict[str, float]
    """Recall per planted-depth bin (`0.5-1`, `1-2`, `2-3` CI widths)."""
    false_positive_rate: float
    """Share of flat and monotone curves labelled dip-and-recovery."""
    false_positive_by_shape: dict[str, float]
    """The same per planted shape, `dip-no-recovery` included."""
    confusion: dict[str, dict[str, int]]
    """Planted shape -> label -> curves."""


class SweepPlanEntry(BaseModel):
    """A checkpoint an adaptive sweep evaluated, and why (the store's `sweep_plan` table)."""

    run: str
    """Run name."""
    step: int
    """Checkpoint step."""
    round: int
    """Refinement round: 0 for the coarse set, then 1, 2, ..."""
    reason: str
    """`coarse`, `bisect: change > CI between A and B`, `pin dip bottom`, `pin recovery` (with the curve)."""


class Analysis(BaseModel):
    """Everything `sftscope report` renders: the content of `analysis.json`."""

    source: str
    """Path of the results store."""
    runs: list[RunInfo]
    """Runs found in the store, with their metadata."""
    tasks: list[TaskInfo]
    """Tasks found in the store."""
    log_spaced_steps: bool
    """True when checkpoints are log-spaced (plots then use a log step axis)."""
    metric_labels: dict[str, str] = Field(default_factory=dict)
    """Human-readable name of every curve metric."""
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
    sweep_plan: list[SweepPlanEntry] = Field(default_factory=list)
    """The checkpoints an adaptive sweep chose and why; empty for a sweep of every checkpoint."""
    detector_validation: DetectorValidation | None = None
    """The dip detector's measured precision, recall and false-positive rate on planted curves
    (its `detector-validation` methods note says the same in words)."""
    methods: list[MethodNote] = Field(default_factory=list)
    """How the numbers were computed, for the report's methods section."""
    notes: list[str] = Field(default_factory=list)
    """Caveats the reader needs (skipped curves, missing metadata, ...)."""

    def write(self, directory: Path) -> Path:
        """Write `analysis.json` into `directory` and return its path."""
        path = Path(directory) / ANALYSIS_FILE
        with atomic_file(path) as tmp:
            tmp.write_text(self.model_dump_json(indent=1), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> Analysis:
        """Read an `analysis.json` file."""
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))
