"""The on-disk layout of the PhaseBench dataset repository, shared by every task.

One Hugging Face dataset repository holds all tasks, one config per task::

    <root>/README.md                                  dataset card (YAML ``configs:``)
    <root>/<task>/<split>/instances.jsonl             public index: id, group, public fields
    <root>/<task>/<split>/inputs/<id>.safetensors     public arrays handed to methods
    <root>/<task>/<split>/answers/<id>.safetensors    answers (public splits only: train and dev)
    <root>/<task>/<split>/hidden.jsonl                private index (public splits only): id, group, hidden fields
    <root>/<task>/<split>/manifest.json               sha256 of every public file above
    <private>/<task>/test/answers/<id>.safetensors    answers of the test split (never published)
    <private>/<task>/test/hidden.jsonl
    <private>/<task>/test/manifest.json

Ids are opaque and the index is sorted by id, so neither says anything about an instance. A task
whose group is a hidden parameter (planted-features' tier) keeps it out of ``instances.jsonl``; it
and the scalars the scorer and the leaderboard need live in ``hidden.jsonl`` beside the answers.

Arrays are stored as safetensors: no pickle, a fixed byte layout (so two builds of the same data
are byte-identical), and metadata limited to one JSON string (safetensors keeps its metadata in a
hash map, so several keys would be written in an arbitrary order).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from .settings import PACKAGE_DATA, get_settings

__all__ = [
    "BOARD_SPLITS",
    "PACKAGE_DATA",
    "PUBLIC_SPLITS",
    "instance_results_public",
    "SPLITS",
    "DataError",
    "InstanceRecord",
    "SplitData",
    "SplitWriter",
    "default_data_dir",
    "default_private_dir",
    "open_split",
    "read_arrays",
    "sha256_file",
    "verify_files",
    "verify_split",
    "write_arrays",
]

SPLITS = ("train", "dev", "test")
#: The splits whose answers are published beside their inputs: train (for fitting) and dev (for validation).
PUBLIC_SPLITS = ("train", "dev")
#: The splits a leaderboard shows and ranks. Train is for fitting: a score there says how well a method
#: fits what it was fitted on, so it never enters a board.
BOARD_SPLITS = ("dev", "test")


def instance_results_public(split: str) -> bool:
    """Whether the per-instance results of ``split`` may be published (website, API, results export):
    only where its answers are public. On a hidden split one instance's scores, the task's details
    (its truths: the true grok step, p, the loss at the query), its group (a hidden tier) or its
    error give that instance's answer away, keyed by the id every method is handed; a board there
    publishes aggregates only."""
    return split in PUBLIC_SPLITS


REVISION_FILE = ".phasebench-revision"  # written by `phasebench data pull`: the hub commit
HIDDEN_INDEX = "hidden.jsonl"


class DataError(RuntimeError):
    """A dataset file is missing, corrupt or inconsistent; the message names the file."""


def default_data_dir() -> Path:
    return get_settings().data


def default_private_dir() -> Path:
    return get_settings().private_dir


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_arrays(path: Path, arrays: dict[str, np.ndarray], info: dict[str, Any] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    meta = {"info": json.dumps(info or {}, sort_keys=True)}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise DataError(f"{path}: unreadable safetensors file ({exc})") from None


@dataclass(frozen=True)
class InstanceRecord:
    """One instance as the evaluator sees it. ``group`` and ``hidden`` come from the private index
    when the answers are here; ``group_public`` says whether a method may be told the group."""
    id: str
    group: str
    public: dict[str, Any] = field(default_factory=dict)
    hidden: dict[str, Any] = field(default_factory=dict)
    group_public: bool = True


@dataclass
class SplitData:
    task: str
    split: str
    root: Path
    answers_root: Path | None
    instances: list[InstanceRecord]
    revision: str

    @property
    def has_answers(self) -> bool:
        return self.answers_root is not None

    def verify(self) -> None:
        """Check every file against its manifest's sha256 (inputs and, when here, answers): a
        corrupted, truncated or altered file raises DataError naming it, before any method runs."""
        ids = [r.id for r in self.instances]
        inputs, answers = [f"inputs/{i}.safetensors" for i in ids], [f"answers/{i}.safetensors" for i in ids]
        if self.answers_root == self.root:  # a public split: one manifest pins both
            problems = verify_files(self.root, inputs + answers)
        else:
            problems = verify_files(self.root, inputs)
            if self.answers_root is not None:
                problems += verify_files(self.answers_root, answers)
        if problems:
            raise DataError(f"{self.task}/{self.split}: files differ from their manifest (corrupted or altered):\n  "
                            + "\n  ".join(dict.fromkeys(problems)))

    def inputs_path(self, instance_id: str) -> Path:
        return self.root / "inputs" / f"{instance_id}.safetensors"

    def load_inputs(self, instance_id: str) -> dict[str, np.ndarray]:
        return read_arrays(self.inputs_path(instance_id))

    def load_answer(self, instance_id: str) -> dict[str, np.ndarray]:
        return read_arrays(self._answer_path(instance_id))

    def load_answer_info(self, instance_id: str) -> dict[str, Any]:
        """The generation record stored with an instance's answer (its parameters, seeds, full curves...)."""
        return read_info(self._answer_path(instance_id))

    def _answer_path(self, instance_id: str) -> Path:
        if self.answers_root is None:
            raise DataError(f"{self.task}/{self.split}: answers are not available here")
        return self.answers_root / "answers" / f"{instance_id}.safetensors"


