"""The hand-written OpenAPI 3 description of /api/v1 (a test checks it covers every route)."""
from __future__ import annotations

from typing import Any

__all__ = ["PATHS", "openapi_document"]

_split = {"name": "split", "in": "query", "required": False,
          "schema": {"type": "string", "enum": ["dev", "test"], "default": "dev"}}
_format = {"name": "format", "in": "query", "required": False,
           "description": "json (default) or csv: the table as a CSV download",
           "schema": {"type": "string", "enum": ["json", "csv"], "default": "json"}}
_limit = {"name": "limit", "in": "query", "required": False,
          "description": "JSON: how many items of the paged list to return (CSV downloads are never paged)",
          "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}
_offset = {"name": "offset", "in": "query", "required": False,
           "description": "JSON: how many items of the paged list to skip",
           "schema": {"type": "integer", "minimum": 0, "default": 0}}
_paging = [_limit, _offset]
_page = {"$ref": "#/components/schemas/Page"}
_task = {"name": "task", "in": "path", "required": True, "schema": {"type": "string"}}
_error = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(description: str, schema: dict[str, Any] | None = None, csv: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": schema or {"type": "object"}}}
    if csv:
        content["text/csv"] = {"schema": {"type": "string"}}
    return {"description": description, "content": content}


def _get(summary: str, params: list, ok: dict, errors: tuple = ("404",)) -> dict[str, Any]:
    responses = {"200": ok}
    for code in ("400",) + tuple(errors):
        responses[code] = _error
    return {"get": {"summary": summary, "parameters": params, "responses": responses}}


_row = {"type": "object", "properties": {
    "rank": {"type": ["integer", "null"]}, "submission": {"type": "string"}, "baseline": {"type": "boolean"},
    "evaluation_id": {"type": "integer"}, "headline_metric": {"type": "string"},
    "headline": {"type": ["number", "null"]}, "ci_low": {"type": ["number", "null"]},
    "ci_high": {"type": ["number", "null"]}, "metrics": {"type": "object"}, "groups": {"type": "object"},
    "n_failed": {"type": "integer"}, "n_instances": {"type": "integer"}, "runtime_s": {"type": ["number", "null"]},
    "status": {"type": "string"}, "task_version": {"type": "integer"}, "dataset_revision": {"type": "string"},
    "finished_at": {"type": ["string", "null"], "format": "date-time"},
    "rank_interval": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/RankInterval"}]},
    "floor": {"type": "boolean"},
    "skill": {"type": ["object", "null"], "description": "skill against the board's best floor (ranked and "
              "in-sample rows): skill, ci_low, ci_high, beats_floor, gain (paired, positive = better) and its interval"},
}}

PATHS: dict[str, Any] = {
    "/tasks": _get("Every registered task with its metrics", [_format],
                   _ok("tasks", {"type": "object", "properties": {"tasks": {"type": "array", "items": {
                       "$ref": "#/components/schemas/Task"}}}}, csv=True), errors=()),
    "/tasks/{task}": _get("One task's metadata", [_task], _ok("task", {"$ref": "#/components/schemas/Task"})),
    "/tasks/{task}/leaderboard": _get(
        "A task's leaderboard: current-version rows ranked with rank intervals, older-version rows in "
        "separate stale sections (never ranked). JSON pages through the current rows (?limit=&offset=; "
        "stale sections are always whole); the Link header carries the next/previous URLs",
        [_task, _split, _format, *_paging],
        _ok("leaderboard", {"type": "object", "properties": {
            "page": _page,
            "task": {"type": "string"}, "task_version": {"type": "integer"}, "split": {"type": "string"},
            "headline": {"type": "string"}, "higher_is_better": {"type": "boolean"},
            "rank_intervals": {"type": "object"},
            "skill": {"type": "object", "description": "how skill is computed, and the floor it is measured against"},
            "detectable_difference": {"type": ["number", "null"], "description": "the smallest headline "
                                      "difference this split usually separates at 95%"},
            "unranked_groups": {"type": "array", "items": {"type": "string"}},
            "rows": {"type": "array", "items": _row},
            "floors": {"type": "array", "items": _row, "description": "no-skill references, best first; never ranked"},
            "in_sample": {"type": "array", "items": _row, "description": "methods fitted on this split's answers; "
                          "never ranked on it"},
            "stale": {"type": "array", "items": {"type": "object", "properties": {
                "task_version": {"type": "integer"}, "note": {"type": "string"},
                "rows": {"type": "array", "items": _row}}}}}}, csv=True)),
    "/tasks/{task}/plots": _get(
        "The plots a task declares (scatter plots of per-instance details or metrics)", [_task],
        _ok("plot declarations", {"type": "object", "properties": {
            "task": {"type": "string"},
            "plots": {"type": "array", "items": {"allOf": [{"$ref": "#/components/schemas/PlotSpec"}, {
                "type": "object", "properties": {"url": {"type": "string"}}}]}}}})),
    "/tasks/{task}/plots/{plot}": _get(
        "The points of one declared plot: one series per submission (the top five current-version "
        "submissions and the highlighted baselines, as on the task page, unless ?evaluations= names "
        "others), one point per instance result that has both values; the rest are counted as skipped",
        [_task, {"name": "plot", "in": "path", "required": True, "schema": {"type": "string"}}, _split, _format,
         {"name": "evaluations", "in": "query", "required": False,
          "description": "comma-separated evaluation ids from this task's leaderboard (at most 20)",
          "schema": {"type": "string", "pattern": "^[0-9]+(,[0-9]+)*$"}}],
        _ok("plot data (CSV: one line per point)", {"type": "object", "properties": {
            "task": {"type": "string"}, "task_version": {"type": "integer"}, "split": {"type": "string"},
            "plot": {"$ref": "#/components/schemas/PlotSpec"}, "summary": {"type": "string"},
            "n_points": {"type": "integer"}, "n_skipped": {"type": "integer"},
            "series": {"type": "array", "items": {"type": "object", "properties": {
                "submission": {"type": "string"}, "evaluation_id": {"type": "integer"},
                "baseline": {"type": "boolean"}, "rank": {"type": ["integer", "null"]},
                "skipped": {"type": "integer"},
                "points": {"type": "array", "items": {"type": "object", "properties": {
                    "instance_id": {"type": "string"}, "group": {"type": "string"},
                    "x": {"type": "number"}, "y": {"type": "number"}}}}}}}}}, csv=True)),
    "/evaluations/{evaluation_id}": _get(
        "One evaluation with provenance and its instance results (JSON: paged with ?limit=&offset=; CSV: all)",
        [{"name": "evaluation_id", "in": "path", "required": True, "schema": {"type": "integer"}}, _format,
         *_paging],
        _ok("evaluation (CSV: the instance table)", {"type": "object", "properties": {
            "page": _page, "groups": {"type": "object"},
            "breakdowns": {"type": "object", "description": "per breakdown the task declares "
                           "(TaskMetadata.breakdowns): slice value -> n and each metric's aggregate"},
            "instances": {"type": "array", "items": {"type": "object", "properties": {
                "instance_id": {"type": "string"}, "group": {"type": "string"}, "status": {"type": "string"},
                "metrics": {"type": "object"}, "details": {"type": "object", "description":
                    "the task's per-instance plot values (Task.instance_details)"},
                "runtime_s": {"type": ["number", "null"]}, "error": {"type": ["string", "null"]}}}}}},
            csv=True)),
    "/submissions/{name}": _get(
        "A submission's metadata (newest code version) and its evaluations (JSON: paged; CSV: all)",
        [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}, _format, *_paging],
        _ok("submission (CSV: the evaluations table)", {"type": "object", "properties": {
            "page": _page, "evaluations": {"type": "array", "items": {"type": "object"}}}}, csv=True)),
    "/compare": _get(
        "Two evaluations of the same task: per-metric mean paired differences (a − b) over shared "
        "instances with 95% paired-bootstrap intervals, per-group differences and per-instance values",
        [{"name": "a", "in": "query", "required": True, "schema": {"type": "integer"}},
         {"name": "b", "in": "query", "required": True, "schema": {"type": "integer"}}, _format,
         {"name": "table", "in": "query", "required": False, "description": "which table for format=csv",
          "schema": {"type": "string", "enum": ["instances", "metrics", "groups"], "default": "instances"}}],
        _ok("comparison", csv=True)),
    "/overall": _get(
        "Overall ranking across tasks by mean rank over the tasks each method entered (the rule is in "
        "the response; JSON: paged)", [_split, _format, *_paging],
        _ok("overall ranking", {"type": "object", "properties": {
            "page": _page, "rows": {"type": "array", "items": {"type": "object"}}}}, csv=True)),
    "/jobs": _get(
        "Evaluation jobs of the queue, newest first: state (queued, running, done, failed with reason), "
        "queue position of queued jobs, attempts, worker and the evaluation produced",
        [{"name": "state", "in": "query", "required": False, "description": "only these states (repeatable)",
          "schema": {"type": "string", "enum": ["queued", "running", "done", "failed"]}},
         {"name": "submission", "in": "query", "required": False, "schema": {"type": "string"}},
         {"name": "limit", "in": "query", "required": False,
          "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}, _format],
        _ok("jobs", {"type": "object", "properties": {
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "jobs": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "integer"}, "state": {"type": "string"},
                "position": {"type": ["integer", "null"]}, "reason": {"type": ["string", "null"]},
                "submission": {"type": "string"}, "task": {"type": "string"}, "split": {"type": "string"},
                "attempts": {"type": "integer"}, "worker": {"type": ["string", "null"]},
                "evaluation_id": {"type": ["integer", "null"]}}}}}}, csv=True), errors=()),
    "/openapi.json": _get("This document", [], _ok("OpenAPI 3 document"), errors=()),
}


