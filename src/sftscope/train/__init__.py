"""train stage: SFT with dense checkpoints and exact resume.

Public API: `loop.train(config) -> run dir`, `loop.resume(run_dir)`, `config.TrainConfig`,
`config.load_config(path, overrides, preset)`, `presets.PRESETS`, `checkpoints.content_hash(dir)`,
`metrics.read_metrics(run_dir)`. The run directory layout is in docs/architecture.md.
"""
