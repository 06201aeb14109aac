"""A dataset on the Hugging Face Hub (or a local snapshot of one): the one model both spec formats use.

Training-data specs (`data.sources`) and task specs (`evaluate.sources`) name hub datasets the same
way and read them through the same `load_hf`; they differ only in their default split (a training
set is `train`, a benchmark `test`) and in where a foreign schema's mapping is written.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import model_validator

from sftscope.config.base import Strict
from sftscope.data.io import FieldMapping, LoadResult, load_hf


class HubDataset(Strict):
    """Arguments of `datasets.load_dataset`, checked before anything is read."""

    DEFAULT_SPLIT: ClassVar[str] = "train"

    path: str
    """Hub dataset id (needs a network, or the HF cache) or a local snapshot folder or data file."""
    split: str | None = None
    """Split name; unset is the spec kind's default (`train` for training data, `test` for tasks).
    Files of `data_files` form the one split `train`, which needs no name."""
    subset: str | None = None
    """Config name (e.g. gpqa_diamond)."""
    data_files: list[str] | None = None
    """Files of the repository to read instead of its configs, bypassing any loading script
    (e.g. LiveCodeBench's releases, HEx-PHI's category CSVs)."""
    revision: str | None = None
    """Hub revision (a commit sha, tag or branch): pins the rows, so a re-uploaded dataset cannot
    change them (or a seeded subset of them) unnoticed."""

    @model_validator(mode="after")
    def _files_alone(self) -> HubDataset:
        if self.data_files and self.subset:
            raise ValueError("set subset or data_files, not both: data files are read without configs")
        if self.data_files and self.split not in (None, "train"):
            raise ValueError(f"data files form the one split 'train', not '{self.split}': leave split unset")
        return self

    @property
    def split_name(self) -> str:
        """The split to read: the one of data files, else the given one, else the default."""
        return "train" if self.data_files else self.split or self.DEFAULT_SPLIT

    def read(
        self,
        mapping: FieldMapping | None,
        *,
        require_response: bool,
        skip_bad: bool = False,
        csv_columns: list[str] | None = None,
    ) -> LoadResult:
        """The rows, through `load_hf`."""
        return load_hf(
            self.path,
            split=self.split_name,
            subset=self.subset,
            data_files=self.data_files,
            revision=self.revision,
            mapping=mapping,
            require_response=require_response,
            skip_bad=skip_bad,
            csv_columns=csv_columns,
        )
