"""Run leases: which process executes a run, whether it still does, and taking a run over.

A run records its ``owner`` (the process: host, pid, start time, machine stamp) and a
``heartbeat_at`` that the owner refreshes every ``[debate] heartbeat_s`` seconds while it holds
the run (:class:`debate.engine.heartbeat.Heartbeat`). A queued or running run is **live** when

* its owner is alive: on this machine (same host name, boot and pid namespace) the process is
  looked up, so a killed owner is dead at once; elsewhere its heartbeat must be younger than
  ``MISSED_BEATS`` periods; or
* a job of the task queue carries it (status todo or doing), whoever created it.

Any other queued or running run is **interrupted**: the process running it was killed or
stopped. That status is derived when read, never stored: the ``status`` column keeps
queued/running, so nothing has to notice a death and write it down, and the answer cannot go
stale (the moment someone takes the run over, it is live again).

Taking a run over is one compare-and-set UPDATE on (owner, heartbeat_at) as they were read:
when two processes both find a run interrupted, the owner or heartbeat the first one writes
makes the second one's UPDATE match no row.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, false, func, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from debate.core.config import DebateSettings
from debate.core.errors import UserInputError
from debate.store import tables as t
from debate.store.tables import as_utc, utcnow

__all__ = [
    "DEFAULT_HEARTBEAT_S",
    "INTERRUPTED",
    "PENDING",
    "Lease",
    "OwnerState",
    "RunBusy",
    "db_now",
    "hand_over",
    "interrupted_ids",
    "interrupted_runs",
    "live_job_runs",
    "me",
    "owner_live",
    "owner_state",
    "release",
    "status_condition",
    "take",
    "without_interrupted",
]

PENDING = ("queued", "running")
INTERRUPTED = "interrupted"
# Every status a run is listed under (stored, or interrupted as derived here).
RUN_STATUSES = ("queued", "running", INTERRUPTED, "done", "failed", "cancelled")
MISSED_BEATS = 3  # heartbeats an owner elsewhere may miss before its runs count as interrupted
# Readers without settings (the wiki, the API's checks) assume the default period.
DEFAULT_HEARTBEAT_S: float = DebateSettings.model_fields["heartbeat_s"].default
# The task queue's table (debate.jobs.queue): its debate jobs carry the run id in their args.
_JOBS = "procrastinate_jobs"
_IN_CHUNK = 5000
_R = t.Run.__table__  # type: ignore[attr-defined]
Row = TypeVar("Row")


class RunBusy(UserInputError):
    """The run is held by a live process or job (or was taken over a moment ago)."""


class OwnerState(Enum):
    ALIVE = "alive"
    DEAD = "dead"
    UNKNOWN = "unknown"  # on another machine (or not checkable): its heartbeat decides


# ---------------------------------------------------------------- who we are, who is alive


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (Linux), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


@lru_cache(maxsize=1)
def _machine() -> str:
    """Boot id and pid namespace: containers sharing a host name, or clones sharing one, differ."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:12]
        return f"{boot}.{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""


@lru_cache(maxsize=4)
def _identity(pid: int) -> str:
    stat = _proc_stat(pid)
    # The start time tells a pid reused by another process from the owner.
    return f"{socket.gethostname()}:{pid}:{stat[19] if stat else ''}:{_machine()}"


def me() -> str:
    """This process as a lease owner: ``host:pid:start time:machine stamp``."""
    return _identity(os.getpid())


def _process_alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = _proc_stat(pid)
    if stat is None:
        return True
    # A killed child its parent has not reaped yet is a zombie: dead for our purposes.
    return stat[0] != "Z" and (not started or stat[19] == started)


def owner_state(owner: str | None) -> OwnerState:
    """ALIVE or DEAD for a process this machine can look up; UNKNOWN for any other."""
    if not owner:
        return OwnerState.DEAD
    if owner == me():
        return OwnerState.ALIVE
    host, pid_s, started, machine = (owner.split(":") + ["", "", ""])[:4]
    if host != socket.gethostname() or not pid_s.isdigit():
        return OwnerState.UNKNOWN
    if machine and machine != _machine():
        return OwnerState.UNKNOWN  # another container or clone with our host name
    if _process_alive(int(pid_s), started):
        return OwnerState.ALIVE
    # Without the machine stamp we cannot be sure we looked in the owner's process table.
    return OwnerState.DEAD if machine else OwnerState.UNKNOWN


