"""The `sftscope` command. Each pipeline stage registers its own commands from its own module."""

from __future__ import annotations

import typer

from sftscope.cli import data, demo, evaluate, pretrain, report, study, train

app = typer.Typer(
    name="sftscope",
    help="When does reasoning SFT generalize, and at what cost? "
    "Build data conditions, train with dense checkpoints, sweep-evaluate, analyze, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

for module in (data, train, pretrain, evaluate, report, study, demo):
    module.register(app)


def main() -> None:
    app()
