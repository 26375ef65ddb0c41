"""Request and token windows shared by every process using one endpoint, kept in PostgreSQL.

Queue workers run one process each, on any number of machines; an endpoint's rpm and tpm
must hold across all of them. :class:`DatabaseWindow` keeps one row per admitted request in
``rate_window`` and admits a request in one short transaction:

1. take ``pg_advisory_xact_lock`` on the endpoint key, so admissions to one endpoint are serial
   across every process while other endpoints are not held up;
2. count the rows (and sum their tokens) of the last ``window_s`` seconds by the database
   server's clock (``clock_timestamp()``), so machines whose clocks disagree count one window;
3. insert a row and commit if the request fits, else commit nothing and sleep until the oldest
   row in the way leaves the window (plus a little jitter), then try again.

A row is stamped again when its request actually leaves, and its token estimate is replaced by
the actual count once the endpoint reports it; both updates go through a writer thread so the
caller never waits on them. Rows that have left the window are pruned now and then.

Database calls are synchronous (SQLAlchemy, like the rest of the store) and run in threads
owned by the window, so one window serves any number of event loops in turn.

The in-process :class:`debate.llm.ratelimit.RateLimiter` keeps concurrency and FIFO order; it asks
this window for admission once its own limits pass.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Engine, bindparam, create_engine, delete, func, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from debate.core.errors import ConfigError, StorageError
from debate.llm.ratelimit import check_limits, window_delay
from debate.store.tables import RateWindowEntry

# window_delay is the in-process limiter's: both windows must agree on when a request fits.
__all__ = ["DatabaseWindow", "window_delay"]

_logger = logging.getLogger(__name__)
_table = RateWindowEntry.__table__  # type: ignore[attr-defined]
# Keeps our advisory lock keys apart from those of any other user of advisory locks.
_LOCK_PREFIX = "debate.rate_window:"
# Processes that find the window full at the same moment wake a few ms apart, not in a herd.
_JITTER_S = 0.01
# The rows matter for one window only: a server crash that loses the last few is harmless, so
# commits need not wait for the disk (they stay atomic and visible to others at once).
_NO_FSYNC = text("SET LOCAL synchronous_commit TO OFF")
# Requests and tokens in the window ending now, by the server clock (now is the window's end).
_COUNT = text(
    "WITH now AS (SELECT clock_timestamp() AS t) "
    "SELECT extract(epoch FROM now.t)::float8, count(r.id), coalesce(sum(r.tokens), 0) "
    "FROM now LEFT JOIN rate_window r ON r.endpoint = :k AND r.t > now.t - make_interval(secs => :w) "
    "GROUP BY now.t"
)
# Rows of endpoints nobody uses any more are deleted after this long.
_STALE_S = 86_400.0


@dataclass(frozen=True)
class _Write:
    """A pending change to one row: stamp its start, correct its tokens, or delete it."""

    entry_id: int
    kind: str  # "stamp" | "tokens" | "delete"
    tokens: int = 0


class DatabaseWindow:
    """The shared rpm / tpm window of endpoint ``key`` in the PostgreSQL database at ``url``.

    Implements :class:`debate.llm.ratelimit.SharedWindow`. ``poll_s`` caps one sleep: another
    process may correct its token estimate downwards and free room sooner than the oldest row
    leaves. Call :meth:`close` when done (pending writes are applied first).
    """

    def __init__(
        self,
        url: str,
        key: str,
        *,
        rpm: int | None,
        tpm: int | None,
        window_s: float = 60.0,
        poll_s: float = 1.0,
        prune_every: int = 100,
    ) -> None:
        if not url.startswith("postgresql"):
            raise ConfigError("a shared rate window needs PostgreSQL (DEBATE_DATABASE_URL=postgresql+psycopg://...)")
        check_limits(window_s, rpm=rpm, tpm=tpm)
        if poll_s <= 0:
            raise ConfigError(f"rate limit poll must be positive, got {poll_s}")
        self.url = url
        self.key = key
        self.rpm = rpm
        self.tpm = tpm
        self.window_s = window_s
        self.poll_s = poll_s
        self.prune_every = prune_every
        self._admitted = 0
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        # One admission at a time per process: the RateLimiter only lets its queue head ask.
        self._admitter: ThreadPoolExecutor | None = None
        self._writes: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None

    # -- SharedWindow ---------------------------------------------------------------------------

    async def admit(self, tokens: int) -> tuple[int, bool]:
        """Wait until a request with this token estimate fits the shared window; insert its row.

        Returns the row id and whether the request had to wait.
        """
        waited = False
        while True:
            done = self._start().submit(self._try_admit, max(0, int(tokens)))
            try:
                entry_id, delay = await asyncio.shield(asyncio.wrap_future(done))
            except asyncio.CancelledError:
                # The transaction may still commit a row nobody will use: delete it once it has.
                done.add_done_callback(self._forget)
                raise
            if entry_id is not None:
                return entry_id, waited
            waited = True
            await asyncio.sleep(min(delay, self.poll_s) + random.uniform(0, _JITTER_S))

    def stamp(self, entry_id: int) -> None:
        """Restamp the row with the database clock now: its request is leaving."""
        self._put(_Write(entry_id, "stamp"))

    def correct(self, entry_id: int, tokens: int) -> None:
        """Replace the row's token estimate by the actual count."""
        self._put(_Write(entry_id, "tokens", max(0, int(tokens))))

    def close(self) -> None:
        """Apply pending writes, stop the threads and close the connections."""
        with self._lock:
            writer, admitter, engine = self._writer, self._admitter, self._engine
            self._writer = self._admitter = self._engine = None
        if writer is not None:
            self._writes.put(None)
            writer.join(timeout=10)
        if admitter is not None:
            admitter.shutdown(wait=True)
        if engine is not None:
            engine.dispose()

    # -- threads ----------------------------------------------------------------------------------

    def _start(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._engine is None:
                # A small pool of its own: admissions must not queue behind the store's work.
                self._engine = create_engine(self.url, pool_size=2, max_overflow=0, pool_pre_ping=True)
            if self._admitter is None:
                self._admitter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rate-window")
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="rate-window-writer", daemon=True)
                self._writer.start()
            return self._admitter

    def _put(self, write: _Write) -> None:
        if self._writer is not None:
            self._writes.put(write)

    def _forget(self, done: Future[tuple[int | None, float]]) -> None:
        if not done.cancelled() and done.exception() is None:
            entry_id, _ = done.result()
            if entry_id is not None:
                self._put(_Write(entry_id, "delete"))

    def _try_admit(self, tokens: int) -> tuple[int | None, float]:
        """One admission transaction: (row id, 0) if admitted, else (None, seconds to wait)."""
        assert self._engine is not None
        try:
            with self._engine.begin() as conn:
                conn.execute(_NO_FSYNC)
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": _LOCK_PREFIX + self.key}
                )
                # A statement of its own after the lock: it must see every row committed before.
                now, count, used = conn.execute(_COUNT, {"k": self.key, "w": self.window_s}).one()
                horizon = func.to_timestamp(now - self.window_s)
                in_window = (_table.c.endpoint == self.key) & (_table.c.t > horizon)
                if not self._fits(int(count), int(used), tokens):
                    # Full: only now fetch the rows, to learn when enough of them leave.
                    rows = conn.execute(
                        select(func.extract("epoch", _table.c.t), _table.c.tokens).where(in_window).order_by(_table.c.t)
                    ).all()
                    entries = [(float(t), int(n)) for t, n in rows]
                    delay = window_delay(
                        entries, now, window_s=self.window_s, rpm=self.rpm, tpm=self.tpm, tokens=tokens
                    )
                    if delay > 0:
                        return None, delay
                entry_id = conn.execute(
                    insert(_table)
                    .values(endpoint=self.key, t=func.clock_timestamp(), tokens=tokens)
                    .returning(_table.c.id)
                ).scalar_one()
                self._admitted += 1
                if self.prune_every and self._admitted % self.prune_every == 0:
                    conn.execute(
                        delete(_table).where(
                            ((_table.c.endpoint == self.key) & (_table.c.t <= horizon))
                            | (_table.c.t < func.to_timestamp(now - _STALE_S))
                        )
                    )
                return int(entry_id), 0.0
        except SQLAlchemyError as e:
            first = str(e.orig if getattr(e, "orig", None) else e).strip().splitlines()[0]
            raise StorageError(f"shared rate limit of {self.key}: database failed: {first}") from None

    def _fits(self, count: int, used: int, tokens: int) -> bool:
        """Whether one more request fits a window holding ``count`` requests and ``used`` tokens."""
        if self.rpm is not None and count >= self.rpm:
            return False
        return self.tpm is None or used == 0 or used + tokens <= self.tpm

    def _write_loop(self) -> None:
        while True:
            batch = [self._writes.get()]
            while not self._writes.empty():
                batch.append(self._writes.get())
            stop = None in batch
            writes = [w for w in batch if w is not None]
            if writes:
                try:
                    self._apply(writes)
                except SQLAlchemyError as e:
                    # The rows are advisory: a lost stamp or correction only makes the window
                    # count a request a little earlier or with its estimate.
                    _logger.warning("shared rate window: %d update(s) lost: %s", len(writes), e)
            if stop:
                return

    def _apply(self, writes: list[_Write]) -> None:
        """Apply a batch of row changes in one transaction (stamps first: they are time-critical)."""
        engine = self._engine
        if engine is None:
            return
        c = _table.c
        stamps = [w.entry_id for w in writes if w.kind == "stamp"]
        tokens = [w for w in writes if w.kind == "tokens"]
        gone = [w.entry_id for w in writes if w.kind == "delete"]
        with engine.begin() as conn:
            conn.execute(_NO_FSYNC)
            if stamps:
                # Only ever later: a stamp never makes a request leave the window sooner.
                conn.execute(
                    update(_table).where(c.id.in_(stamps)).values(t=func.greatest(c.t, func.clock_timestamp()))
                )
            if tokens:
                conn.execute(
                    update(_table).where(c.id == bindparam("entry_id")).values(tokens=bindparam("n")),
                    [{"entry_id": w.entry_id, "n": w.tokens} for w in tokens],
                )
            if gone:
                conn.execute(delete(_table).where(c.id.in_(gone)))
