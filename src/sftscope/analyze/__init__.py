"""analyze stage: results store -> `Analysis` (curves, dips, effects, findings) -> analysis.json.

`analyze(store_path, runs_meta=None)` is the entry point; `RunInfo` is the run metadata a study passes.
"""

from sftscope.analysis_file import Analysis, RunInfo
from sftscope.analyze.pipeline import analyze

__all__ = ["Analysis", "RunInfo", "analyze"]
