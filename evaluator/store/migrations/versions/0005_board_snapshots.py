"""board_snapshots: a task board's derived data (rank intervals, skill, detectable difference) stored
by the evaluator, so the read-only website reads it instead of recomputing it

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'board_snapshots',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task', sa.String(length=100), nullable=False),
        sa.Column('task_version', sa.Integer(), nullable=False),
        sa.Column('split', sa.String(length=20), nullable=False),
        sa.Column('fingerprint', sa.Text(), nullable=False),
        sa.Column('snapshot_format', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('task', 'task_version', 'split', name='uq_board_snapshot'),
    )


def downgrade() -> None:
    op.drop_table('board_snapshots')
