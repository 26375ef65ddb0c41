"""Structured-output modes found per endpoint and model, kept in the database.

Every process over the same database (CLI runs, queue workers, ``debate serve``) shares them,
so an endpoint is asked once, not once per process. See :mod:`debate.llm.modes`.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from debate.store.tables import EndpointMode, utcnow

_TABLE = EndpointMode.__table__  # type: ignore[attr-defined]


class DatabaseModes:
    """A ``ModeCache`` on the ``endpoint_modes`` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, base_url: str, model: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(_TABLE.c.mode).where(_TABLE.c.base_url == base_url, _TABLE.c.model == model)
            ).scalar_one_or_none()

    def put(self, base_url: str, model: str, mode: str) -> None:
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        row = {"base_url": base_url, "model": model, "mode": mode, "checked_at": utcnow()}
        stmt = insert(_TABLE).values(**row)
        stmt = stmt.on_conflict_do_update(
            index_elements=["base_url", "model"], set_={"mode": mode, "checked_at": row["checked_at"]}
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def forget(self, base_url: str, model: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(_TABLE).where(_TABLE.c.base_url == base_url, _TABLE.c.model == model))
