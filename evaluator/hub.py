"""Publishing to and fetching from the Hugging Face Hub.

The public repository gets the card and every public file; the test split's answers go to a
separate private repository. What a push would upload is computed as data (``plan_push``) so it
can be checked without a network.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from benchmark.dataset import REVISION_FILE

__all__ = ["PushPlan", "plan_push", "push_dataset", "pull_dataset", "resolve_data_repo", "cached_dataset_dir"]


@dataclass(frozen=True)
class PushPlan:
    data_dir: Path
    private_dir: Path
    public: list[str]
    private: list[str]


def plan_push(data_dir: Path, private_dir: Path) -> PushPlan:
    public = sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*")
                    if p.is_file() and p.name != REVISION_FILE and "/test/answers/" not in f"/{p.relative_to(data_dir)}")
    private = sorted(str(p.relative_to(private_dir)) for p in private_dir.rglob("*") if p.is_file()) \
        if private_dir.is_dir() else []
    return PushPlan(data_dir, private_dir, public, private)


def push_dataset(plan: PushPlan, repo_id: str, private_repo_id: str | None) -> list[str]:
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=str(plan.data_dir),
                             allow_patterns=plan.public, commit_message="phasebench data push")
    lines = [f"{repo_id}: {info.commit_url}"]
    if private_repo_id and plan.private:
        api.create_repo(private_repo_id, repo_type="dataset", private=True, exist_ok=True)
        info = api.upload_folder(repo_id=private_repo_id, repo_type="dataset", folder_path=str(plan.private_dir),
                                 allow_patterns=plan.private, commit_message="phasebench answers push")
        lines.append(f"{private_repo_id}: {info.commit_url}")
    return lines


def cached_dataset_dir(repo_id: str, commit: str) -> Path:
    """Where a pinned hub revision is kept locally, so later runs work offline."""
    import os
    base = Path(os.environ.get("PHASEBENCH_CACHE", Path.home() / ".cache" / "phasebench"))
    return base / repo_id.replace("/", "--") / commit


def resolve_data_repo(spec: str) -> Path:
    """'org/name@commit' -> a local folder with that revision, fetched once and then reused."""
    repo_id, sep, commit = spec.partition("@")
    if not sep or not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise ValueError(f"--data-repo {spec!r}: expected org/name@<40-hex commit> (a pinned revision)")
    dest = cached_dataset_dir(repo_id, commit)
    marker = dest / REVISION_FILE
    if not (marker.exists() and marker.read_text().strip() == commit):
        pull_dataset(repo_id, commit, dest)
    return dest


def pull_dataset(repo_id: str, revision: str, dest: Path) -> str:
    from huggingface_hub import HfApi, snapshot_download

    # A commit needs no look-up, so a pinned pull works offline from the local hub cache.
    commit = revision if re.fullmatch(r"[0-9a-f]{40}", revision) else HfApi().dataset_info(repo_id, revision=revision).sha
    snapshot_download(repo_id, repo_type="dataset", revision=commit, local_dir=str(dest))
    (dest / REVISION_FILE).write_text(commit + "\n")
    return commit