def owner_live(owner: str | None, heartbeat_at: datetime | None, now: datetime, heartbeat_s: float) -> bool:
    """Whether ``owner`` still holds its lease (see the module docstring)."""
    state = owner_state(owner)
    if state is not OwnerState.UNKNOWN:
        return state is OwnerState.ALIVE
    beat = as_utc(heartbeat_at)
    return beat is not None and now - beat < timedelta(seconds=MISSED_BEATS * heartbeat_s)


def db_now(conn: Connection) -> datetime:
    """Now by the database server's clock on PostgreSQL (machines agree on it), else locally."""
    if conn.dialect.name == "postgresql":
        return conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    return utcnow()


def now_value(conn: Connection) -> Any:
    """What to write as a heartbeat: the database's clock on PostgreSQL, as :func:`db_now` reads."""
    return func.clock_timestamp() if conn.dialect.name == "postgresql" else utcnow()


# ---------------------------------------------------------------- finding interrupted runs


@dataclass(frozen=True)
class Lease:
    """A queued or running run and who holds it."""

    run_id: str
    hypothesis_id: str
    status: str
    backend: str
    batch_id: str | None
    owner: str | None
    heartbeat_at: datetime | None


def _conn(db: Session | Connection) -> Connection:
    return db.connection() if isinstance(db, Session) else db


def live_job_runs(conn: Connection, run_ids: Sequence[str]) -> set[str]:
    """Those of ``run_ids`` that a todo or doing job of the task queue carries (PostgreSQL only)."""
    if conn.dialect.name != "postgresql" or not run_ids:
        return set()
    if conn.execute(text(f"SELECT to_regclass('{_JOBS}')")).scalar() is None:
        return set()  # the queue was never used here
    found: set[str] = set()
    for i in range(0, len(run_ids), _IN_CHUNK):
        found.update(
            conn.execute(
                text(
                    f"SELECT args->>'run_id' FROM {_JOBS} "
                    "WHERE status IN ('todo', 'doing') AND args->>'run_id' = ANY(:ids)"
                ),
                {"ids": list(run_ids[i : i + _IN_CHUNK])},
            ).scalars()
        )
    return found


def interrupted_runs(
    db: Session | Connection,
    *,
    heartbeat_s: float | None = None,
    run_ids: Sequence[str] | None = None,
    hypothesis_ids: Sequence[str] | None = None,
    backend: str | None = None,
    unbatched: bool = False,
) -> list[Lease]:
    """Queued or running runs that nothing executes or will execute, oldest first.

    Narrowed to ``run_ids``, ``hypothesis_ids``, a ``backend``, or runs of no batch
    (``unbatched``: a batch resumes its own runs).
    """
    conn = _conn(db)
    period = heartbeat_s or DEFAULT_HEARTBEAT_S
    now = db_now(conn)
    cutoff = now - timedelta(seconds=MISSED_BEATS * period)
    q = select(_R.c.id, _R.c.hypothesis_id, _R.c.status, _R.c.backend, _R.c.batch_id, _R.c.owner, _R.c.heartbeat_at)
    # An owner on another host with a fresh heartbeat is live: only the rest is looked at.
    q = q.where(
        _R.c.status.in_(PENDING),
        (_R.c.owner.is_(None))
        | (_R.c.heartbeat_at.is_(None))
        | (_R.c.heartbeat_at < cutoff)
        | (_R.c.owner.like(f"{socket.gethostname()}:%")),
    )
    if backend is not None:
        q = q.where(_R.c.backend == backend)
    if unbatched:
        q = q.where(_R.c.batch_id.is_(None))
    q = q.order_by(_R.c.created_at, _R.c.id)
    if run_ids is not None and hypothesis_ids is not None:
        raise ValueError("narrow by run ids or by hypothesis ids, not both")
    column, ids = (_R.c.id, run_ids) if run_ids is not None else (_R.c.hypothesis_id, hypothesis_ids)
    if ids is None:
        rows = list(conn.execute(q))
    else:
        ids, rows = list(ids), []
        for i in range(0, len(ids), _IN_CHUNK):
            rows += conn.execute(q.where(column.in_(ids[i : i + _IN_CHUNK]))).all()
    stuck = [Lease(*r) for r in rows if not owner_live(r.owner, r.heartbeat_at, now, period)]
    carried = live_job_runs(conn, [x.run_id for x in stuck])
    return [x for x in stuck if x.run_id not in carried]


