"""hidden splits' summaries: withhold the group and breakdown slices of fewer than MIN_HIDDEN_SLICE
instances (benchmark.stats.hidden_split_slices), as the evaluator now does when it stores one, and drop
those splits' stored boards so that they are built again from the summaries as they now read

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

evaluations = sa.table('evaluations', sa.column('id', sa.Integer), sa.column('task', sa.String),
                       sa.column('split', sa.String), sa.column('metrics', sa.JSON))
instances = sa.table('instance_results', sa.column('evaluation_id', sa.Integer),
                     sa.column('group_name', sa.String), sa.column('details', sa.JSON))


def _task_metadata(name: str):
    from benchmark.task import get_task
    try:
        return get_task(name).metadata
    except Exception:   # a task since renamed or removed: its slices cannot be checked, so all go
        return None


def upgrade() -> None:
    from benchmark.dataset import instance_results_public
    from benchmark.stats import hidden_split_slices

    conn = op.get_bind()
    hidden_splits = {s for (s,) in conn.execute(sa.select(evaluations.c.split).distinct())
                     if not instance_results_public(s)}
    if not hidden_splits:
        return
    for ev_id, task, metrics in conn.execute(
            sa.select(evaluations.c.id, evaluations.c.task, evaluations.c.metrics)
            .where(evaluations.c.split.in_(hidden_splits))).all():
        if not isinstance(metrics, dict):
            continue
        meta = _task_metadata(task)
        if meta is None:
            kept_groups: frozenset[str] = frozenset()
            kept_breakdowns: dict[str, frozenset[str]] = {}
        else:
            rows = [{"group": g, "details": d if isinstance(d, dict) else {}} for g, d in conn.execute(
                sa.select(instances.c.group_name, instances.c.details).where(instances.c.evaluation_id == ev_id))]
            kept = hidden_split_slices(meta, rows)
            kept_groups, kept_breakdowns = kept.groups, kept.breakdowns
        new = dict(metrics)
        if isinstance(metrics.get("groups"), dict):
            new["groups"] = {g: v for g, v in metrics["groups"].items() if g in kept_groups}
        if isinstance(metrics.get("breakdowns"), dict):
            new["breakdowns"] = {b: {s: v for s, v in slices.items() if s in kept_breakdowns.get(b, ())}
                                 for b, slices in metrics["breakdowns"].items() if isinstance(slices, dict)}
        if new != metrics:
            conn.execute(evaluations.update().where(evaluations.c.id == ev_id).values(metrics=new))
    for table in ('board_rows', 'board_snapshots'):
        conn.execute(sa.text(f"DELETE FROM {table} WHERE split IN :splits")
                     .bindparams(sa.bindparam('splits', expanding=True)), {"splits": sorted(hidden_splits)})


def downgrade() -> None:
    """The withheld slices are not stored anywhere else: a downgrade leaves the summaries as they are."""
