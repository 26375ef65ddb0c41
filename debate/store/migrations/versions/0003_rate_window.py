"""rate limits shared by every process of an endpoint

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('rate_window',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('endpoint', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('t', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tokens', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('rate_window', schema=None) as batch_op:
        batch_op.create_index('ix_rate_window_endpoint_t', ['endpoint', 't'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rate_window', schema=None) as batch_op:
        batch_op.drop_index('ix_rate_window_endpoint_t')

    op.drop_table('rate_window')
