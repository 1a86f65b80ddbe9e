"""The results dataset: every evaluation in the results database as one JSON line, with its
provenance and its per-instance rows, and a dataset card. It is what gets published on the Hub,
and it is enough to rebuild the results database (and so the leaderboard) from nothing.

Layout of an exported folder::

    README.md                 the dataset card (Hub YAML header: license, configs)
    data/evaluations.jsonl    one record per evaluation, ordered by its id in the source database
    data/boards.jsonl         the stored boards of the hidden split, whose per-instance rows are withheld
                              (rank intervals, skills: aggregates), so that its leaderboard is rebuilt as well

Each record carries ``dataset_format`` (the version of this layout, :data:`DATASET_FORMAT`) and
``record_format`` (the version of the schemaless JSON columns it copies, see
:data:`evaluator.results.summary.RECORD_FORMAT`). An importer refuses formats it does not know rather than
guess. The export is deterministic: the same database gives the same bytes, so a push of an
unchanged database is an empty commit.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import selectinload

from benchmark.dataset import instance_results_public

from ..store import Evaluation, InstanceResult, Submission, session_scope
from .board import fingerprint_text
from .summary import RECORD_FORMAT

__all__ = ["DATASET_FORMAT", "RECORDS_FILE", "CARD_FILE", "ResultsDatasetError", "ExportSummary",
           "evaluation_record", "export_results", "import_results", "read_records"]

#: 1: first layout (evaluation, submission and instances per line).
#: 2: + ``instances_withheld``: a hidden split's per-instance rows are left out of a public export.
DATASET_FORMAT = 2
READABLE_FORMATS = (1, 2)
RECORDS_FILE = "data/evaluations.jsonl"
BOARDS_FILE = "data/boards.jsonl"
CARD_FILE = "README.md"

# Evaluation columns copied as they are; ids and timestamps are handled separately.
_EVALUATION_FIELDS = ("task", "task_version", "split", "dataset_revision", "evaluator_version", "sandbox",
                      "sandbox_info", "device", "hardware", "library_versions", "status", "headline_metric",
                      "headline", "headline_ci_low", "headline_ci_high", "n_instances", "n_failed", "runtime_s",
                      "metrics", "note")
_INSTANCE_FIELDS = ("instance_id", "group", "status", "metrics", "runtime_s", "error", "details")


class ResultsDatasetError(ValueError):
    """A results dataset that cannot be imported; the message names the file, line and field."""


@dataclass(frozen=True)
class ExportSummary:
    out_dir: Path
    n_evaluations: int
    n_instances: int
    by_task_split: dict[str, int]
    n_withheld: int = 0          # per-instance rows of hidden splits left out


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    # SQLite hands timezone-aware columns back naive; they were written in UTC.
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat()


def _parse_time(value: str | None, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ResultsDatasetError(f"{where}: not an ISO 8601 time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def evaluation_record(ev: Evaluation, with_hidden_instances: bool = False) -> dict[str, Any]:
    """One evaluation (with its submission and instances loaded) as a JSON-ready record. A hidden
    split's per-instance rows (they hold its answers: see
    :func:`benchmark.dataset.instance_results_public`) are left out, and counted, unless
    ``with_hidden_instances`` (the operator's private backup)."""
    sub = ev.submission
    withheld = not with_hidden_instances and not instance_results_public(ev.split)
    return {
        "dataset_format": DATASET_FORMAT,
        "record_format": ev.record_format,
        "evaluation_id": ev.id,
        **{name: getattr(ev, name) for name in _EVALUATION_FIELDS},
        "started_at": _iso(ev.started_at),
        "finished_at": _iso(ev.finished_at),
        "submission": {"id": sub.id, "name": sub.name, "code_sha256": sub.code_sha256,
                       "git_commit": sub.git_commit, "metadata": sub.meta, "created_at": _iso(sub.created_at)},
        # the evaluation's instance count (not the rows at hand): the same after an import of this record
        "instances_withheld": ev.n_instances if withheld else 0,
        "instances": [] if withheld else [{name: getattr(i, name) for name in _INSTANCE_FIELDS} for i in ev.instances],
    }


def _evaluations(engine: Engine, batch: int = 200) -> Iterator[Evaluation]:
    """Every evaluation in id order, loaded a batch at a time (instances can be many)."""
    last = 0
    while True:
        with session_scope(engine) as s:
            rows = s.scalars(select(Evaluation).where(Evaluation.id > last).order_by(Evaluation.id).limit(batch)
                             .options(selectinload(Evaluation.submission), selectinload(Evaluation.instances))).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id


def _dumps(record: dict[str, Any]) -> str:
    # Key order is kept, not sorted: the website shows metrics in the order the task declared them,
    # which is the order they were stored in. allow_nan=False: NaN is not JSON, and a database that
    # holds one is a bug worth stopping on.
    return json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def export_results(engine: Engine, out_dir: Path | str, with_hidden_instances: bool = False) -> ExportSummary:
    """Write every evaluation of the database to ``out_dir`` (records file and dataset card); a
    hidden split's per-instance rows only ``with_hidden_instances`` (never for publishing)."""
    out_dir = Path(out_dir)
    records_path = out_dir / RECORDS_FILE
    records_path.parent.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    submissions: set[str] = set()
    n_evaluations = n_instances = n_withheld = 0
    tmp = records_path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for ev in _evaluations(engine):
            record = evaluation_record(ev, with_hidden_instances)
            f.write(_dumps(record) + "\n")
            n_evaluations += 1
            n_instances += len(record["instances"])
            n_withheld += record["instances_withheld"]
            counts[f"{ev.task}/{ev.split}"] += 1
            statuses[ev.status] += 1
            submissions.add(ev.submission.name)
    tmp.replace(records_path)  # a reader never sees half a file
    _export_boards(engine, out_dir / BOARDS_FILE, with_hidden_instances)
    (out_dir / CARD_FILE).write_text(_card(n_evaluations, n_instances, n_withheld, counts, statuses,
                                           len(submissions)), encoding="utf-8")
    return ExportSummary(out_dir, n_evaluations, n_instances, dict(sorted(counts.items())), n_withheld)


def _export_boards(engine: Engine, path: Path, with_hidden_instances: bool) -> None:
    """The stored boards (snapshot and rows) of the splits whose instance rows were withheld, each
    only when it is current (stored for the board as it is): without the instance values an
    importer could not compute their rank intervals and skills."""
    from ..store import ResultsStore

    store = ResultsStore(engine)
    lines = []
    for task, version, split, fingerprint, fmt, payload in store.board_snapshots():
        if with_hidden_instances or instance_results_public(split):
            continue
        if fingerprint != fingerprint_text(store.board_fingerprint(task, split)):
            continue          # stale: the importer computes what it can instead
        rows = store.board_rows(task, version, split, fingerprint, with_overall=True)
        lines.append(_dumps({"dataset_format": DATASET_FORMAT, "task": task, "task_version": version, "split": split,
                             "snapshot_format": fmt, "snapshot": payload,
                             "rows": [[r.section, r.position, r.task_version, r.evaluation_id, r.payload]
                                      for r in rows]}))
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(path)


def _import_boards(engine: Engine, folder: Path) -> int:
    """Store the exported boards whose evaluations are the imported ones (keyed by the imported
    board's fingerprint); the number stored."""
    from ..store import BoardRowRecord, ResultsStore

    path = folder / BOARDS_FILE
    if not path.is_file():
        return 0
    store = ResultsStore(engine)
    n = 0
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path}:{lineno}"
        if not line.strip():
            continue
        try:
            rec = json.loads(line, parse_constant=_refuse_constant)
            task, version, split = rec["task"], int(rec["task_version"]), rec["split"]
            rows = [BoardRowRecord(str(sec), int(pos), int(tv), None if ev is None else int(ev), str(text))
                    for sec, pos, tv, ev, text in rec["rows"]]
            fmt, snapshot = int(rec["snapshot_format"]), rec["snapshot"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ResultsDatasetError(f"{where}: not a stored board: {type(exc).__name__}: {exc}") from None
        if rec.get("dataset_format") not in READABLE_FORMATS:
            raise ResultsDatasetError(f"{where}: dataset_format {rec.get('dataset_format')!r} is not one this "
                                      "evaluator reads; upgrade phasebench")
        shown = {r.evaluation_id for r in rows if r.section not in ("header", "overall")}
        if shown != {row.evaluation.id for row in store.latest_finished(task, split)}:
            continue          # not the imported board's rows: computed by the importer instead
        store.put_board_snapshot(task, version, split, fingerprint_text(store.board_fingerprint(task, split)), fmt,
                                 snapshot, rows)
        n += 1
    return n


def _instance_statuses() -> str:
    from ..store import InstanceStatus

    return ", ".join(v for k, v in vars(InstanceStatus).items() if k.isupper())


def _card(n_evaluations: int, n_instances: int, n_withheld: int, counts: Counter[str], statuses: Counter[str],
          n_submissions: int) -> str:
    from huggingface_hub import DatasetCardData

    from benchmark.card import make_card

    table = "\n".join(f"| {k} | {v} |" for k, v in sorted(counts.items())) or "| (none) | 0 |"
    status_line = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())) or "none"
    data = DatasetCardData(license="mit", pretty_name="PhaseBench results", tags=["benchmark", "leaderboard"],
                           configs=[{"config_name": "evaluations", "data_files": RECORDS_FILE}])
    return str(make_card(data, f"""# PhaseBench results

Every evaluation the PhaseBench evaluator stored: {n_evaluations} evaluation(s) of {n_submissions}
submission(s), {n_instances} per-instance row(s) ({n_withheld} of the hidden test split withheld). Status
counts: {status_line}.

| task/split | evaluations |
|---|---|
{table}

## Format

`{RECORDS_FILE}` has one JSON object per line, one per evaluation, in the order they were run.

- `dataset_format` ({DATASET_FORMAT}): the version of this layout.
- `record_format`: the version of the schemaless fields (`metrics`, `hardware`, `library_versions`,
  `sandbox_info`, instance `metrics` and `details`) as the evaluator wrote them.
- Provenance: `submission.code_sha256`, `submission.git_commit`, `dataset_revision`, `task_version`,
  `evaluator_version`, `sandbox` and `sandbox_info` (for containers the image digest), `device`,
  `hardware`, `library_versions`, `started_at`, `finished_at`.
- Scores: `status`, `headline_metric`, `headline` with its 95% bootstrap interval
  (`headline_ci_low`, `headline_ci_high`), `metrics` (every metric and group aggregate),
  `n_instances`, `n_failed`, `runtime_s`.
- `instances`: one row per benchmark instance, with its `status` ({_instance_statuses()}),
  `metrics`, `runtime_s`, `error` and task-defined `details`; empty for an evaluation on the hidden
  test split, whose rows would give its answers away (`instances_withheld` counts them): its
  aggregates are all that is published.

Only evaluations with status `complete` or `partial` are results; `running`, `interrupted` and
`failed` rows are kept so that the history is complete.

## Rebuild the leaderboard from this dataset

```bash
phasebench results import --db postgresql+psycopg://.../phasebench path/to/this/folder
phasebench serve --db postgresql+psycopg://.../phasebench
```
"""))


