"""Hot-path statements run on the database driver's own cursor, inside a SQLAlchemy transaction.

A debate makes some thirty short statements (start the run, rank evidence, write each turn,
finish). Through SQLAlchemy Core each costs 30–70 µs of Python before and after the SQL
(statement construction, cache key, execution context, result wrapping), more than SQLite
spends running it; on the driver's cursor the same statement costs a few µs. Only these hot
statements take this path; everything else uses Core or the ORM.

A statement is written once with ``:name`` parameters. Values are converted by the column
types' own SQLAlchemy bind and result processors (``TypeEngine.dialect_impl``), so what is
stored and read back is exactly what Core would store and read: JSON text on SQLite, a
``psycopg`` JSON adapter on PostgreSQL, SQLite's datetime text, and so on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import sqltypes
from sqlalchemy.types import TypeEngine

_CONVERTED_RESULTS = (sqltypes.JSON, sqltypes.DateTime, sqltypes.Boolean)
_PARAM = re.compile(r"(?<![:\w]):(\w+)")
Processor = Callable[[Any], Any]


class Sql:
    """One statement with ``:name`` parameters and the column types of its values and results.

    ``tables`` supply the type of every parameter, and of every column named in ``results``
    (the names of the result columns, in order), named like one of their columns.
    """

    def __init__(self, sql: str, *, tables: Sequence[Table] = (), results: Sequence[str] = ()) -> None:
        self.sql = sql
        self.params = list(dict.fromkeys(_PARAM.findall(sql)))
        types: dict[str, TypeEngine[Any]] = {}
        for table in reversed(tables):  # the first table named wins a shared column name
            types.update({c.name: c.type for c in table.columns})
        self._bind_types = {p: types[p] for p in self.params if p in types}
        self._result_types = [types.get(name) for name in results]
        self._compiled: dict[str, tuple[str, dict[str, Processor], list[Processor | None]]] = {}

    @classmethod
    def insert(cls, table: Table, columns: Sequence[str]) -> Sql:
        """``INSERT INTO table (columns) VALUES (:column, …)``."""
        return cls(
            f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})",
            tables=[table],
        )

    def _for(self, dialect: Dialect) -> tuple[str, dict[str, Processor], list[Processor | None]]:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            if dialect.name == "sqlite":
                sql = self.sql  # sqlite3 takes :name itself
            else:  # psycopg: %(name)s, and a literal % doubled
                sql = _PARAM.sub(r"%(\1)s", self.sql.replace("%", "%%"))
            binds = {
                name: p
                for name, type_ in self._bind_types.items()
                if (p := type_.dialect_impl(dialect).bind_processor(dialect)) is not None
            }
            # Only types a driver may hand back in another form need a result processor (SQLAlchemy's
            # numeric ones want the driver's type code, which a cursor here does not supply).
            results = [
                type_.dialect_impl(dialect).result_processor(dialect, None)
                if isinstance(type_, _CONVERTED_RESULTS)
                else None
                for type_ in self._result_types
            ]
            compiled = self._compiled[dialect.name] = (sql, binds, results)
        return compiled

    def _bind(self, binds: dict[str, Processor], values: Mapping[str, Any]) -> dict[str, Any]:
        row = {p: values[p] for p in self.params}
        for name, process in binds.items():
            if row[name] is not None:
                row[name] = process(row[name])
        return row


def execute(conn: Connection, stmt: Sql, values: Mapping[str, Any] | None = None) -> int:
    """Run a statement that returns no rows; returns the row count."""
    sql, binds, _ = stmt._for(conn.dialect)
    params = stmt._bind(binds, values or {})
    with _cursor(conn, sql, params) as cur:
        cur.execute(sql, params)
        return int(cur.rowcount)


def executemany(conn: Connection, stmt: Sql, rows: Iterable[Mapping[str, Any]]) -> None:
    """Run a statement once per row (one round trip where the driver can)."""
    sql, binds, _ = stmt._for(conn.dialect)
    params = [stmt._bind(binds, r) for r in rows]
    if params:
        with _cursor(conn, sql, params) as cur:
            cur.executemany(sql, params)


def fetchall(conn: Connection, stmt: Sql, values: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of a query as tuples, in the order of ``results``, each value converted by its type."""
    sql, binds, results = stmt._for(conn.dialect)
    params = stmt._bind(binds, values or {})
    with _cursor(conn, sql, params) as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    if not any(results):
        return [tuple(r) for r in rows]
    return [tuple(v if p is None or v is None else p(v) for v, p in zip(r, results, strict=False)) for r in rows]


@contextmanager
def _cursor(conn: Connection, sql: str, params: Any) -> Iterator[Any]:
    """A driver cursor whose errors come out as SQLAlchemy's (``IntegrityError``, ``OperationalError``, …)."""
    dbapi = conn.dialect.loaded_dbapi
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cur
    except dbapi.Error as e:
        raise DBAPIError.instance(sql, params, e, dbapi.Error, hide_parameters=True, dialect=conn.dialect) from e
    finally:
        cur.close()


def in_list(name: str, n: int) -> str:
    """``:name0, :name1, …`` for an ``IN (…)`` of ``n`` values (pass them as ``name0``, ``name1``, …)."""
    return ", ".join(f":{name}{i}" for i in range(n))
