"""each run's count of claims whose quote was verified against the evidence they cite, and of those citing evidence; the pages a run's claims cited

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 19:00:00.000000
"""

import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import context, op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no backfill: runs finished before quotes existed were never checked.
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claims_verified', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('claims_cited', sa.Integer(), nullable=True))
    op.create_table('cited_pages',
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('page_slug', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('verified', sa.Integer(), nullable=False),
    sa.Column('unverified', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('run_id', 'page_slug')
    )
    with op.batch_alter_table('cited_pages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cited_pages_page_slug'), ['page_slug'], unique=False)
    _backfill_cited_pages()


# Runs per batch of the backfill: their evidence and turns are read at once.
_BATCH = 500
_DONE_RUNS = sa.text(
    "SELECT DISTINCT runs.id FROM runs JOIN turns ON turns.run_id = runs.id "
    "WHERE runs.status = 'done' ORDER BY runs.id"
)
_EVIDENCE = sa.text("SELECT run_id, eid, page_slug FROM evidence WHERE run_id IN :ids").bindparams(
    sa.bindparam("ids", expanding=True)
)
_TURNS = sa.text(
    "SELECT run_id, parsed FROM turns WHERE run_id IN :ids AND role IN ('proposer', 'critic')"
).bindparams(sa.bindparam("ids", expanding=True))
_INSERT = sa.text(
    "INSERT INTO cited_pages (run_id, page_slug, verified, unverified) VALUES (:run_id, :page_slug, 0, :unverified)"
)


def _claims(parsed: Any) -> Iterator[list[str]]:
    """The evidence ids each claim of a stored reply cites (``parsed`` as the driver returns a JSON
    column: text on SQLite, often already decoded on PostgreSQL)."""
    if isinstance(parsed, (str, bytes)):
        try:
            parsed = json.loads(parsed)
        except ValueError:
            return
    claims = parsed.get("claims") if isinstance(parsed, dict) else None
    for claim in claims if isinstance(claims, list) else ():
        ids = claim.get("evidence_ids") if isinstance(claim, dict) else None
        if isinstance(ids, list):
            yield [e for e in ids if isinstance(e, str)]


def _backfill_cited_pages() -> None:
    """The pages each finished run's proposer and critic claims cited (a claim citing several
    items of one page counts once for it). Those runs finished before claims quoted evidence, so
    no claim was verified: every one counts as unverified. Ids that name no evidence of the run
    count for no page, and evidence no claim cited gets no row."""
    if context.is_offline_mode():
        return  # rendering SQL: there are no rows to read
    bind = op.get_bind()
    run_ids = list(bind.execute(_DONE_RUNS).scalars())
    for start in range(0, len(run_ids), _BATCH):
        part = run_ids[start : start + _BATCH]
        page = {(run_id, eid): slug for run_id, eid, slug in bind.execute(_EVIDENCE, {"ids": part})}
        counts: dict[tuple[str, str], int] = {}
        for run_id, parsed in bind.execute(_TURNS, {"ids": part}):
            for ids in _claims(parsed):
                for slug in dict.fromkeys(page[(run_id, e)] for e in ids if (run_id, e) in page):
                    counts[(run_id, slug)] = counts.get((run_id, slug), 0) + 1
        if counts:
            bind.execute(
                _INSERT,
                [dict(run_id=r, page_slug=slug, unverified=n) for (r, slug), n in sorted(counts.items())],
            )


def downgrade() -> None:
    with op.batch_alter_table('cited_pages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cited_pages_page_slug'))
    op.drop_table('cited_pages')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('claims_cited')
        batch_op.drop_column('claims_verified')