def interrupted_ids(db: Session | Connection, run_ids: Iterable[str], *, heartbeat_s: float | None = None) -> set[str]:
    """Which of ``run_ids`` are interrupted (none looked up when there are none)."""
    ids = list(run_ids)
    if not ids:
        return set()
    return {x.run_id for x in interrupted_runs(db, run_ids=ids, heartbeat_s=heartbeat_s)}


def without_interrupted(
    db: Session | Connection, rows: Iterable[Row], *, heartbeat_s: float | None = None
) -> list[Row]:
    """``rows`` (each with ``.id`` and ``.status`` of a run) less the interrupted runs.

    For "is a debate of it in progress?": an interrupted run is not. Rows of no queued or
    running run cost no query.
    """
    rows = list(rows)
    pending = [r.id for r in rows if r.status in PENDING]  # type: ignore[attr-defined]
    stuck = interrupted_ids(db, pending, heartbeat_s=heartbeat_s)
    return [r for r in rows if r.id not in stuck] if stuck else rows  # type: ignore[attr-defined]


def status_condition(db: Session | Connection, status: str, *, heartbeat_s: float | None = None) -> ColumnElement[bool]:
    """A WHERE clause on runs for a status as shown: ``interrupted``, or a stored status
    (``queued`` and ``running`` then leave the interrupted ones out). An unknown status is
    refused rather than matching nothing."""
    if status not in RUN_STATUSES:
        raise UserInputError(f"unknown run status {status!r} (expected one of: {', '.join(RUN_STATUSES)})")
    if status not in (INTERRUPTED, *PENDING):
        return _R.c.status == status
    stuck = [x.run_id for x in interrupted_runs(db, heartbeat_s=heartbeat_s)]
    if status == INTERRUPTED:
        return _R.c.id.in_(stuck) if stuck else false()
    return and_(_R.c.status == status, _R.c.id.not_in(stuck)) if stuck else _R.c.status == status


# ---------------------------------------------------------------- taking a run


def take(conn: Connection, run_id: str, old_owner: str | None, old_heartbeat: datetime | None, **values: Any) -> bool:
    """Make this process the run's owner if (owner, heartbeat_at) are still as read; True if so.

    ``values`` are written by the same UPDATE (e.g. the status). One statement: two takers
    that read the same lease cannot both match it.
    """
    done = conn.execute(
        update(_R)
        .where(
            _R.c.id == run_id,
            _R.c.owner.is_not_distinct_from(old_owner),
            _R.c.heartbeat_at.is_not_distinct_from(old_heartbeat),
        )
        .values(owner=me(), heartbeat_at=now_value(conn), **values)
    )
    return done.rowcount == 1


def release(conn: Connection, run_id: str) -> None:
    """Give up a run this process holds but stopped executing: it is interrupted at once."""
    conn.execute(update(_R).where(_R.c.id == run_id, _R.c.owner == me(), _R.c.status.in_(PENDING)).values(owner=None))


def hand_over(conn: Connection, run_ids: Sequence[str]) -> None:
    """Runs this process created and put on the task queue: their job, not us, now answers for them."""
    if run_ids:
        conn.execute(
            update(_R)
            .where(_R.c.id.in_(list(run_ids)), _R.c.owner == me(), _R.c.started_at.is_(None))
            .values(owner=None)
        )
