"""Hot-path statements on the driver's cursor store and read exactly what SQLAlchemy Core does,
on SQLite and on PostgreSQL, and fail with SQLAlchemy's own exception types."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pg import pg_url  # noqa: F401  (fixture)
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from debate.store import tables as t
from debate.store.db import HeldConnections, ensure_schema
from debate.store.driver import Sql, execute, executemany, fetchall, in_list

_HYP = t.Hypothesis.__table__  # type: ignore[attr-defined]
_COLUMNS = (
    "id",
    "title",
    "title_key",
    "statement",
    "diseases",
    "targets",
    "target_label",
    "mechanisms",
    "source",
    "prior_score",
    "prior_source",
    "created_at",
    "updated_at",
)
_INSERT = Sql.insert(_HYP, _COLUMNS)


def _row(i: int, **changes: object) -> dict[str, object]:
    when = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    row = dict(
        id=f"h-{i}",
        title=f"Idea {i}",
        title_key=f"idea {i}",
        statement="100% “quoted” :not_a_param",
        diseases=["ALS"],
        targets=["SOD1", "TARDBP"],
        target_label=None,
        mechanisms=[],
        source="test",
        prior_score=0.25 * i,
        prior_source=None,
        created_at=when,
        updated_at=when,
    )
    return {**row, **changes}


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return ensure_schema(f"sqlite:///{tmp_path}/driver.db")
    engine = ensure_schema(request.getfixturevalue("pg_url"))  # one database per module: start empty
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM hypotheses"))
    return engine


def test_rows_written_on_the_driver_read_back_as_rows_written_by_core(engine):  # type: ignore[no-untyped-def]
    db = HeldConnections(engine)
    with db.tx(write=True) as conn:
        executemany(conn, _INSERT, [_row(1), _row(2)])
        conn.execute(_HYP.insert(), [_row(3), _row(4)])
    with db.tx() as conn:
        stored = {r.id: r for r in conn.execute(select(_HYP))}
        # The same text in the database, whichever path wrote it (JSON text, datetime format).
        raw = dict(
            conn.execute(
                text("SELECT id, CAST(targets AS TEXT) || '|' || CAST(created_at AS TEXT) FROM hypotheses")
            ).all()
        )
    assert raw["h-1"] == raw["h-3"] and raw["h-2"] == raw["h-4"]
    for written, by_core in (("h-1", "h-3"), ("h-2", "h-4")):
        a, b = stored[written]._asdict(), stored[by_core]._asdict()
        assert {k: v for k, v in a.items() if k not in ("id", "title", "title_key", "prior_score")} == {
            k: v for k, v in b.items() if k not in ("id", "title", "title_key", "prior_score")
        }
    assert stored["h-1"].targets == ["SOD1", "TARDBP"]
    assert stored["h-1"].statement == "100% “quoted” :not_a_param"
    db.close()


def test_queries_convert_results_by_column_type(engine):  # type: ignore[no-untyped-def]
    db = HeldConnections(engine)
    with db.tx(write=True) as conn:
        conn.execute(_HYP.insert(), [_row(1), _row(2), _row(3)])
    query = Sql(
        f"SELECT id, targets, created_at, prior_score FROM hypotheses WHERE id IN ({in_list('h', 2)}) ORDER BY id",
        tables=[_HYP],
        results=("id", "targets", "created_at", "prior_score"),
    )
    with db.tx() as conn:
        rows = fetchall(conn, query, {"h0": "h-1", "h1": "h-3"})
    assert [r[0] for r in rows] == ["h-1", "h-3"]
    assert rows[0][1] == ["SOD1", "TARDBP"]
    assert t.as_utc(rows[0][2]) == datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    assert rows[1][3] == 0.75
    db.close()


def test_updates_count_their_rows_and_driver_errors_are_sqlalchemy_errors(engine):  # type: ignore[no-untyped-def]
    db = HeldConnections(engine)
    with db.tx(write=True) as conn:
        executemany(conn, _INSERT, [_row(1), _row(2)])
    retitle = Sql("UPDATE hypotheses SET title = :title WHERE prior_score < :below", tables=[_HYP])
    with db.tx(write=True) as conn:
        assert execute(conn, retitle, {"title": "Renamed", "below": 0.4}) == 1
    with pytest.raises(IntegrityError):
        with db.tx(write=True) as conn:
            execute(conn, _INSERT, _row(1))  # the same id again
    # The failed transaction rolled back and the connection still works.
    with db.tx() as conn:
        assert sorted(conn.execute(select(_HYP.c.title)).scalars()) == ["Idea 2", "Renamed"]
    db.close()
