"""report stage: `Analysis` -> report.html (self-contained) + report.md.

`build_report(directory)` analyzes a run or study directory and writes both; `write_report(analysis,
out_dir, title)` renders an existing Analysis.
"""

from sftscope.report.build import ReportFiles, build_report, write_report

__all__ = ["ReportFiles", "build_report", "write_report"]
