"""The dataset card, generated: the Hub front matter (one config per task) and a section per task
built from its metadata (what it measures, public fields and why, groups, answer, metrics with
direction and aggregation, limits, pinned revisions), followed by the task's own notes.

The notes are the prose no metadata field holds (how the generator draws, sources, anchors): one
markdown file per task, ``card/<task name>.md`` beside the module that defines the task, optional.
The card's opening text is ``card_intro.md`` beside this module. Nothing in the card is edited by
hand: ``phasebench data card`` (and ``data build``/``data push``) writes it, and a test regenerates
the committed card and compares it byte for byte. Cards go through ``huggingface_hub``'s
``DatasetCard`` so that the Hub reads the front matter the way it was written (no network needed).
"""
from __future__ import annotations

import inspect
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .metadata import AnswerField, FieldSpec, Metric, TaskMetadata

if TYPE_CHECKING:
    from huggingface_hub import DatasetCard, DatasetCardData

    from .task import Task

__all__ = ["CARD_FILE", "CARD_SPLITS", "INTRO_FILE", "make_card", "dataset_card", "task_section", "task_notes_path",
           "write_dataset_card", "md_cell"]

CARD_FILE = "README.md"
INTRO_FILE = Path(__file__).with_name("card_intro.md")
#: The splits a config lists: the ones every task publishes (train, where a task has one, is public
#: too but not in every task, and a config naming a missing file fails to load).
CARD_SPLITS = ("dev", "test")


def make_card(data: DatasetCardData, body: str) -> DatasetCard:
    """A card from its front matter and markdown body: the one way every PhaseBench card is assembled."""
    from huggingface_hub import DatasetCard

    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body.strip()}\n")


def md_cell(text: Any) -> str:
    """Text fit for one cell of a markdown table."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: list[str], rows: Iterable[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _number(x: float) -> str:
    return f"{x:.6g}"


def _input_type(spec: FieldSpec) -> str:
    if spec.kind != "array":
        return spec.kind
    shape = f" ({', '.join(spec.shape)})" if spec.shape else ""
    return f"array{shape}, {spec.dtype or 'any dtype'}"


def _answer_type(spec: AnswerField) -> str:
    what = "scalar" if spec.kind == "scalar" else f"array ({', '.join(spec.shape or [])})"
    checks = [c for c in (spec.bounds_text(), "finite" if spec.finite else "inf allowed") if c]
    return f"{what}, {'; '.join(checks)}" + ("" if spec.required else "; optional")


def _metric_row(meta: TaskMetadata, m: Metric) -> list[Any]:
    name = f"`{m.name}`" + (" (headline)" if m.name == meta.headline else "")
    direction = "↑ higher is better" if m.higher_is_better else "↓ lower is better"
    aggregation = m.aggregation if m.label is None else f"{m.aggregation} (class: detail `{m.label}`)"
    if m.nominal_rate is not None:
        aggregation += f"; flagged below {m.nominal_rate:g}"
    return [name, direction, aggregation, _number(m.best), _number(m.worst), m.description]


def task_section(task: Task) -> str:
    """The task's section of the dataset card, heading ``## <name> (version N)`` included."""
    meta = task.metadata
    parts = [f"## {meta.name} (version {meta.version})", meta.description]
    parts.append("**Public fields** (the instance's inputs; each says why a method may see it):\n\n" + _table(
        ["field", "type", "meaning", "public because"],
        ([f"`{k}`", _input_type(f), f.description, f.public_because] for k, f in meta.input_schema.items())))
    parts.append("**Answer**:\n\n" + _table(
        ["field", "type", "meaning"],
        ([f"`{k}`", _answer_type(f), f.description] for k, f in meta.answer_schema.items())))
    groups = ", ".join(f"`{g}`" for g in meta.groups)
    visibility = "public (the `group` column)" if meta.group_public else "hidden (in the private index only)"
    text = f"**Groups**, {visibility}: {groups}. {_sentence(meta.group_because)}"
    if meta.unranked_groups:
        text += (f" Unranked: {', '.join(f'`{g}`' for g in meta.unranked_groups)}, scored and shown but left out "
                 f"of the headline, the ranking and skill: {_sentence(meta.unranked_because or '')}")
    parts.append(text)
    parts.append("**Metrics** (per instance; aggregated over instances with a 95% bootstrap interval, and per "
                 "group; a failed instance counts at the metric's worst value):\n\n" + _table(
                     ["metric", "direction", "aggregation", "best", "worst", "definition"],
                     (_metric_row(meta, m) for m in meta.metrics)))
    if meta.breakdowns:
        parts.append("**Breakdowns**: " + "; ".join(f"{b.title} (`{b.key}`)" for b in meta.breakdowns) + ".")
    lim = meta.limits
    wall = f"{lim.wall_time_s:g} s wall time"
    if lim.wall_time_by is not None:
        by = lim.wall_time_by
        wall = (f"wall time by `{by.field}`: " + ", ".join(f"`{k}` {v:g} s" for k, v in by.seconds.items())
                + f" ({lim.wall_time_s:g} s for any other value)")
    parts.append(f"**Limits** per instance: {wall}, {lim.memory_mb} MB memory, {lim.output_mb:g} MB output.")
    pins = [f"dev `{meta.dataset.revision}`"]
    if meta.dataset.train_revision:
        pins.append(f"train `{meta.dataset.train_revision}`")
    parts.append(f"**Data**: config `{meta.dataset.config}` of `{meta.dataset.repo_id}`; splits "
                 f"{', '.join(task.splits)}; pinned revisions: {', '.join(pins)}.")
    if meta.reference:
        parts.append("**References**:\n\n" + "\n".join(f"- {r}" for r in meta.reference))
    notes = task_notes_path(task)
    if notes.is_file():
        parts.append(notes.read_text(encoding="utf-8").strip())
    return "\n\n".join(p.strip() for p in parts) + "\n"


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def task_notes_path(task: Task) -> Path:
    """Where the task's own prose for the card lives (the file may be absent)."""
    return Path(inspect.getfile(type(task))).resolve().parent / "card" / f"{task.name}.md"


def _card_data(tasks: list[Task]) -> DatasetCardData:
    from huggingface_hub import DatasetCardData

    configs = [{"config_name": t.name,
                "data_files": [{"split": s, "path": f"{t.name}/{s}/instances.jsonl"} for s in CARD_SPLITS]}
               for t in tasks]
    return DatasetCardData(license="mit", pretty_name="PhaseBench", task_categories=["other"],
                           tags=["interpretability", "superposition", "sparse-dictionary-learning", "ai-safety",
                                 "scaling-laws", "rare-events", "benchmark"], configs=configs)


def dataset_card(tasks: Iterable[Task] | None = None) -> DatasetCard:
    """The dataset card of the given tasks (default: every registered task, in the registry's order)."""
    from .task import all_tasks

    tasks = list(all_tasks() if tasks is None else tasks)
    body = "\n".join([INTRO_FILE.read_text(encoding="utf-8").strip() + "\n"] + [task_section(t) for t in tasks])
    return make_card(_card_data(tasks), body)


def write_dataset_card(data_dir: Path | str, tasks: Iterable[Task] | None = None) -> Path:
    """Write the card into a dataset folder; returns its path."""
    path = Path(data_dir) / CARD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(dataset_card(tasks)), encoding="utf-8")
    return path
