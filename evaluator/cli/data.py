import os
import subprocess
import sys
from pathlib import Path

import click
from tqdm import tqdm

from benchmark.build_env import missing_reference_env
from benchmark.card import CARD_FILE, dataset_card, write_dataset_card
from benchmark.dataset import (
    PUBLIC_SPLITS,
    REVISION_FILE,
    SPLITS,
    default_data_dir,
    default_private_dir,
    open_split,
    verify_split,
)
from benchmark.split_secret import SecretError, SplitSecret, load_test_secret
from benchmark.task import all_tasks, get_task

from ..hub import plan_push, pull_dataset, push_dataset
from ._params import known_task_names
from .data_secret import secret


def _tasks(names: tuple[str, ...]):
    return [get_task(n) for n in names] if names else list(all_tasks())


def _test_secret() -> SplitSecret:
    try:
        return load_test_secret()
    except SecretError as exc:
        raise click.UsageError(str(exc)) from None


def _check_pin(task, split: str, revision: str) -> bool:
    pinned = task.metadata.dataset.pin(split)
    if revision == pinned:
        return True
    field = "revision" if split == "dev" else f"{split}_revision"
    if pinned is None:
        click.secho(f"{task.name}/{split}: built revision {revision}, and no pin to check it against: set dataset."
                    f"{field} in the task's metadata", fg="red", err=True)
        return False
    click.secho(f"{task.name}/{split}: built revision {revision} differs from the pinned {pinned} (dataset.{field} "
                "in the task's metadata). If the generator changed on purpose, bump the task version and update the "
                "pin.", fg="red", err=True)
    return False


def _tasks_with_split(task_names: tuple[str, ...], split: str):
    """The tasks to build: a named task must draw the split; with none named, the tasks that draw it."""
    tasks = _tasks(task_names)
    lacking = [t.name for t in tasks if split not in t.splits]
    if lacking and task_names:
        raise click.UsageError("; ".join(f"{t.name}: no {split} split; it has {', '.join(t.splits)}"
                                         for t in tasks if t.name in lacking))
    for name in lacking:
        click.echo(f"{name}: no {split} split; skipped", err=True)
    return [t for t in tasks if t.name not in lacking]


data_dir_opt = click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                            help="dataset folder (default: $PHASEBENCH_DATA or the embedded copy)")
private_dir_opt = click.option("--private-dir", type=click.Path(path_type=Path), default=None,
                               help="where the test split's answers live (default: $PHASEBENCH_PRIVATE_DIR)")
task_opt = click.option("--task", "task_names", multiple=True, callback=known_task_names,
                        help="a task (repeatable; default: all)")


@click.group()
def data() -> None:
    """Build, verify, publish and fetch the task datasets."""


@data.command()
@task_opt
@click.option("--split", type=click.Choice(SPLITS), default="dev", show_default=True,
              help="train and dev are drawn from public keys (answers public: train to fit on, dev to validate), "
                   "test from the operator's secret")
@click.option("--force", is_flag=True, help="rebuild even if the files verify")
@click.option("--scale", default="embedded", show_default=True,
              help="which set to build: 'embedded' is the pinned one in the repository; a task may offer a "
                   "larger one (grokking-onset: 'gpu'), which needs --data-dir and is not checked against a pin")
@click.option("--device", default="cpu", show_default=True,
              help="where the generator trains or samples (cpu, cuda, cuda:N), for tasks that can use it")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="instances generated at once, each in its own process (same files whatever the number)")
@data_dir_opt
@private_dir_opt
def build(task_names, split, force, scale, device, data_dir, private_dir, workers) -> None:
    """Generate a split deterministically (train and dev are verified against their pinned hashes)."""
    tasks = _tasks_with_split(task_names, split)
    for task in tasks:
        try:
            task.check_build_options(device, scale)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    if scale != "embedded" and (data_dir is None or (split == "test" and private_dir is None)):
        # The default folder holds the pinned embedded set (committed for some tasks): never overwrite it.
        raise click.UsageError(f"--scale {scale} needs --data-dir (and, for --split test, --private-dir): the "
                               "default folder holds the embedded set")
    missing = missing_reference_env()
    if missing:
        # The kernels are chosen when numpy and torch load, which has happened: build in a fresh
        # interpreter with the reference environment (benchmark/build_env.py says why).
        argv = [sys.executable, "-m", "evaluator", "data", "build", "--split", split,
                *[a for name in task_names for a in ("--task", name)], *(["--force"] if force else []),
                "--scale", scale, "--device", device, "--workers", str(workers),
                *(["--data-dir", str(data_dir)] if data_dir else []),
                *(["--private-dir", str(private_dir)] if private_dir else [])]
        sys.exit(subprocess.run(argv, env={**os.environ, **missing}).returncode)
    # Checked before any work: a build that would fail for want of a key must not train for an hour first.
    test_secret = _test_secret() if split == "test" else None
    data_dir = data_dir or default_data_dir()
    private_dir = private_dir or default_private_dir()
    ok = True
    pinned = scale == "embedded"
    for task in tasks:
        if split in PUBLIC_SPLITS and not force and not verify_split(task.name, split, data_dir):
            rev = open_split(task.name, split, data_dir).revision
            click.echo(f"{task.name}/{split}: verified ({rev})")
            ok &= _check_pin(task, split, rev) if pinned else True
            continue
        answers = data_dir if split in PUBLIC_SPLITS else private_dir
        rev = task.build(split, test_secret, data_dir, answers,
                         progress=lambda xs, name=task.name: tqdm(xs, desc=f"building {name}/{split}", unit="instance"),
                         device=device, scale=scale, workers=workers)
        click.echo(f"{task.name}/{split}: built in {data_dir / task.name / split} ({rev})")
        if split in PUBLIC_SPLITS and pinned:
            ok &= _check_pin(task, split, rev)
        elif not pinned:
            click.echo(f"{task.name}/{split}: scale {scale!r} has no pin; publish it with `phasebench data push` "
                       "and pin the commit in a task's metadata to evaluate on it")
    click.echo(f"dataset card: {write_dataset_card(data_dir)}")
    sys.exit(0 if ok else 1)


