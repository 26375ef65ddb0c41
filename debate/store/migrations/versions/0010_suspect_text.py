"""suspect text: chunks and imported hypotheses holding instruction-like text, and whether a run's evidence item was suspect

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 10:00:00.000000

The rows already stored are screened here (debate/kb/screen.py): ingest skips a page whose bytes
did not change, so without this they would never be. A chunk is screened on what a prompt
quotes of it, its page's slug, its heading path and its text (markup that ingest leaves out of
the text is not stored; a page is screened on it too when it is next ingested changed). Only
hypotheses imported from a page are screened. Evidence retrieved before this revision was
quoted unmarked, and its rows say so (false).
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from debate.kb.screen import reason_text, screen_chunk, screen_hypothesis

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FALSE = sa.text("false")


def upgrade() -> None:
    # Plain ALTER TABLE (no batch copy): on SQLite, copying ``chunks`` would drop the triggers
    # that keep its full-text index.
    op.add_column('chunks', sa.Column('suspect', sa.Boolean(), server_default=_FALSE, nullable=False))
    op.add_column('chunks', sa.Column('suspect_reason', sa.Text(), nullable=True))
    op.create_index(
        'ix_chunks_suspect', 'chunks', ['id'], unique=False,
        sqlite_where=sa.text('suspect'), postgresql_where=sa.text('suspect'),
    )
    op.add_column('hypotheses', sa.Column('suspect', sa.Boolean(), server_default=_FALSE, nullable=False))
    op.add_column('evidence', sa.Column('suspect', sa.Boolean(), server_default=_FALSE, nullable=False))
    if context.is_offline_mode():
        return  # rendering SQL: there are no rows to read
    _screen_chunks()
    _screen_hypotheses()


# Chunks per batch: read in id order, so memory stays bounded on a large KB.
_BATCH = 2000
_CHUNKS = sa.text(
    "SELECT c.id, c.heading_path, c.text, p.slug FROM chunks c JOIN pages p ON p.id = c.page_id "
    "WHERE c.id > :after ORDER BY c.id LIMIT :n"
)
_MARK_CHUNK = sa.text("UPDATE chunks SET suspect = :suspect, suspect_reason = :reason WHERE id = :id")
_IMPORTED = sa.text("SELECT id, title, statement, target_label FROM hypotheses WHERE source LIKE 'page:%'")
_MARK_HYPOTHESIS = sa.text("UPDATE hypotheses SET suspect = :suspect WHERE id = :id")


def _path(value: Any) -> list[str]:
    """A heading path as the driver returns a JSON column: text on SQLite, often decoded on PostgreSQL."""
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [str(x) for x in value] if isinstance(value, list) else []


def _screen_chunks() -> None:
    bind = op.get_bind()
    after = 0
    while True:
        rows = bind.execute(_CHUNKS, {"after": after, "n": _BATCH}).all()
        if not rows:
            return
        marks = []
        for chunk_id, heading_path, text, slug in rows:
            reasons = screen_chunk(text or "", _path(heading_path), slug=slug or "")
            if reasons:
                marks.append({"id": chunk_id, "suspect": True, "reason": reason_text(reasons)})
        if marks:
            bind.execute(_MARK_CHUNK, marks)
        after = rows[-1][0]


def _screen_hypotheses() -> None:
    bind = op.get_bind()
    marks = [
        {"id": hyp_id, "suspect": True}
        for hyp_id, title, statement, label in bind.execute(_IMPORTED)
        if screen_hypothesis(title or "", statement or "", label)
    ]
    if marks:
        bind.execute(_MARK_HYPOTHESIS, marks)


def downgrade() -> None:
    op.drop_column('evidence', 'suspect')
    op.drop_column('hypotheses', 'suspect')
    op.drop_index('ix_chunks_suspect', table_name='chunks')
    op.drop_column('chunks', 'suspect_reason')
    op.drop_column('chunks', 'suspect')
