"""report stage: `analysis.json` -> report.html (self-contained) + report.md.

`build_report(directory)` renders a directory's analysis.json; `write_report(analysis, out_dir, title)`
renders an `Analysis` already in memory.
"""

from sftscope.report.build import ReportFiles, build_report, write_report

__all__ = ["ReportFiles", "build_report", "write_report"]
