"""Engine, sessions and schema migrations for SQLite and PostgreSQL.

SQLite runs in WAL mode with ``synchronous=NORMAL`` (a killed process loses nothing; only an
OS crash can drop the last commits) and a busy timeout; read-then-write transactions use
``BEGIN IMMEDIATE`` so two writers queue instead of failing with "database is locked".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlmodel import Session, create_engine

from debate.core.errors import ConfigError, StorageError
from debate.core.redact import redact
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


# The default local data folder: created on first use. Any other folder must exist already, so a
# mistyped path is an error rather than a database quietly made somewhere unexpected.
DATA_DIRS = (Path("runs"), Path(__file__).resolve().parents[2] / "runs")


def _sqlite_folder(path: Path) -> None:
    folder = path.parent
    if folder.is_dir():
        return
    if any(folder.resolve() == d.resolve() for d in DATA_DIRS):
        folder.mkdir(parents=True, exist_ok=True)
        return
    raise ConfigError(f"the database folder {str(folder)!r} does not exist (create it, or fix DEBATE_DATABASE_URL)")


@dataclass(frozen=True)
class PoolOptions:
    """A connection pool's bounds: ``size`` kept open, ``overflow`` more on demand, and how long
    a checkout waits for a free one before failing."""

    size: int
    overflow: int = 0
    timeout_s: float = 30.0


def _pool_args(pool: PoolOptions | None) -> dict[str, Any]:
    if pool is None:
        return {}
    return {"pool_size": pool.size, "max_overflow": pool.overflow, "pool_timeout": pool.timeout_s}


@lru_cache(maxsize=8)
def get_engine(url: str, pool: PoolOptions | None = None) -> Engine:
    """One engine per URL (and pool) per process; creates the default SQLite folder if needed.

    ``pool`` bounds the connections (the server's, sized to its request limiter); without it,
    SQLAlchemy's defaults on SQLite and 10 + 20 on PostgreSQL.
    """
    try:
        if is_sqlite(url):
            path = sqlite_path(url)
            if path is not None:
                _sqlite_folder(path)
            # In-memory SQLite has a pool of its own kind, without bounds to set.
            bounds = _pool_args(pool) if path is not None else {}
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **bounds)
            event.listen(engine, "connect", _on_sqlite_connect)
            event.listen(engine, "begin", _on_sqlite_begin)
        else:
            pg_pool = _pool_args(pool) or {"pool_size": 10, "max_overflow": 20}
            engine = create_engine(url, pool_pre_ping=True, **pg_pool)
    except (ArgumentError, NoSuchModuleError) as e:
        raise ConfigError(f"unusable database URL {redact(url)!r}: {e}") from None
    except ImportError as e:  # the dialect's driver (psycopg) is an extra
        raise ConfigError(
            f"{redact(url)!r} needs the PostgreSQL driver ({e.name or e}): pip install 'debate[postgres]'"
        ) from None
    except OSError as e:
        raise StorageError(f"cannot create the database folder for {redact(url)}: {e}") from None
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
    from alembic.util.exc import CommandError

    where = redact(engine.url.render_as_string(hide_password=False))
    try:
        current = current_revision(engine)
        head = head_revision()
        if current == head:
            return False
        script = ScriptDirectory.from_config(_alembic_config(engine))
        try:
            known = current is None or script.get_revision(current) is not None
        except CommandError:  # alembic raises for a revision it has never heard of
            known = False
        if not known:
            raise StorageError(
                f"the schema of {where} ({current}) is newer than this debate knows (head {head}); upgrade debate"
            )
        command.upgrade(_alembic_config(engine), "head")
        return True
    except DatabaseError as e:  # also "file is not a database" and "database is locked"
        raise StorageError(f"cannot open database {where}: {_one_line(e.orig)}") from None


_ready: set[str] = set()


def ensure_schema(url: str, pool: PoolOptions | None = None) -> Engine:
    """The engine for ``url``, with migrations applied once per process."""
    engine = get_engine(url, pool)
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
        try:
            if immediate and engine.dialect.name == "sqlite":
                session.connection(execution_options={"sqlite_immediate": True})
            yield session
            session.commit()
        except OperationalError as e:
            session.rollback()
            raise StorageError(f"database error on {redact(str(engine.url))}: {_one_line(e.orig)}") from None
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
        raise StorageError(f"database error on {redact(str(engine.url))}: {_one_line(e.orig)}") from None


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
            raise StorageError(f"database error on {redact(str(self.engine.url))}: {_one_line(e.orig)}") from None
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
    except DatabaseError as e:
        raise StorageError(f"cannot reach database {redact(str(engine.url))}: {_one_line(e.orig)}") from None


def _one_line(error: object) -> str:
    """A driver's message on one line (psycopg's span several)."""
    text = " ".join(str(error).split())
    if text == "database is locked":  # SQLite, after the busy timeout
        return "database is locked: another process held its write lock for 30 s; try again when it is done"
    return text