def openapi_document(server_url: str = "/api/v1") -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "PhaseBench leaderboard API", "version": "1",
                 "description": "Read-only access to everything the leaderboard website shows. Errors are "
                                "JSON objects {error, message, status}. NaN and infinite values are null."},
        "servers": [{"url": server_url or "/api/v1"}],
        "paths": PATHS,
        "components": {"schemas": {
            "Page": {"type": "object", "description": "where this answer sits in the whole list", "properties": {
                "total": {"type": "integer"}, "limit": {"type": "integer"}, "offset": {"type": "integer"},
                "next": {"type": ["string", "null"], "description": "URL of the next page; null on the last"},
                "previous": {"type": ["string", "null"]}}},
            "Error": {"type": "object", "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                                                         "status": {"type": "integer"}}},
            "RankInterval": {"type": "object", "properties": {
                "low": {"type": "integer"}, "high": {"type": "integer"}, "label": {"type": "string"},
                "tied_with_previous": {"type": "boolean"}}},
            "Task": {"type": "object", "properties": {
                "name": {"type": "string"}, "version": {"type": "integer"}, "description": {"type": "string"},
                "headline": {"type": "string"}, "higher_is_better": {"type": "boolean"},
                "metrics": {"type": "array", "items": {"type": "object"}},
                "groups": {"type": "array", "items": {"type": "string"}}, "dataset": {"type": "object"},
                "plots": {"type": "array", "items": {"$ref": "#/components/schemas/PlotSpec"}}}},
            "PlotSpec": {"type": "object", "description": "x and y name a key of the per-instance details, "
                                                          "or 'metric:<name>' for a per-instance metric",
                         "properties": {
                "name": {"type": "string"}, "title": {"type": "string"}, "kind": {"type": "string", "enum": ["scatter"]},
                "x": {"type": "string"}, "y": {"type": "string"}, "x_log": {"type": "boolean"},
                "y_log": {"type": "boolean"}, "diagonal": {"type": "boolean", "description": "draw y = x"},
                "x_label": {"type": "string"}, "y_label": {"type": "string"}, "caption": {"type": "string"}}},
        }},
    }
