"""evidence relevance in [0, 1] (score over the best score of the same search), beside the raw score

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:00:00.000000

Evidence retrieved before this revision has no relevance (NULL): its transcripts show a dash.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('relevance', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_column('relevance')