def read_info(path: Path) -> dict[str, Any]:
    """The JSON record written beside a file's arrays (``write_arrays``'s ``info``)."""
    try:
        with safe_open(str(path), "np") as f:
            return json.loads((f.metadata() or {}).get("info", "{}"))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as exc:
        raise DataError(f"{path}: unreadable safetensors metadata ({exc})") from None


def _split_dir(root: Path, task: str, split: str) -> Path:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return root / task / split


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or not isinstance(row.get("id"), str):
                    raise KeyError("id")
            except (json.JSONDecodeError, KeyError) as exc:
                raise DataError(f"{path}:{lineno}: malformed instance record ({exc})") from None
            rows.append(row)
    return rows


def _read_index(path: Path, hidden_path: Path | None) -> list[InstanceRecord]:
    if not path.exists():
        raise DataError(f"{path}: instance index not found (run `phasebench data build`; the test split needs "
                        "the operator's secret: `phasebench data build --split test`)")
    hidden = {}
    if hidden_path is not None and hidden_path.exists():
        hidden = {row.pop("id"): row for row in _read_jsonl(hidden_path)}
    records = []
    for row in _read_jsonl(path):
        instance_id = row.pop("id")
        private = dict(hidden.get(instance_id, {}))
        group_public = "group" in row
        group = row.pop("group", None)
        group = private.pop("group", group)
        if hidden and instance_id not in hidden:
            raise DataError(f"{hidden_path}: instance {instance_id} of {path} is missing")
        records.append(InstanceRecord(id=instance_id, group="" if group is None else str(group), public=row,
                                      hidden=private, group_public=group_public))
    return records


def split_revision(split_dir: Path) -> str:
    """The hub commit if the folder was pulled from the hub, else a hash of its manifest."""
    rev_file = split_dir.parent.parent / REVISION_FILE
    if rev_file.exists():
        return "hub:" + rev_file.read_text().strip()
    manifest = split_dir / "manifest.json"
    if not manifest.exists():
        raise DataError(f"{manifest}: manifest not found (run `phasebench data build`)")
    return "sha256:" + sha256_file(manifest)


def open_split(task: str, split: str, data_dir: Path | None = None, private_dir: Path | None = None) -> SplitData:
    root = _split_dir(Path(data_dir or default_data_dir()), task, split)
    if split in PUBLIC_SPLITS:
        answers_root: Path | None = root
    else:
        private = _split_dir(Path(private_dir or default_private_dir()), task, split)
        answers_root = private if (private / "answers").is_dir() else None
    instances = _read_index(root / "instances.jsonl", None if answers_root is None else answers_root / HIDDEN_INDEX)
    return SplitData(task, split, root, answers_root, instances, split_revision(root))


def verify_split(task: str, split: str, data_dir: Path | None = None) -> list[str]:
    """Every problem with the split's public files, as 'path: reason' lines (empty when sound)."""
    return verify_files(_split_dir(Path(data_dir or default_data_dir()), task, split))


