"""board_rows: a board as its readers show it, one record per row, stored with the board's snapshot
so that a page reads only the slice of rows it shows

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'board_rows',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task', sa.String(length=100), nullable=False),
        sa.Column('task_version', sa.Integer(), nullable=False),
        sa.Column('split', sa.String(length=20), nullable=False),
        sa.Column('fingerprint', sa.Text(), nullable=False),
        sa.Column('section', sa.String(length=20), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('row_task_version', sa.Integer(), nullable=False),
        sa.Column('evaluation_id', sa.Integer(), nullable=True),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_board_rows_slice', 'board_rows', ['task', 'task_version', 'split', 'section', 'position'])


def downgrade() -> None:
    op.drop_index('ix_board_rows_slice', table_name='board_rows')
    op.drop_table('board_rows')