@data.command()
@click.option("--check", is_flag=True, help="write nothing; exit 1 if the folder's card is not the generated one")
@data_dir_opt
def card(check, data_dir) -> None:
    """Write the dataset card (README.md) generated from every task's metadata and notes."""
    data_dir = data_dir or default_data_dir()
    path = data_dir / CARD_FILE
    if not check:
        click.echo(f"dataset card: {write_dataset_card(data_dir)}")
        return
    current = path.read_text(encoding="utf-8") if path.is_file() else None
    if current != str(dataset_card()):
        raise click.ClickException(f"{path}: {'missing' if current is None else 'not the generated card'}; "
                                   "write it with `phasebench data card`")
    click.echo(f"{path}: up to date")


@data.command()
@task_opt
@data_dir_opt
def verify(task_names, data_dir) -> None:
    """Check every file of the built splits against their manifests and the pinned revision."""
    data_dir = data_dir or default_data_dir()
    ok = True
    for task in _tasks(task_names):
        for split in task.splits:
            folder = data_dir / task.name / split
            if split == "test" and not (folder / "manifest.json").exists():
                continue
            if split == "train" and not (folder / "inputs").is_dir():
                # Its index and manifest are committed (the pin); the arrays are built on demand.
                click.echo(f"{task.name}/train: not built (`phasebench data build --split train`)")
                continue
            problems = verify_split(task.name, split, data_dir)
            for p in problems:
                click.secho(p, fg="red", err=True)
            if problems:
                ok = False
                continue
            rev = open_split(task.name, split, data_dir).revision
            click.echo(f"{task.name}/{split}: ok ({rev})")
            if split in PUBLIC_SPLITS and not (data_dir / REVISION_FILE).exists():
                ok &= _check_pin(task, split, rev)
    sys.exit(0 if ok else 1)


@data.command()
@click.option("--repo-id", required=True, help="public dataset repository, e.g. phasebench/phasebench-tasks")
@click.option("--private-repo-id", help="private repository for the test split's answers")
@click.option("--dry-run", is_flag=True, help="list what would be uploaded, upload nothing")
@data_dir_opt
@private_dir_opt
def push(repo_id, private_repo_id, dry_run, data_dir, private_dir) -> None:
    """Publish the dataset (card, configs, public files) to the Hub; test answers go to a private repo.
    The card is written from the tasks' metadata first, so the Hub never gets a stale one."""
    data_dir = data_dir or default_data_dir()
    private_dir = private_dir or default_private_dir()
    write_dataset_card(data_dir)
    plan = plan_push(data_dir, private_dir)
    for repo, files in ((repo_id, plan.public), (private_repo_id or "(no private repo given)", plan.private)):
        click.echo(f"{repo}: {len(files)} file(s)")
        for f in files[:20] if not dry_run else files:
            click.echo(f"  {f}")
    if dry_run:
        return
    if plan.private and not private_repo_id:
        raise click.UsageError("test answers exist: give --private-repo-id so they are not left unpublished")
    for line in push_dataset(plan, repo_id, private_repo_id):
        click.echo(line)


@data.command()
@click.option("--repo-id", required=True)
@click.option("--revision", required=True, help="a commit to pin (a branch or tag is resolved to its commit)")
@click.option("--dest", type=click.Path(path_type=Path), default=None, help="target folder (default: $PHASEBENCH_DATA)")
def pull(repo_id, revision, dest) -> None:
    """Fetch a pinned revision of the dataset from the Hub into a local folder."""
    dest = dest or default_data_dir()
    commit = pull_dataset(repo_id, revision, dest)
    click.echo(f"{repo_id}@{commit} -> {dest}")


data.add_command(secret)
