"""Submissions: a folder with submission.yaml and code. Validated without running any of it."""
from __future__ import annotations

import ast
import hashlib
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from benchmark.registry import UnknownNameError
from benchmark.task import get_task

__all__ = ["SubmissionSpec", "Submission", "SubmissionError", "load_submission", "validate_submission", "code_sha256"]

SPEC_FILE = "submission.yaml"
_IGNORED_PARTS = {"__pycache__", ".ipynb_checkpoints", ".git"}


class SubmissionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    authors: list[str] = Field(min_length=1)
    description: str = Field(min_length=1)
    license: str = Field(min_length=1)
    url: str
    baseline: bool = False
    floor: bool = Field(False, description=(
        "a no-skill reference (a constant, a lookup a method could make without the skill): shown on every "
        "board as a reference line and used as the zero of skill, never ranked as a method"))
    fitted_on: list[Literal["train", "dev"]] = Field(default_factory=list, description=(
        "the public splits whose answers the method's shipped parameters were fitted on; a method fitted "
        "on dev answers is in-sample on dev and is shown apart from the dev ranking"))
    gpu: bool = Field(False, description="the method can use a GPU when the evaluator is given one")
    requirements: list[str] = Field(default_factory=list, description=(
        "extra pip requirement lines, or paths of wheels inside the folder; the docker sandbox installs "
        "them into the submission's own image at build time"))
    tasks: dict[str, str] = Field(min_length=1, description="task name -> entry point module:function")

    @field_validator("tasks")
    @classmethod
    def _entry_points(cls, tasks: dict[str, str]) -> dict[str, str]:
        for task, entry in tasks.items():
            module, sep, func = entry.partition(":")
            if not sep or not all(p.isidentifier() for p in module.split(".")) or not func.isidentifier():
                raise ValueError(f"entry point for {task!r} must look like 'module:function', got {entry!r}")
        return tasks

    @model_validator(mode="after")
    def _floor_is_not_a_baseline(self) -> "SubmissionSpec":
        if self.floor and self.baseline:
            raise ValueError("a submission is either a floor (a no-skill reference) or a baseline, not both")
        return self


@dataclass(frozen=True)
class Submission:
    folder: Path
    spec: SubmissionSpec
    code_sha256: str
    git_commit: str | None

    @property
    def name(self) -> str:
        return self.spec.name


class SubmissionError(ValueError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def code_sha256(folder: Path) -> str:
    """Hash of every file's relative path and bytes, in sorted order (caches excluded)."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if _IGNORED_PARTS.intersection(rel.parts) or path.suffix == ".pyc":
            continue
        h.update(str(rel).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


@contextmanager
def staged_copy(submission: Submission) -> Iterator[Path]:
    """A private copy of the submission's folder for its workers to mount, removed afterwards.

    The sandbox's mount table shows where each mount comes from: a copy under a fresh temporary
    folder names nothing of the host's layout (the checkout, the user's home). The copy is hashed
    again, so the code the workers run is the code whose hash the results are stored under."""
    root = Path(tempfile.mkdtemp(prefix="phasebench-code-"))
    try:
        copy = root / "submission"
        shutil.copytree(submission.folder, copy, symlinks=True,
                        ignore=shutil.ignore_patterns(*_IGNORED_PARTS, "*.pyc"))
        found = code_sha256(copy)
        if found != submission.code_sha256:
            raise SubmissionError([f"{submission.folder}: the folder changed since it was loaded (code sha256 "
                                   f"{submission.code_sha256[:12]} then, {found[:12]} now); evaluate it again"])
        yield copy
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _git_commit(folder: Path) -> str | None:
    """The commit of the repository holding the folder (``-dirty`` if the folder has changes). Never
    run in a repository of the submission's own: its config (core.fsmonitor, hooks) would be the
    submitter's commands, run here, before any sandbox."""
    if next(folder.rglob(".git"), None) is not None:
        return None
    git = ["git", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-C", str(folder)]
    try:
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def _module_file(folder: Path, module: str) -> Path | None:
    base = folder.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _check_entry(folder: Path, task: str, entry: str) -> list[str]:
    module, _, func = entry.partition(":")
    where = f"{folder / SPEC_FILE}: tasks.{task}"
    path = _module_file(folder, module)
    if path is None:
        return [f"{where}: module {module!r} not found in {folder} (expected {module.replace('.', '/')}.py)"]
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as exc:
        return [f"{path}:{exc.lineno}: syntax error: {exc.msg}"]
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if func not in defs:
        return [f"{where}: {path.name} defines no top-level function {func!r}"]
    fn = defs[func]
    if isinstance(fn, ast.AsyncFunctionDef):
        return [f"{path}:{fn.lineno}: {func} must be a plain function, not async"]
    args = fn.args
    positional = args.posonlyargs + args.args
    required = len(positional) - len(args.defaults)
    required_kw = [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is None]
    if required != 1 and not (required == 0 and args.vararg) or required_kw:
        return [f"{path}:{fn.lineno}: {func} must take exactly one required argument (problem), "
                f"got signature ({ast.unparse(args)})"]
    return []


def _format_pydantic(exc: ValidationError, file: Path) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        out.append(f"{file}: {loc}: {msg}")
    return out


def _outside_links(folder: Path) -> list[str]:
    """Symlinks that leave the folder: the evaluator would read (and hash) what they point at, and
    inside a sandbox they point at nothing, so they can only be a mistake or an attempt."""
    root = folder.resolve()
    problems = []
    for path in sorted(folder.rglob("*")):
        if not path.is_symlink():
            continue
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):  # a loop, or a link to nothing
            problems.append(f"{path}: symlink to {os.readlink(path)} leads nowhere (a loop or a missing file)")
            continue
        if not target.is_relative_to(root):
            problems.append(f"{path}: symlink to {os.readlink(path)} points outside the submission")
    return problems


