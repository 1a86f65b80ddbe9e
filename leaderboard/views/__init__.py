"""The website's blueprints (HTML pages and the JSON API) and the lookups they share."""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from flask import request, url_for
from werkzeug.exceptions import BadRequest, Forbidden, NotFound

from benchmark.dataset import BOARD_SPLITS as SPLITS
from benchmark.dataset import instance_results_public
from benchmark.metadata import TaskMetadata
from benchmark.stats import MIN_HIDDEN_SLICE
from benchmark.registry import UnknownNameError
from benchmark.task import Task, all_tasks, get_task
from evaluator.results.board import group_columns
from evaluator.store import Evaluation, Submission

from ..api_models import PageInfo
from ..openapi import Param

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "PAGING_PARAMS",
    "SPLITS",
    "SPLIT_PARAM",
    "Page",
    "WITHHELD",
    "group_columns",
    "instances_withheld",
    "refuse_withheld",
    "metric_columns",
    "page_args",
    "registered_tasks",
    "reproduce_command",
    "split_arg",
    "task_metadata_or_none",
    "task_or_404",
]


def split_arg(default: str = "dev") -> str:
    """The ``?split=`` query argument; 400 unless it is a split with a board (dev or test: train results,
    fitted on, are stored but never shown or ranked)."""
    split = request.args.get("split", default)
    if split not in SPLITS:
        why = " (train results are stored, never shown or ranked: a method is fitted there)" if split == "train" else ""
        raise BadRequest(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}{why}")
    return split


SPLIT_PARAM = Param("split", {"type": "string", "enum": list(SPLITS), "default": "dev"})


DEFAULT_LIMIT = 100    # items of a paged API list when ?limit= is not given
MAX_LIMIT = 1000       # the most one request may ask for


@dataclass(frozen=True)
class Page:
    """A window ``[offset, offset + limit)`` of a list the API returns in pages."""
    limit: int
    offset: int

    def slice(self, items: list) -> list:
        return items[self.offset:self.offset + self.limit]

    def _url(self, offset: int) -> str:
        args = {**request.args.to_dict(), "limit": self.limit, "offset": offset}
        return url_for(request.endpoint or "", **(request.view_args or {}), **args)

    def links(self, total: int) -> PageInfo:
        """The paging block of a JSON answer: total, limit, offset and the next/previous URLs."""
        nxt = self._url(self.offset + self.limit) if self.offset + self.limit < total else None
        prev = self._url(max(0, self.offset - self.limit)) if self.offset > 0 else None
        return PageInfo(total=total, limit=self.limit, offset=self.offset, next=nxt, previous=prev)

    @staticmethod
    def link_header(block: PageInfo) -> str | None:
        """RFC 8288 ``Link`` header for the block's next/previous URLs (None when neither)."""
        parts = [f'<{url}>; rel="{rel}"' for rel, url in (("next", block.next), ("prev", block.previous)) if url]
        return ", ".join(parts) or None


def _int_param(name: str, default: int, low: int, high: int | None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    bound = f"between {low} and {high}" if high is not None else f">= {low}"
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"?{name}= must be an integer {bound}, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        raise BadRequest(f"?{name}= must be an integer {bound}, got {raw!r}")
    return value


def page_args(default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> Page:
    """``?limit=`` (1..maximum, default ``default``) and ``?offset=`` (>= 0, default 0); 400 naming
    the parameter otherwise."""
    return Page(_int_param("limit", default, 1, maximum), _int_param("offset", 0, 0, None))


PAGING_PARAMS = (
    Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
          "JSON: how many items of the paged list to return (CSV downloads are never paged)"),
    Param("offset", {"type": "integer", "minimum": 0, "default": 0}, "JSON: how many items of the paged list to skip"),
)


WITHHELD = ("per-instance results of the {split} split are not published: its answers are hidden, and one "
            "instance's scores, details or group would give its answer away; its boards show aggregates only, "
            f"each over at least {MIN_HIDDEN_SLICE} instances (a smaller group or slice is left out, with what "
            "would give it away by subtraction)")


def instances_withheld(split: str) -> bool:
    """Per-instance results of ``split`` are withheld from every page, plot and download."""
    return not instance_results_public(split)


def refuse_withheld(split: str) -> None:
    """403 for a download or plot of per-instance results of a hidden split."""
    if instances_withheld(split):
        raise Forbidden(WITHHELD.format(split=split))


def task_or_404(name: str) -> Task:
    try:
        return get_task(name)
    except UnknownNameError as e:
        raise NotFound(str(e)) from None


def task_metadata_or_none(name: str) -> TaskMetadata | None:
    """A task's metadata, or None for a task that is no longer registered (old results)."""
    try:
        return get_task(name).metadata
    except UnknownNameError:
        return None


def registered_tasks() -> list[Task]:
    return list(all_tasks())


def metric_columns(names_seen: list[dict[str, Any]], meta: TaskMetadata | None) -> list[str]:
    """Metric names, declared ones first in declared order, then any others that appear."""
    seen: set[str] = set()
    for m in names_seen:
        seen.update(m)
    declared = [m.name for m in meta.metrics] if meta else []
    return declared + sorted(seen - set(declared))


def reproduce_command(ev: Evaluation, submission: Submission) -> str:
    """The command that reproduces an evaluation (shell-quoted; the template escapes it for HTML)."""
    parts = ["phasebench", "evaluate", f"submissions/{submission.name}", "--task", ev.task,
             "--split", ev.split, "--sandbox", ev.sandbox, "--device", ev.device]
    return " ".join(shlex.quote(str(p)) for p in parts)

