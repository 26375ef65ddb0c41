"""Which hypotheses a rescoring batch debates, and why.

Criteria (given together they are OR-ed; ``stale`` applies when asked for or when no other
criterion is, with ``[rescore] stale_after`` as its default):

* **stale** — its latest finished debate is older than ``stale_after``; a hypothesis with only
  an imported prior, or never scored at all, counts as stale;
* **changed** — a KB page it was argued from (its latest finished run's evidence, and where that
  run is flagged, the evidence of the earlier score shown instead) or a page
  listing it in a Related Hypotheses section changed after that run finished (``Page.changed_at``
  later than the run's ``finished_at``, or the page is gone, or its content differs from the
  evidence snapshot);
* **prompt changed** — the prompt hashes recorded on its latest finished run differ from the
  prompts the batch's backend would use now.

Whatever the criteria, a hypothesis with an **interrupted** run of the batch's backend (its
process was killed; see :mod:`debate.engine.leases`) that belongs to no batch is selected,
first, and its batch item adopts that run: the batch resumes it from its checkpoint instead of
starting over. (A batch's own interrupted runs resume with that batch.)

``--ids FILE`` narrows the candidates to the ids in the file; ``--limit N`` keeps the first N
by urgency (never scored / prior only first, then oldest score first, then id).

The selection itself (:func:`choose`) is pure: it works on :class:`HypothesisFacts` that
:func:`load_facts` reads from the database in a few set-based queries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, func, true
from sqlalchemy import select as sql_select
from sqlmodel import Session

from debate.core.config import BackendName
from debate.core.durations import format_duration, parse_duration
from debate.core.errors import NotFoundError, UserInputError
from debate.engine.leases import interrupted_runs
from debate.store import tables as t

__all__ = [
    "HypothesisFacts",
    "LastRun",
    "PageFact",
    "Reasons",
    "SelectionOptions",
    "Selected",
    "choose",
    "RunChange",
    "diff_runs",
    "explain_history",
    "load_facts",
    "normalize_options",
    "read_ids_file",
    "reasons_for",
    "select_hypotheses",
]

_IN_CHUNK = 900


# ---------------------------------------------------------------- options


class SelectionOptions(BaseModel):
    """The normalized options that define a batch: equal options mean the same batch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: BackendName
    stale_after_s: int | None = Field(description="Staleness limit in seconds; None: not a criterion.")
    changed: bool = False
    prompt_changed: bool = False
    ids_sha256: str | None = Field(None, description="Hash of the sorted, unique ids of --ids FILE.")
    limit: int | None = Field(None, ge=1)

    def key(self) -> str:
        """A stable hash of these options (how a rerun finds its unfinished batch)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:24]

    def describe(self) -> str:
        """One line for people, e.g. ``stale > 30d or changed pages (openai, limit 100)``."""
        crit = []
        if self.stale_after_s is not None:
            crit.append(f"stale > {format_duration(self.stale_after_s)}")
        if self.changed:
            crit.append("changed pages")
        if self.prompt_changed:
            crit.append("changed prompts")
        extra = [self.backend]
        if self.ids_sha256:
            extra.append(f"ids file {self.ids_sha256[:8]}")
        if self.limit:
            extra.append(f"limit {self.limit}")
        return f"{' or '.join(crit)} ({', '.join(extra)})"


def ids_hash(ids: Iterable[str]) -> str:
    """Content hash of an id list: order and repeats do not matter."""
    return hashlib.sha256("\n".join(sorted(set(ids))).encode()).hexdigest()


def normalize_options(
    *,
    backend: BackendName,
    stale_after: str | None = None,
    changed: bool = False,
    prompt_changed: bool = False,
    ids: Sequence[str] | None = None,
    limit: int | None = None,
    default_stale_after: str = "30d",
) -> SelectionOptions:
    """Options as given on the command line, normalized (the default staleness made explicit).

    The defaults are the command's: no criterion named, so ``stale`` applies with
    ``default_stale_after`` (the ``[rescore] stale_after`` setting, 30 days by default)."""
    if stale_after is not None:
        stale_s: int | None = int(parse_duration(stale_after, what="--stale-after").total_seconds())
    elif not (changed or prompt_changed):
        stale_s = int(parse_duration(default_stale_after, what="rescore.stale_after").total_seconds())
    else:
        stale_s = None
    if limit is not None and limit < 1:
        raise UserInputError("--limit must be at least 1")
    return SelectionOptions(
        backend=backend,
        stale_after_s=stale_s,
        changed=changed,
        prompt_changed=prompt_changed,
        ids_sha256=ids_hash(ids) if ids is not None else None,
        limit=limit,
    )


def read_ids_file(path: Path) -> list[str]:
    """Hypothesis ids from a text file: whitespace or comma separated, ``#`` starts a comment."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError("no such file", where=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserInputError(f"cannot read ids: {e}", where=str(path)) from None
    ids: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        for token in line.split("#", 1)[0].replace(",", " ").split():
            if token not in seen:
                seen.add(token)
                ids.append(token)
    if not ids:
        raise UserInputError("no hypothesis ids in file", where=str(path))
    return ids


