"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 14:19:09.301565
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('submissions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('code_sha256', sa.String(length=64), nullable=False),
    sa.Column('git_commit', sa.String(length=64), nullable=True),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name', 'code_sha256', name='uq_submission_code')
    )
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submissions_name'), ['name'], unique=False)

    op.create_table('evaluations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_format', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('task', sa.String(length=100), nullable=False),
    sa.Column('task_version', sa.Integer(), nullable=False),
    sa.Column('split', sa.String(length=20), nullable=False),
    sa.Column('dataset_revision', sa.String(length=100), nullable=False),
    sa.Column('evaluator_version', sa.String(length=50), nullable=False),
    sa.Column('sandbox', sa.String(length=50), nullable=False),
    sa.Column('device', sa.String(length=50), nullable=False),
    sa.Column('hardware', sa.JSON(), nullable=False),
    sa.Column('library_versions', sa.JSON(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('headline_metric', sa.String(length=100), nullable=False),
    sa.Column('headline', sa.Float(), nullable=True),
    sa.Column('headline_ci_low', sa.Float(), nullable=True),
    sa.Column('headline_ci_high', sa.Float(), nullable=True),
    sa.Column('n_instances', sa.Integer(), nullable=False),
    sa.Column('n_failed', sa.Integer(), nullable=False),
    sa.Column('runtime_s', sa.Float(), nullable=True),
    sa.Column('metrics', sa.JSON(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.create_index('ix_eval_lookup', ['task', 'split', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluations_submission_id'), ['submission_id'], unique=False)

    op.create_table('instance_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('evaluation_id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.String(length=200), nullable=False),
    sa.Column('group_name', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('runtime_s', sa.Float(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['evaluation_id'], ['evaluations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('evaluation_id', 'instance_id', name='uq_instance_once')
    )
    with op.batch_alter_table('instance_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instance_results_evaluation_id'), ['evaluation_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('instance_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instance_results_evaluation_id'))

    op.drop_table('instance_results')
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluations_submission_id'))
        batch_op.drop_index('ix_eval_lookup')

    op.drop_table('evaluations')
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submissions_name'))

    op.drop_table('submissions')
