"""The study's job graph: what each job runs, what it waits for, and when it counts as done.

    base:<key>        convert a GGUF base to a checkpoint directory (GGUF bases only)
    data:<key>        build one data spec (shared by every cell that uses it)
    baseline:<base>   sweep a base model once (step 0), into its own store
    train:<cell>      train the cell (fresh, or --resume of a run that saved checkpoints)
    eval:<cell>       sweep the cell's checkpoints; its store is seeded with the baseline's rows

A job is skipped when its state says done with the same fingerprint (its inputs); a dependency that
is not done makes its dependents not done either, so a changed recipe re-trains and re-sweeps.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sftscope.evaluate.layouts import saved_steps
from sftscope.hashing import text_sha256
from sftscope.rundir import CHECKPOINTS, is_run_dir
from sftscope.study import commands
from sftscope.study.cells import Cell, DataBuild, data_builds
from sftscope.study.executors import Job, JobResult
from sftscope.study.spec import BaseSpec, StudySpec
from sftscope.study.state import StateFile, Status, StudyDir
from sftscope.study.stores import copy_rows

Kind = Literal["base", "data", "baseline", "train", "eval"]


@dataclass(frozen=True)
class Node:
    name: str
    kind: Kind
    deps: tuple[str, ...]
    subject: Any
    """A BaseSpec (base, baseline), a DataBuild (data) or a Cell (train, eval)."""


def short_hash(text: str) -> str:
    return text_sha256(text)[:8]


def is_gguf(base: BaseSpec) -> bool:
    return base.model.startswith("gguf:")


class StudyGraph:
    """Nodes of one study, and the driver-side work around each job (never run by workers)."""

    def __init__(self, spec: StudySpec, cells: list[Cell], study: StudyDir, *, threads: int):
        self.spec, self.cells, self.study = spec, cells, study
        self.cli = commands.sftscope_command(spec.executor)
        self.env = {
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "TOKENIZERS_PARALLELISM": "false",
        }
        self.shared = StateFile(study.state_file, "study")
        self.cell_states = {cell.id: StateFile(study.cell_state(cell.id), cell.id) for cell in cells}
        self.nodes: dict[str, Node] = {}
        # Insertion order puts every node after its dependencies (done_nodes relies on it).
        for base in {cell.base.name: cell.base for cell in cells}.values():
            prep = (self._add("base", self.base_key(base), (), base),) if is_gguf(base) else ()
            self._add("baseline", base.name, prep, base)
        for build in data_builds(cells):
            self._add("data", build.key, (), build)
        for cell in cells:
            if cell.data is None:  # trained elsewhere: only swept
                self._add("eval", cell.id, (f"baseline:{cell.base.name}",), cell)
                continue
            prep = (f"base:{self.base_key(cell.base)}",) if is_gguf(cell.base) else ()
            train = self._add("train", cell.id, (f"data:{cell.data.key}", *prep), cell)
            self._add("eval", cell.id, (train, f"baseline:{cell.base.name}"), cell)

    def _add(self, kind: Kind, key: str, deps: tuple[str, ...], subject: Any) -> str:
        name = f"{kind}:{key}"
        self.nodes[name] = Node(name, kind, deps, subject)
        return name

    @staticmethod
    def base_key(base: BaseSpec) -> str:
        return f"{base.name}-{short_hash(base.model)}"

    def model_path(self, base: BaseSpec) -> str:
        """What training and sweeps load: a GGUF base's conversion, else the model as the spec names it.

        A shipped name stays a name: the stages resolve it, and its directory holds a pretraining
        manifest.json that a sweep would mistake for a run's.
        """
        return str(self.study.base_dir(self.base_key(base))) if is_gguf(base) else base.model

    # -- state -----------------------------------------------------------------------------------------

    def record(self, node: Node) -> tuple[StateFile, str]:
        """The state file and stage name that hold this node's status."""
        if node.kind in ("train", "eval"):
            return self.cell_states[node.subject.id], node.kind
        return self.shared, node.name

    def fingerprint(self, node: Node) -> str:
        ev = self.spec.eval
        backend = commands.backend_args(ev.backend)
        # The backend joins the fingerprint only when it is not the default, so older studies' hold.
        sweep = json.dumps([ev.suite, ev.steps, ev.overrides, ev.extra_args] + ([backend] if backend else []))
        # Only a run's sweep is adaptive; absent when off, so the fingerprints of older studies hold.
        adaptive = json.dumps([ev.adaptive, ev.budget]) if ev.adaptive else ""
        return {
            "base": lambda s: s.model,
            "data": lambda s: s.spec_hash,
            "baseline": lambda s: short_hash(sweep + s.model),
            "train": lambda s: s.config_hash,
            "eval": lambda s: short_hash(sweep + adaptive + s.config_hash),
        }[node.kind](node.subject)

    def done_nodes(self) -> set[str]:
        """Nodes done with their current inputs, whose dependencies are all done too."""
        done: set[str] = set()
        for name, node in self.nodes.items():
            state, stage = self.record(node)
            ready = all(dep in done for dep in node.deps) and self._outputs_exist(node)
            if ready and state.is_done(stage, self.fingerprint(node)):
                done.add(name)
        for cell in self.cells:
            state = self.cell_states[cell.id]
            if cell.data is None:  # its data and training happened elsewhere
                for stage in ("data", "train"):
                    if state.status(stage) != "done":
                        state.mark(
                            stage, "done", fingerprint=cell.config_hash, checkpoints=str(cell.checkpoints)
                        )
            elif f"data:{cell.data.key}" in done and state.status("data") != "done":
                state.mark("data", "done", fingerprint=cell.data.spec_hash)
        return done

    def _outputs_exist(self, node: Node) -> bool:
        """Shared outputs someone may have deleted by hand are rebuilt rather than trusted."""
        if node.kind == "data":
            return (self.study.data_dir(node.subject.key) / "card.json").is_file()
        if node.kind == "base":
            return (self.study.base_dir(self.base_key(node.subject)) / "config.json").is_file()
        return True

    def mark(self, node: Node, status: Status, **info: Any) -> None:
        fingerprint = self.fingerprint(node)
        if node.kind == "data":  # each cell shows the shared data build as its own first stage
            for cell in self.cells:
                if cell.data and cell.data.key == node.subject.key:
                    self.cell_states[cell.id].mark("data", status, fingerprint=fingerprint)
        state, stage = self.record(node)
        state.mark(stage, status, fingerprint=fingerprint, **info)

    # -- jobs ------------------------------------------------------------------------------------------

    def job(self, node: Node) -> Job:
        """The job of a node, prepared on disk first (stale temporaries removed, stores seeded)."""
        build = {
            "base": self._convert,
            "data": self._build,
            "baseline": self._baseline,
            "train": self._train,
            "eval": self._sweep,
        }[node.kind]
        argv, gpus = build(node.subject)
        ex = self.spec.executor
        return Job(node.name, argv, self.study.log(node.name), cpus=ex.cpus_per_job, gpus=gpus, env=self.env)

    def _convert(self, base: BaseSpec) -> tuple[list[str], int]:
        out = self.study.base_dir(self.base_key(base))
        return commands.convert_base(self.cli, base.model.removeprefix("gguf:"), out), 0

    def _build(self, build: DataBuild) -> tuple[list[str], int]:
        tmp = self._data_tmp(build)
        shutil.rmtree(tmp, ignore_errors=True)  # a build killed half-way starts over
        return commands.data_build(self.cli, build.spec_path, tmp), 0

    def _baseline(self, base: BaseSpec) -> tuple[list[str], int]:
        store = self.study.base_store(base.name)
        store.parent.mkdir(parents=True, exist_ok=True)
        argv = commands.evaluate(
            self.cli, self.model_path(base), spec=self.spec.eval, store=store, steps=None
        )
        return argv, self.spec.executor.eval_gpus

    def _train(self, cell: Cell) -> tuple[list[str], int]:
        """A killed run that saved anything continues from it; its directory is never deleted (were the
        recipe changed, `train --resume` stops with the differing fields). One that saved nothing
        starts over."""
        ex = self.spec.executor
        run = self.study.run_dir(cell.id)
        # checkpoints/, and resume/ where an FSDP run keeps its sharded state
        saved = any(any(path.iterdir()) for path in (run / CHECKPOINTS, run / "resume") if path.is_dir())
        if not saved:
            shutil.rmtree(run, ignore_errors=True)
        model, data = self.model_path(cell.base), self.study.data_dir(cell.data.key)
        argv = commands.train(
            self.cli,
            cell,
            model=model,
            data=data,
            run=run,
            executor=ex,
            swept=self.spec.eval.steps,
            resume=saved,
        )
        return argv, ex.train_gpus

    def _sweep(self, cell: Cell) -> tuple[list[str], int]:
        store = self.study.cell_store(cell.id)
        store.parent.mkdir(parents=True, exist_ok=True)
        # Not the models table: its rows name the bare base path, not this cell's run.
        copy_rows(self.study.base_store(cell.base.name), store, exclude=("models",))
        run = self.study.run_dir(cell.id)
        base = None
        if cell.checkpoints is not None:  # named after the cell, as the analysis finds runs
            run.parent.mkdir(parents=True, exist_ok=True)
            if run.is_symlink():
                run.unlink()
            run.symlink_to(cell.checkpoints, target_is_directory=True)
            base = None if is_run_dir(run) else self.model_path(cell.base)  # a run's manifest names it
        argv = commands.evaluate(
            self.cli, run, spec=self.spec.eval, store=store, steps=self._steps(run), base=base, run=True
        )
        return argv, self.spec.executor.eval_gpus

    def _steps(self, run: Path) -> list[int] | None:
        """The spec's steps that this run has (a 1-epoch recipe stops early), plus its final checkpoint."""
        if self.spec.eval.steps is None:
            return None
        available = saved_steps(run)
        return sorted({s for s in self.spec.eval.steps if s in available} | set(available[-1:]))

    def _data_tmp(self, build: DataBuild) -> Path:
        return self.study.data_dir(build.key).with_name(build.key + ".tmp")

    def finish(self, node: Node, result: JobResult) -> None:
        """Driver-side completion: publish a data build, merge a cell's store, record the state."""
        if result.returncode != 0:
            error = f"exit {result.returncode}; log: {self.study.log(node.name)}"
            self.mark(node, "failed", error=error, tail=result.tail)
            return
        if node.kind == "data":
            final = self.study.data_dir(node.subject.key)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(self._data_tmp(node.subject), final)
        if node.kind == "eval":
            copy_rows(self.study.cell_store(node.subject.id), self.study.store)
        self.mark(node, "done", seconds=round(result.seconds, 1))