# ---------------------------------------------------------------- facts and the pure selection


@dataclass(frozen=True)
class LastRun:
    """A hypothesis's latest finished (done) run."""

    run_id: str
    finished_at: datetime
    backend: str
    prompt_hashes: dict[str, str]


@dataclass(frozen=True)
class PageFact:
    """A page a hypothesis depends on: cited by its last run, or listing it as related."""

    slug: str
    via: Literal["cited", "listed"]
    changed_at: datetime | None  # None: the page is no longer in the KB
    snapshot_differs: bool = False  # cited pages: the evidence snapshot's hash is not the page's now


@dataclass(frozen=True)
class HypothesisFacts:
    """What selection needs to know about one hypothesis."""

    id: str
    has_prior: bool
    last_run: LastRun | None
    pages: tuple[PageFact, ...] = field(default_factory=tuple)
    interrupted: str | None = None  # an interrupted run of it, of no batch, to adopt and resume


class Reasons(BaseModel):
    """Why a hypothesis was selected (stored on its batch item, shown in score history)."""

    model_config = ConfigDict(extra="forbid")

    stale: str | None = Field(None, description="'never scored', 'prior only' or the age of its score.")
    pages: list[str] = Field(default_factory=list, description="Changed pages it cites or is listed on.")
    prompts: list[str] = Field(default_factory=list, description="Prompts whose hash differs from its last run.")
    interrupted: str | None = Field(None, description="An interrupted run of it, resumed by the batch.")

    def summary(self) -> str:
        """e.g. ``stale 42d; pages: entities-sod1; prompts: judge``."""
        parts = [f"interrupted run {self.interrupted}"] if self.interrupted else []
        if self.stale:
            parts.append(f"stale {self.stale}" if self.stale[0].isdigit() else self.stale)
        if self.pages:
            parts.append("pages: " + ", ".join(self.pages))
        if self.prompts:
            parts.append("prompts: " + ", ".join(self.prompts))
        return "; ".join(parts)


class Selected(BaseModel):
    """A chosen hypothesis with its reasons."""

    model_config = ConfigDict(extra="forbid")

    id: str
    reasons: Reasons


def reasons_for(
    facts: HypothesisFacts, opts: SelectionOptions, now: datetime, current_prompts: dict[str, str]
) -> Reasons | None:
    """The reasons ``facts`` meets any criterion of ``opts``, or None when it meets none."""
    r = Reasons(interrupted=facts.interrupted)
    last = facts.last_run
    if opts.stale_after_s is not None:
        if last is None:
            r.stale = "prior only" if facts.has_prior else "never scored"
        else:
            age = now - last.finished_at
            if age >= timedelta(seconds=opts.stale_after_s):
                r.stale = format_duration(age)
    if opts.changed and last is not None:
        changed = {
            p.slug for p in facts.pages if p.changed_at is None or p.changed_at > last.finished_at or p.snapshot_differs
        }
        r.pages = sorted(changed)
    if opts.prompt_changed and last is not None:
        names = set(current_prompts) | set(last.prompt_hashes)
        r.prompts = sorted(n for n in names if current_prompts.get(n) != last.prompt_hashes.get(n))
    return r if (r.interrupted or r.stale or r.pages or r.prompts) else None


def _urgency(f: HypothesisFacts) -> tuple[int, str, str]:
    if f.interrupted:  # half debated already
        return (-1, "", f.id)
    if f.last_run is None:
        return (0, "", f.id)
    return (1, f.last_run.finished_at.isoformat(), f.id)


def choose(
    facts: Iterable[HypothesisFacts], opts: SelectionOptions, now: datetime, current_prompts: dict[str, str]
) -> list[Selected]:
    """The hypotheses ``opts`` selects, most urgent first, at most ``opts.limit``."""
    chosen: list[tuple[tuple[int, str, str], Selected]] = []
    for f in facts:
        reasons = reasons_for(f, opts, now, current_prompts)
        if reasons is not None:
            chosen.append((_urgency(f), Selected(id=f.id, reasons=reasons)))
    chosen.sort(key=lambda x: x[0])
    out = [s for _, s in chosen]
    return out[: opts.limit] if opts.limit else out


