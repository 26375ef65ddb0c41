"""Engine, sessions and schema migrations for SQLite and PostgreSQL.

SQLite runs in WAL mode with ``synchronous=NORMAL`` (a killed process loses nothing; only an
OS crash can drop the last commits) and a busy timeout; read-then-write transactions use
``BEGIN IMMEDIATE`` so two writers queue instead of failing with "database is locked".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlmodel import Session, create_engine

from debate.core.errors import StorageError
from debate.store.driver import Sql, execute

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_path(url: str) -> Path | None:
    """The file behind a sqlite URL (None for in-memory)."""
    db = make_url(url).database
    return Path(db) if db and db != ":memory:" else None


def _on_sqlite_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # Let us issue BEGIN ourselves (pysqlite's implicit transactions defeat BEGIN IMMEDIATE).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


_BEGIN, _BEGIN_IMMEDIATE = Sql("BEGIN"), Sql("BEGIN IMMEDIATE")


def _on_sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
    # An execution option (not conn.info): set before BEGIN, and never sticks to a pooled connection.
    # On the driver's cursor: a debate begins a dozen transactions, and SQLAlchemy's own
    # execution of a BEGIN costs more than SQLite's.
    execute(conn, _BEGIN_IMMEDIATE if conn.get_execution_options().get("sqlite_immediate") else _BEGIN)


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One engine per URL per process; creates the SQLite folder if needed."""
    try:
        if is_sqlite(url):
            path = sqlite_path(url)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(engine, "connect", _on_sqlite_connect)
            event.listen(engine, "begin", _on_sqlite_begin)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    except (ArgumentError, NoSuchModuleError) as e:
        raise StorageError(f"unusable database URL {url!r}: {e}") from None
    except OSError as e:
        raise StorageError(f"cannot create the database folder for {url}: {e}") from None
    return engine


def _alembic_config(engine: Engine) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig  # alembic loads only when migrating

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config(None))  # type: ignore[arg-type]
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine) -> bool:
    """Bring the schema to head. Returns True when anything was applied."""
    from alembic import command
    from alembic.script import ScriptDirectory

    try:
        current = current_revision(engine)
        head = head_revision()
        if current == head:
            return False
        script = ScriptDirectory.from_config(_alembic_config(engine))
        if current is not None and script.get_revision(current) is None:
            raise StorageError(
                f"database schema {current} is newer than this engine knows (head {head}); upgrade debate"
            )
        command.upgrade(_alembic_config(engine), "head")
        return True
    except OperationalError as e:
        raise StorageError(f"cannot open database {engine.url!r}: {e.orig}") from None


_ready: set[str] = set()


def ensure_schema(url: str) -> Engine:
    """The engine for ``url``, with migrations applied once per process."""
    engine = get_engine(url)
    if url not in _ready:
        migrate(engine)
        _ready.add(url)
    return engine


@contextmanager
def session_scope(engine: Engine, *, immediate: bool = False) -> Iterator[Session]:
    """A transaction: commits on success, rolls back on error.

    ``immediate`` takes SQLite's write lock up front (for read-then-write transactions).
    """
    with Session(engine, expire_on_commit=False) as session:
        if immediate and engine.dialect.name == "sqlite":
            session.connection(execution_options={"sqlite_immediate": True})
        try:
            yield session
            session.commit()
        except OperationalError as e:
            session.rollback()
            raise StorageError(f"database error on {engine.url!r}: {e.orig}") from None
        except SQLAlchemyError:
            session.rollback()
            raise
        except BaseException:
            session.rollback()
            raise


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A Core transaction for hot write paths (no ORM unit of work), taking SQLite's write
    lock at BEGIN like ``session_scope(immediate=True)``."""
    try:
        with engine.connect().execution_options(sqlite_immediate=True) as conn, conn.begin():
            yield conn
    except OperationalError as e:
        raise StorageError(f"database error on {engine.url!r}: {e.orig}") from None


class HeldConnections:
    """A read and a write connection kept open for many short transactions.

    An executor's debates make dozens of tiny transactions each; checking a connection out of
    the pool for every one costs more than the SQL. All use is from one thread (the executor's
    event loop) and every transaction is synchronous, so two connections serve any number of
    concurrent debates. Each transaction still begins and ends: no snapshot is held between.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conns: dict[bool, Connection] = {}

    @contextmanager
    def tx(self, *, write: bool = False) -> Iterator[Connection]:
        conn = self._conns.get(write)
        if conn is None or conn.closed or conn.invalidated:
            conn = self.engine.connect()
            if write:
                conn = conn.execution_options(sqlite_immediate=True)
            self._conns[write] = conn
        try:
            with conn.begin():
                yield conn
        except OperationalError as e:
            self._drop(write)
            raise StorageError(f"database error on {self.engine.url!r}: {e.orig}") from None
        except SQLAlchemyError:
            self._drop(write)
            raise

    def _drop(self, write: bool) -> None:
        conn = self._conns.pop(write, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for write in list(self._conns):
            self._drop(write)


def ping(engine: Engine) -> None:
    """Fail with a :class:`StorageError` when the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as e:
        raise StorageError(f"cannot reach database {engine.url!r}: {e.orig}") from None
