"""Publishing to and fetching from the Hugging Face Hub.

The public repository gets the card and every public file; the test split's answers go to a
separate private repository. What a push would do is computed as data first: the files
(``plan_push``) and the commit operations per repository (``commit_operations``), so both can be
checked without a network, and the push itself only hands those operations to the Hub.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from benchmark.dataset import REVISION_FILE
from benchmark.settings import get_settings

__all__ = ["PushPlan", "ResultsPushPlan", "plan_push", "commit_operations", "push_dataset", "pull_dataset",
           "parse_data_repo", "resolve_data_repo", "cached_dataset_dir", "plan_results_push", "push_results", "KEPT_REMOTE_FILES"]

#: Files the Hub keeps in every repository on its own; a push never deletes them.
KEPT_REMOTE_FILES = frozenset({".gitattributes"})


@dataclass(frozen=True)
class PushPlan:
    data_dir: Path
    private_dir: Path
    public: list[str]
    private: list[str]


def _test_split_public_files(data_dir: Path) -> set[str]:
    """What a test split may publish: its manifest, its index and the inputs the manifest lists.
    Anything else in a test folder (answers, whole runs, a stray file) stays home, whatever wrote it
    there (a build with --private-dir equal to --data-dir puts the answers beside the inputs)."""
    allowed: set[str] = set()
    for manifest in data_dir.glob("*/test/manifest.json"):
        split = manifest.parent.relative_to(data_dir)
        allowed.add(str(split / "manifest.json"))
        try:
            listed = json.loads(manifest.read_text())["files"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{manifest}: unreadable manifest ({exc}); fix or rebuild it before pushing") from None
        allowed.update(str(split / rel) for rel in listed if rel == "instances.jsonl" or rel.startswith("inputs/"))
    return allowed


def plan_push(data_dir: Path, private_dir: Path) -> PushPlan:
    allowed_test = _test_split_public_files(data_dir)

    def publishable(rel: str) -> bool:
        parts = rel.split("/")
        return not (len(parts) > 2 and parts[1] == "test") or rel in allowed_test

    public = sorted(rel for rel in (str(p.relative_to(data_dir)) for p in data_dir.rglob("*")
                                    if p.is_file() and p.name != REVISION_FILE) if publishable(rel))
    private = sorted(str(p.relative_to(private_dir)) for p in private_dir.rglob("*") if p.is_file()) \
        if private_dir.is_dir() else []
    return PushPlan(data_dir, private_dir, public, private)


def commit_operations(root: Path, files: Iterable[str], existing: Iterable[str] = ()) -> list:
    """One commit's operations: add every planned file (from ``root``), delete every file the
    repository has (``existing``) that the plan no longer holds, such as a removed instance."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    files = sorted(files)
    keep = set(files) | KEPT_REMOTE_FILES
    adds = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(Path(root) / f)) for f in files]
    deletes = [CommitOperationDelete(path_in_repo=f) for f in sorted(set(existing) - keep)]
    return adds + deletes


def _repo_files(api, repo_id: str) -> list[str]:
    from huggingface_hub.utils import RepositoryNotFoundError

    try:
        return api.list_repo_files(repo_id, repo_type="dataset")
    except RepositoryNotFoundError:
        return []


def push_dataset(plan: PushPlan, repo_id: str, private_repo_id: str | None) -> list[str]:
    from huggingface_hub import HfApi

    if plan.private and not private_repo_id:
        raise ValueError("the test split's answers exist: a private repository is needed for them")
    if private_repo_id and private_repo_id == repo_id:
        raise ValueError(f"{repo_id}: the answers repository must differ from the public one")
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
    info = api.create_commit(repo_id, commit_operations(plan.data_dir, plan.public, _repo_files(api, repo_id)),
                             repo_type="dataset", commit_message="phasebench data push")
    lines = [f"{repo_id}: {info.commit_url}"]
    if private_repo_id and plan.private:
        api.create_repo(private_repo_id, repo_type="dataset", private=True, exist_ok=True)
        ops = commit_operations(plan.private_dir, plan.private, _repo_files(api, private_repo_id))
        info = api.create_commit(private_repo_id, ops, repo_type="dataset", commit_message="phasebench answers push")
        lines.append(f"{private_repo_id}: {info.commit_url}")
    return lines


@dataclass(frozen=True)
class ResultsPushPlan:
    folder: Path
    files: list[str]
    operations: list = field(default_factory=list)


def plan_results_push(folder: Path | str) -> ResultsPushPlan:
    """The card and records of an exported results dataset (see evaluator.results.dataset)."""
    from .results.dataset import CARD_FILE, RECORDS_FILE

    folder = Path(folder)
    files = [CARD_FILE, RECORDS_FILE]
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: not an exported results dataset, missing {', '.join(missing)} "
                                "(run `phasebench results export` first)")
    return ResultsPushPlan(folder, files, commit_operations(folder, files))


def push_results(plan: ResultsPushPlan, repo_id: str) -> str:
    """One commit to the (public) results dataset; files of an older layout are deleted."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
    info = api.create_commit(repo_id, commit_operations(plan.folder, plan.files, _repo_files(api, repo_id)),
                             repo_type="dataset", commit_message="phasebench results export")
    return f"{repo_id}: {info.commit_url}"


def cached_dataset_dir(repo_id: str, commit: str) -> Path:
    """Where a pinned hub revision is kept locally, so later runs work offline."""
    return get_settings().cache / repo_id.replace("/", "--") / commit


def parse_data_repo(spec: str) -> tuple[str, str]:
    """'org/name@commit' -> (org/name, commit); ValueError unless the commit is pinned (40 hex)."""
    repo_id, sep, commit = spec.partition("@")
    if not sep or not repo_id or not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise ValueError(f"{spec!r}: expected org/name@<40-hex commit> (a pinned revision)")
    return repo_id, commit


def resolve_data_repo(spec: str) -> Path:
    """'org/name@commit' -> a local folder with that revision, fetched once and then reused."""
    repo_id, commit = parse_data_repo(spec)
    dest = cached_dataset_dir(repo_id, commit)
    marker = dest / REVISION_FILE
    if not (marker.exists() and marker.read_text().strip() == commit):
        pull_dataset(repo_id, commit, dest)
    return dest


def pull_dataset(repo_id: str, revision: str, dest: Path) -> str:
    from huggingface_hub import HfApi, snapshot_download

    # A commit needs no look-up, so a pinned pull works offline from the local hub cache.
    commit = revision if re.fullmatch(r"[0-9a-f]{40}", revision) else HfApi().dataset_info(repo_id, revision=revision).sha
    if commit is None:
        raise RuntimeError(f"{repo_id}: the hub gave no commit for revision {revision!r}")
    snapshot_download(repo_id, repo_type="dataset", revision=commit, local_dir=str(dest))
    (dest / REVISION_FILE).write_text(commit + "\n")
    return commit
