"""study stage: run a grid of bases × data conditions × recipes × seeds as one resumable study.

Public API: `load_study_spec` (spec.py), `expand_cells` (cells.py), `run_study` (runner.py),
`make_plan` / `render_plan` (plan.py, `--dry-run`). Each stage runs as an `sftscope` subprocess whose
command line is built in commands.py; executors.py runs them locally, on Ray or through SLURM.
"""