# ---------------------------------------------------------------- reading the facts


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(ids), _IN_CHUNK):
        yield ids[i : i + _IN_CHUNK]


def _latest(where: Any) -> Any:
    """Runs ranked per hypothesis, newest first (``rn`` 1 the latest), among those ``where`` keeps."""
    R = t.Run
    return (
        sql_select(
            R.hypothesis_id,
            R.id,
            R.finished_at,
            R.backend,
            R.prompt_hashes,
            func.row_number()
            .over(partition_by=R.hypothesis_id, order_by=(R.finished_at.desc(), R.id.desc()))
            .label("rn"),
        )
        .where(R.status == "done", R.finished_at.is_not(None), where)
        .subquery()
    )


def _page_facts(session: Session, ranked: Any, hyps: Mapping[str, bool]) -> dict[str, list[PageFact]]:
    """The pages each hypothesis depends on: cited by its latest done run (``ranked``, rn 1) or by
    its latest unflagged scored run (the score shown while a newer one is flagged), or listing it
    in a Related Hypotheses section."""
    page_facts: dict[str, list[PageFact]] = {}
    E, P, RE = t.Evidence, t.Page, t.RelatedEntry
    shown = _latest(and_(t.Run.flagged.is_(False), t.Run.score.is_not(None)))
    rows = []
    for runs in (ranked, shown):
        rows += session.execute(
            sql_select(runs.c.hypothesis_id, E.page_slug, P.changed_at, P.content_hash, E.page_hash)
            .join(E, E.run_id == runs.c.id)
            .outerjoin(P, P.slug == E.page_slug)
            .where(runs.c.rn == 1)
            .distinct()
        ).all()
    found: dict[tuple[str, str], PageFact] = {}
    for hid, slug, changed_at, now_hash, snap_hash in rows:
        if hid not in hyps:
            continue
        differs = changed_at is not None and now_hash != snap_hash
        prev = found.get((hid, slug))
        found[(hid, slug)] = PageFact(
            slug,
            "cited",
            t.as_utc(changed_at),
            snapshot_differs=differs or (prev is not None and prev.snapshot_differs),
        )
    listed = sql_select(RE.ref_id, P.slug, P.changed_at).join(P, P.id == RE.page_id).distinct()
    for hid, slug, changed_at in session.execute(listed):
        if hid in hyps and (hid, slug) not in found:
            found[(hid, slug)] = PageFact(slug, "listed", t.as_utc(changed_at))
    for (hid, _slug), fact in sorted(found.items()):
        page_facts.setdefault(hid, []).append(fact)
    return page_facts


def load_facts(
    session: Session,
    *,
    ids: Sequence[str] | None = None,
    pages: bool = False,
    interrupted: Mapping[str, str] | None = None,
) -> list[HypothesisFacts]:
    """Facts for every hypothesis (or only ``ids``: an unknown id is an error naming it).

    ``pages`` also reads the pages each one depends on (needed only for the changed criterion);
    ``interrupted`` maps hypotheses to an interrupted run of theirs.
    """
    H = t.Hypothesis
    hyps: dict[str, bool] = {}
    if ids is None:
        hyps = {hid: prior is not None for hid, prior in session.execute(sql_select(H.id, H.prior_score))}
    else:
        for part in _chunks(list(ids)):
            hyps.update(
                {
                    hid: prior is not None
                    for hid, prior in session.execute(sql_select(H.id, H.prior_score).where(H.id.in_(part)))
                }
            )
        missing = [i for i in ids if i not in hyps]
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise NotFoundError(f"unknown hypothesis id(s) {', '.join(map(repr, missing[:3]))}{more}")

    ranked = _latest(true())
    last_runs: dict[str, LastRun] = {}
    for row in session.execute(sql_select(ranked).where(ranked.c.rn == 1)):
        if row.hypothesis_id in hyps:
            last_runs[row.hypothesis_id] = LastRun(
                run_id=row.id,
                finished_at=t.as_utc(row.finished_at),  # type: ignore[arg-type]
                backend=row.backend,
                prompt_hashes=dict(row.prompt_hashes or {}),
            )

    page_facts = _page_facts(session, ranked, hyps) if pages else {}
    interrupted = interrupted or {}
    return [
        HypothesisFacts(
            id=hid,
            has_prior=prior,
            last_run=last_runs.get(hid),
            pages=tuple(page_facts.get(hid, ())),
            interrupted=interrupted.get(hid),
        )
        for hid, prior in hyps.items()
    ]


