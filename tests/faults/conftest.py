"""The fault tests reuse other tests' helpers (kill loops, toy runs, fake stages): their folders go on
the path here, as --import-mode=importlib does not add them."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).parents[1]
for folder in ("faults", "train", "evaluate", "study", "fixtures/eval"):
    sys.path.insert(0, str(TESTS / folder))
