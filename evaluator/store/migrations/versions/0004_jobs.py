"""jobs: evaluations run through the job queue (state, attempts, worker, the evaluation produced)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'jobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.String(length=64), nullable=False),
        sa.Column('queue', sa.String(length=200), nullable=False),
        sa.Column('submission_name', sa.String(length=200), nullable=False),
        sa.Column('submission_dir', sa.Text(), nullable=False),
        sa.Column('code_sha256', sa.String(length=64), nullable=False),
        sa.Column('task', sa.String(length=100), nullable=False),
        sa.Column('split', sa.String(length=20), nullable=False),
        sa.Column('sandbox', sa.String(length=50), nullable=False),
        sa.Column('device', sa.String(length=50), nullable=False),
        sa.Column('force', sa.Boolean(), nullable=False),
        sa.Column('options', sa.JSON(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('worker', sa.String(length=200), nullable=True),
        sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('evaluation_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['evaluation_id'], ['evaluations.id'], name='fk_jobs_evaluation_id_evaluations'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('message_id', name='uq_jobs_message_id'),
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_queue_state', ['queue', 'state'], unique=False)
        batch_op.create_index('ix_jobs_submission_name', ['submission_name'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_submission_name')
        batch_op.drop_index('ix_jobs_queue_state')
    op.drop_table('jobs')