def verify_files(root: Path, required: Iterable[str] = ()) -> list[str]:
    """Every problem with the files a folder's manifest pins, as 'path: reason' lines; ``required``
    names files (relative to root) that the manifest must list."""
    manifest_path = root / "manifest.json"
    if not manifest_path.exists():
        return [f"{manifest_path}: manifest not found"]
    try:
        manifest = json.loads(manifest_path.read_text())
        listed = dict(manifest["files"])
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{manifest_path}: unreadable manifest ({type(exc).__name__}: {exc})"]
    problems = [f"{root / rel}: not listed in {manifest_path}" for rel in required if rel not in listed]
    for rel, digest in listed.items():
        path = root / rel
        if not path.exists():
            problems.append(f"{path}: missing")
        elif sha256_file(path) != digest:
            problems.append(f"{path}: sha256 differs from the manifest")
    return problems


class SplitWriter:
    """Writes one split deterministically: index, arrays and the manifest that pins them. Records are
    written sorted by id whatever order they were added in (the order must not carry information)."""

    def __init__(self, root: Path, task: str, split: str, answers_root: Path, group_public: bool = True):
        self.public = _split_dir(root, task, split)
        self.answers = _split_dir(answers_root, task, split)
        self.group_public = group_public
        self.records: list[dict[str, Any]] = []
        self.hidden_rows: list[dict[str, Any]] = []
        self.hidden_files: list[str] = []

    def add(self, instance_id: str, group: str, public_fields: dict[str, Any],
            inputs: dict[str, np.ndarray], answer: dict[str, np.ndarray], answer_info: dict[str, Any],
            hidden: dict[str, Any] | None = None) -> None:
        if {"id", "group"} & set(public_fields) or {"id", "group"} & set(hidden or {}):
            raise ValueError(f"{instance_id}: 'id' and 'group' are set by the writer, not by a field")
        self.records.append({"id": instance_id, **({"group": group} if self.group_public else {}), **public_fields})
        if hidden or not self.group_public:
            self.hidden_rows.append({"id": instance_id, "group": group, **(hidden or {})})
        write_arrays(self.public / "inputs" / f"{instance_id}.safetensors", inputs)
        write_arrays(self.answers / "answers" / f"{instance_id}.safetensors", answer, answer_info)

    def add_hidden(self, rel_path: str, arrays: dict[str, np.ndarray], info: dict[str, Any] | None = None) -> None:
        """A file beside the answers that the method never sees (e.g. a whole training run past what it
        observes): public with the dev split's answers, private with the test split's; pinned by the
        answers' manifest."""
        if rel_path.startswith(("answers/", "inputs/")) or rel_path in self.hidden_files:
            raise ValueError(f"{rel_path}: a hidden file must have a path of its own outside answers/ and inputs/")
        self.hidden_files.append(rel_path)
        write_arrays(self.answers / rel_path, arrays, info)

    def close(self) -> str:
        self.public.mkdir(parents=True, exist_ok=True)
        self.records.sort(key=lambda r: r["id"])
        _write_jsonl(self.public / "instances.jsonl", self.records)
        public_files = ["instances.jsonl"] + [f"inputs/{r['id']}.safetensors" for r in self.records]
        answer_files = [f"answers/{r['id']}.safetensors" for r in self.records] + self.hidden_files
        if self.hidden_rows:
            if len(self.hidden_rows) != len(self.records):
                raise ValueError(f"{self.answers}: hidden fields for {len(self.hidden_rows)} of {len(self.records)}"
                                 " instances (every instance has them, or none)")
            self.answers.mkdir(parents=True, exist_ok=True)
            _write_jsonl(self.answers / HIDDEN_INDEX, sorted(self.hidden_rows, key=lambda r: r["id"]))
            answer_files.append(HIDDEN_INDEX)
        if self.answers == self.public:
            public_files += answer_files
        else:
            _write_manifest(self.answers, answer_files)
        _write_manifest(self.public, public_files)
        return split_revision(self.public)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w") as f:
        f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in rows)


def _write_manifest(root: Path, rel_paths: Iterable[str]) -> None:
    files = {rel: sha256_file(root / rel) for rel in sorted(rel_paths)}
    (root / "manifest.json").write_text(json.dumps({"format": 1, "files": files}, indent=1, sort_keys=True) + "\n")