def select_hypotheses(
    session: Session,
    opts: SelectionOptions,
    *,
    now: datetime,
    current_prompts: dict[str, str],
    ids: Sequence[str] | None = None,
    heartbeat_s: float | None = None,
) -> list[Selected]:
    """Read the facts ``opts`` needs and select (``ids``: the --ids file's ids, if any)."""
    stuck: dict[str, str] = {}
    for lease in interrupted_runs(
        session, heartbeat_s=heartbeat_s, hypothesis_ids=ids, backend=opts.backend, unbatched=True
    ):
        stuck.setdefault(lease.hypothesis_id, lease.run_id)  # the oldest, when there are several
    facts = load_facts(session, ids=ids, pages=opts.changed, interrupted=stuck)
    return choose(facts, opts, now, current_prompts)


# ---------------------------------------------------------------- why a score moved


class RunChange(BaseModel):
    """How a finished run differs from the hypothesis's previous one, and why it was run."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    batch: str | None = Field(None, description="The rescoring batch that ran it, if any.")
    reasons: Reasons | None = Field(None, description="Why the batch selected it.")
    pages: list[str] = Field(default_factory=list, description="Evidence pages added, dropped or changed.")
    prompts: list[str] = Field(default_factory=list, description="Prompts whose hash changed.")
    models: dict[str, list[Any]] = Field(default_factory=dict, description="role -> [before, after].")


@dataclass(frozen=True)
class RunSnapshot:
    """What a run argued from: its evidence pages (slug -> content hash), prompts and models."""

    run_id: str
    pages: dict[str, str]
    prompt_hashes: dict[str, str]
    models: dict[str, Any]


def diff_runs(prev: RunSnapshot | None, cur: RunSnapshot) -> tuple[list[str], list[str], dict[str, list[Any]]]:
    """(pages, prompts, models) that differ between two runs; nothing for a first run."""
    if prev is None:
        return [], [], {}
    pages = sorted(k for k in prev.pages.keys() | cur.pages.keys() if prev.pages.get(k) != cur.pages.get(k))
    names = prev.prompt_hashes.keys() | cur.prompt_hashes.keys()
    prompts = sorted(n for n in names if prev.prompt_hashes.get(n) != cur.prompt_hashes.get(n))
    roles = (prev.models.keys() | cur.models.keys()) - {"base_url"}
    models = {
        r: [prev.models.get(r), cur.models.get(r)] for r in sorted(roles) if prev.models.get(r) != cur.models.get(r)
    }
    return pages, prompts, models


def explain_history(session: Session, hypothesis_id: str) -> list[RunChange]:
    """Each finished run of a hypothesis, oldest first, against the done run before it."""
    R, E, B = t.Run, t.Evidence, t.BatchItem
    runs = session.execute(
        sql_select(R.id, R.status, R.prompt_hashes, R.models)
        .where(R.hypothesis_id == hypothesis_id, R.finished_at.is_not(None))
        .order_by(R.finished_at, R.id)
    ).all()
    ids = [r.id for r in runs]
    pages: dict[str, dict[str, str]] = {}
    why: dict[str, tuple[str, dict[str, Any]]] = {}
    for part in _chunks(ids):
        for run_id, slug, digest in session.execute(
            sql_select(E.run_id, E.page_slug, E.page_hash).where(E.run_id.in_(part))
        ):
            pages.setdefault(run_id, {})[slug] = digest
        for run_id, batch_id, reasons in session.execute(
            sql_select(B.run_id, B.batch_id, B.reasons).where(B.run_id.in_(part))
        ):
            why[run_id] = (batch_id, reasons or {})
    out: list[RunChange] = []
    prev: RunSnapshot | None = None
    for r in runs:
        snap = RunSnapshot(r.id, pages.get(r.id, {}), dict(r.prompt_hashes or {}), dict(r.models or {}))
        changed_pages, prompts, models = diff_runs(prev, snap)
        batch_id, reasons = why.get(r.id, (None, None))
        out.append(
            RunChange(
                run_id=r.id,
                batch=batch_id,
                reasons=Reasons.model_validate(reasons) if reasons is not None else None,
                pages=changed_pages,
                prompts=prompts,
                models=models,
            )
        )
        if r.status == "done":
            prev = snap
    return out