def read_records(folder: Path | str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``file:line``, record) for every record of an exported folder, format-checked."""
    path = Path(folder) / RECORDS_FILE
    if not path.is_file():
        raise ResultsDatasetError(f"{path}: not found (is {folder} an exported results dataset?)")
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            where = f"{path}:{lineno}"
            if not line.strip():
                continue
            try:
                record = json.loads(line, parse_constant=_refuse_constant)
            except ValueError as exc:
                raise ResultsDatasetError(f"{where}: not JSON: {exc}") from None
            if not isinstance(record, dict):
                raise ResultsDatasetError(f"{where}: expected an object, got {type(record).__name__}")
            fmt = record.get("dataset_format")
            if fmt not in READABLE_FORMATS:
                raise ResultsDatasetError(f"{where}: dataset_format {fmt!r} is not one this evaluator reads "
                                          f"({', '.join(map(str, READABLE_FORMATS))}); upgrade phasebench")
            rf = record.get("record_format")
            if not isinstance(rf, int) or not 1 <= rf <= RECORD_FORMAT:
                raise ResultsDatasetError(f"{where}: record_format {rf!r} is newer than this evaluator's "
                                          f"({RECORD_FORMAT}) or invalid; upgrade phasebench")
            yield where, record


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _require(record: dict[str, Any], key: str, where: str) -> Any:
    if key not in record:
        raise ResultsDatasetError(f"{where}: field {key!r} missing")
    return record[key]


def import_results(engine: Engine, folder: Path | str) -> int:
    """Load an exported results dataset into an empty, migrated results database.

    Evaluation and submission ids are kept, so links, "newest first" orderings and everything the
    website derives from them come out as they were; the stored boards of a hidden split (whose
    instance rows were withheld) are stored again for the imported boards. Returns the number of
    evaluations loaded. All or nothing: one transaction.
    """
    with session_scope(engine) as s:
        existing = s.scalar(select(func.count()).select_from(Evaluation))
        if existing:
            raise ResultsDatasetError(f"the target results database already holds {existing} evaluation(s); "
                                      "import into an empty database")
        submissions: dict[int, Submission] = {}
        n = 0
        for where, rec in read_records(folder):
            sub_rec = _require(rec, "submission", where)
            sub_id = _require(sub_rec, "id", f"{where}: submission")
            sub = submissions.get(sub_id)
            if sub is None:
                sub = Submission(id=sub_id, name=_require(sub_rec, "name", f"{where}: submission"),
                                 code_sha256=_require(sub_rec, "code_sha256", f"{where}: submission"),
                                 git_commit=sub_rec.get("git_commit"), meta=sub_rec.get("metadata") or {},
                                 created_at=_parse_time(sub_rec.get("created_at"), f"{where}: submission.created_at"))
                s.add(sub)
                submissions[sub_id] = sub
            ev = Evaluation(id=_require(rec, "evaluation_id", where), record_format=rec["record_format"],
                            submission=sub, started_at=_parse_time(rec.get("started_at"), f"{where}: started_at"),
                            finished_at=_parse_time(rec.get("finished_at"), f"{where}: finished_at"),
                            **{name: _require(rec, name, where) for name in _EVALUATION_FIELDS})
            for i, inst in enumerate(_require(rec, "instances", where)):
                ev.instances.append(InstanceResult(
                    **{name: _require(inst, name, f"{where}: instances[{i}]") for name in _INSTANCE_FIELDS}))
            s.add(ev)
            n += 1
        s.flush()
        if engine.dialect.name == "postgresql":
            # Explicit ids leave the serial sequences behind; the next evaluation must not collide.
            for table in ("submissions", "evaluations", "instance_results"):
                s.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), 1), "
                               f"(SELECT COUNT(*) FROM {table}) > 0)"))
    _import_boards(engine, Path(folder))
    return n
