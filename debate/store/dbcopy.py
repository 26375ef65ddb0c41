"""Copy a whole debate database to another one (e.g. a local SQLite file to PostgreSQL).

Tables are copied in foreign-key order with Core selects and inserts in chunks, keeping every
primary key, so runs, turns and scores keep their ids. The target is migrated to head first and
must hold no rows: merging two databases would clash on ids. LangGraph checkpoints are not
copied; an unfinished run resumes from its stored turns. Counts are verified per table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel
from sqlalchemy import DateTime, Table, func, select, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import debate.store.tables  # noqa: F401  (registers the tables)
from debate.core.errors import StorageError, UserInputError
from debate.store.db import current_revision, ensure_schema, get_engine, head_revision
from debate.store.tables import as_utc

CHUNK = 1000


class TableCount(BaseModel):
    table: str
    source: int
    target: int


def tables() -> list[Table]:
    """Every table the engine owns, parents before children."""
    return list(SQLModel.metadata.sorted_tables)


def _count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _chunks(conn: Connection, table: Table) -> Iterator[list[dict[str, Any]]]:
    order = list(table.primary_key.columns) or list(table.columns)
    # SQLite hands back naive datetimes; they are UTC and PostgreSQL must not read them as local.
    stamps = [c.name for c in table.columns if isinstance(c.type, DateTime)]
    result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(select(table).order_by(*order))
    for part in result.mappings().partitions(CHUNK):
        rows = [dict(r) for r in part]
        for row in rows:
            for name in stamps:
                row[name] = as_utc(row[name])
        yield rows


def _reset_sequences(conn: Connection, table: Table) -> None:
    """Explicit ids bypass PostgreSQL's sequences: move each past the copied maximum."""
    for col in table.primary_key.columns:
        if col.autoincrement is True or (col.autoincrement == "auto" and col.type.python_type is int):
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence(:t, :c), COALESCE(MAX({col.name}), 1), MAX({col.name}) IS NOT NULL) "
                    f"FROM {table.name}"
                ),
                {"t": table.name, "c": col.name},
            )


def copy_database(
    source_url: str, target_url: str, *, progress: Callable[[str, int], None] | None = None
) -> list[TableCount]:
    """Copy every row from ``source_url`` to the empty database at ``target_url``."""
    if source_url == target_url:
        raise UserInputError("--from and --to name the same database")
    source = get_engine(source_url)
    if current_revision(source) != head_revision():
        # Bring the source to the schema this engine writes, as every other command does.
        source = ensure_schema(source_url)
    target = ensure_schema(target_url)
    with target.connect() as conn:
        for table in tables():
            n = _count(conn, table)
            if n:
                raise UserInputError(
                    f"target database is not empty ({table.name} has {n} rows); copy into a freshly created database"
                )
    with source.connect() as src, target.begin() as dst:
        for table in tables():
            copied = 0
            for rows in _chunks(src, table):
                dst.execute(table.insert(), rows)
                copied += len(rows)
                if progress:
                    progress(table.name, copied)
            if dst.dialect.name == "postgresql":
                _reset_sequences(dst, table)
    counts: list[TableCount] = []
    with source.connect() as src, target.connect() as dst:
        for table in tables():
            counts.append(TableCount(table=table.name, source=_count(src, table), target=_count(dst, table)))
    bad = [c for c in counts if c.source != c.target]
    if bad:
        raise StorageError("copy incomplete: " + ", ".join(f"{c.table} {c.target}/{c.source}" for c in bad))
    return counts