def _foreign_files(folder: Path) -> list[str]:
    """Files that would act without being part of the code hash: a repository of the submission's own
    (git reads its config, commands included) and bytecode outside ``__pycache__`` (Python imports a
    sourceless .pyc; the hash skips bytecode, and the worker compiles the submission from source)."""
    problems = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.name == ".git":
            problems.append(f"{path}: a .git folder or file is not allowed in a submission (git would read its "
                            "config and hooks); submit the files, not a repository")
        elif path.suffix == ".pyc" and "__pycache__" not in rel.parts:
            problems.append(f"{path}: compiled bytecode is not accepted (it would run without being part of the "
                            "code hash); ship the .py source")
    return problems


def validate_submission(folder: Path | str) -> tuple[SubmissionSpec | None, list[str]]:
    """The parsed spec (or None) and every problem found, each naming its file and field."""
    folder = Path(folder)
    spec_file = folder / SPEC_FILE
    if not folder.is_dir():
        return None, [f"{folder}: not a folder"]
    if not spec_file.is_file():
        return None, [f"{spec_file}: not found (every submission needs one; see submissions/README.md)"]
    try:
        raw: Any = yaml.safe_load(spec_file.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        pos = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        return None, [f"{spec_file}{pos}: malformed YAML ({getattr(exc, 'problem', None) or exc})"]
    except UnicodeDecodeError:
        return None, [f"{spec_file}: not UTF-8 text"]
    except (ValueError, RecursionError) as exc:  # a 5,000-digit integer, nesting deeper than the parser goes
        return None, [f"{spec_file}: unreadable YAML ({type(exc).__name__}: {str(exc)[:200]})"]
    if not isinstance(raw, dict):
        return None, [f"{spec_file}: expected a mapping of fields at the top level, got {type(raw).__name__}"]
    try:
        spec = SubmissionSpec.model_validate(raw)
    except ValidationError as exc:
        return None, _format_pydantic(exc, spec_file)
    problems = _outside_links(folder) + _foreign_files(folder)
    if spec.name != folder.resolve().name:
        problems.append(f"{spec_file}: name: {spec.name!r} must equal the folder name {folder.resolve().name!r}")
    for task, entry in spec.tasks.items():
        try:
            get_task(task)
        except UnknownNameError as exc:
            problems.append(f"{spec_file}: tasks.{task}: {exc}")
            continue
        problems += _check_entry(folder, task, entry)
    return spec, problems


def load_submission(folder: Path | str) -> Submission:
    folder = Path(folder).resolve()
    spec, problems = validate_submission(folder)
    if problems or spec is None:
        raise SubmissionError(problems)
    return Submission(folder=folder, spec=spec, code_sha256=code_sha256(folder), git_commit=_git_commit(folder))
