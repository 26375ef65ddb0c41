"""Hypotheses: add, import, list, show, remove (data functions taking a Session or Engine)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from debate.core.errors import NotFoundError, UserInputError
from debate.core.genes import gene_key
from debate.core.models import HypothesisIn, HypothesisOut, new_hypothesis_id, normalize_title
from debate.core.text import describe_control_char
from debate.kb.screen import screen_hypothesis
from debate.store import tables as t
from debate.store.db import session_scope
from debate.store.tables import utcnow


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def to_out(h: t.Hypothesis) -> HypothesisOut:
    return HypothesisOut(
        id=h.id,
        title=h.title,
        statement=h.statement,
        diseases=list(h.diseases or []),
        targets=list(h.targets or []),
        target_label=h.target_label,
        mechanisms=list(h.mechanisms or []),
        source=h.source,
        prior_score=h.prior_score,
        prior_source=h.prior_source,
        created_at=t.as_utc(h.created_at).isoformat(),
        updated_at=t.as_utc(h.updated_at).isoformat(),  # type: ignore[union-attr]
    )


def refuse_control(values: Mapping[Any, Any], where: str | None = None) -> None:
    """Refuse a control character in any text value (or list item) of a hypothesis record.

    Titles and notes reach terminals and databases: ESC drives the one, NUL breaks the other.
    """
    for name, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            problem = describe_control_char(item) if isinstance(item, str) else None
            if problem is not None:
                raise UserInputError(f"{name}: {problem}", where=where)


def is_suspect(source: str, title: str, statement: str = "", target_label: str | None = None) -> bool:
    """True for a hypothesis imported from a page (``source`` ``page:...``) whose text reads as
    instructions to a model (``debate.kb.screen``): page text is written by anyone."""
    return source.startswith("page:") and bool(screen_hypothesis(title, statement, target_label))


def get(s: Session, hyp_id: str) -> t.Hypothesis:
    h = s.get(t.Hypothesis, hyp_id)
    if h is None:
        raise NotFoundError(f"unknown hypothesis id {hyp_id!r}")
    return h


def _set_targets(s: Session, hyp_id: str, genes: Sequence[str]) -> None:
    s.execute(delete(t.HypothesisTarget).where(t.HypothesisTarget.hypothesis_id == hyp_id))
    if genes:
        s.execute(
            insert(t.HypothesisTarget),
            [dict(hypothesis_id=hyp_id, gene_key=gene_key(g), gene=g, ordinal=i) for i, g in enumerate(genes)],
        )


def add(s: Session, hyp: HypothesisIn, *, update: bool = False) -> tuple[t.Hypothesis, bool]:
    """Store a new hypothesis, or with ``update`` change the one with the same id or title.

    Returns (row, created). A duplicate normalized title is refused naming the existing id.
    """
    refuse_control(hyp.model_dump())
    key = normalize_title(hyp.title)
    if not key:
        raise UserInputError("title has no letters or digits", where="title")
    same_title = s.execute(select(t.Hypothesis).where(t.Hypothesis.title_key == key)).scalar_one_or_none()
    same_id = s.get(t.Hypothesis, hyp.id) if hyp.id else None
    if same_id is not None and same_title is not None and same_id.id != same_title.id:
        raise UserInputError(f"title already used by hypothesis {same_title.id}", where="title")
    existing = same_id or same_title
    # A stub imported from a page's Related section is filled in by a fuller record.
    stub = existing is not None and existing.source.startswith("page:") and not hyp.source.startswith("page:")
    if existing is not None and not update and not stub:
        what = "id" if same_id is not None else "title"
        raise UserInputError(
            f"a hypothesis with this {what} exists: {existing.id} (use --update to change it)", where=what
        )
    now = utcnow()
    if existing is None:
        hyp_id = hyp.id or _fresh_id(s)
        row = t.Hypothesis(
            id=hyp_id,
            title=hyp.title,
            title_key=key,
            statement=hyp.statement,
            diseases=hyp.diseases,
            targets=hyp.targets,
            target_label=hyp.target_label,
            mechanisms=hyp.mechanisms,
            source=hyp.source,
            prior_score=hyp.prior_score,
            prior_source=hyp.prior_source,
            # Left unset when clean: the database stores false.
            suspect=True if is_suspect(hyp.source, hyp.title, hyp.statement, hyp.target_label) else None,
            created_at=now,
            updated_at=now,
        )
        s.add(row)
        s.flush()
        _set_targets(s, hyp_id, hyp.targets)
        return row, True
    existing.title, existing.title_key, existing.statement = hyp.title, key, hyp.statement
    existing.diseases, existing.targets, existing.mechanisms = hyp.diseases, hyp.targets, hyp.mechanisms
    if not stub:  # a page's label stays: the wiki shows it as imported
        existing.target_label = hyp.target_label
    existing.source = hyp.source
    existing.suspect = is_suspect(existing.source, existing.title, existing.statement, existing.target_label)
    if hyp.prior_score is not None:
        existing.prior_score, existing.prior_source = hyp.prior_score, hyp.prior_source
    existing.updated_at = now
    s.add(existing)
    _set_targets(s, existing.id, hyp.targets)
    return existing, False


def _fresh_id(s: Session) -> str:
    while True:
        hyp_id = new_hypothesis_id()
        if s.get(t.Hypothesis, hyp_id) is None:
            return hyp_id


def upsert_imported(s: Session, hyp: HypothesisIn) -> int:
    """Import a hypothesis listed on a page: create it, or refresh the prior a page gave it.

    A hypothesis created here by a user keeps its own fields; only its imported prior moves.
    """
    assert hyp.id is not None
    row = s.get(t.Hypothesis, hyp.id)
    if row is None:
        key = normalize_title(hyp.title)
        if s.execute(select(t.Hypothesis.id).where(t.Hypothesis.title_key == key)).first():
            return 0  # the same idea under another id: keep the one we have
        add(s, hyp)
        return 1
    if hyp.prior_score is not None:
        row.prior_score, row.prior_source = hyp.prior_score, hyp.prior_source
        if row.source.startswith("page:"):
            row.target_label = hyp.target_label
            row.suspect = is_suspect(row.source, row.title, row.statement, row.target_label)
        row.updated_at = utcnow()
        s.add(row)
    return 0


def remove(engine: Engine, hyp_id: str) -> int:
    """Delete a hypothesis with its runs, turns and reviews. Returns the number of runs removed."""
    with session_scope(engine, immediate=True) as s:
        get(s, hyp_id)
        run_ids = list(s.execute(select(t.Run.id).where(t.Run.hypothesis_id == hyp_id)).scalars())
        for table in (t.Review, t.Attempt, t.Turn, t.Evidence, t.CitedPage):
            s.execute(delete(table).where(table.run_id.in_(run_ids)))  # type: ignore[attr-defined]
        s.execute(delete(t.Run).where(t.Run.hypothesis_id == hyp_id))
        s.execute(delete(t.HypothesisTarget).where(t.HypothesisTarget.hypothesis_id == hyp_id))
        s.execute(delete(t.Hypothesis).where(t.Hypothesis.id == hyp_id))
    return len(run_ids)


def list_all(s: Session) -> list[t.Hypothesis]:
    return list(s.execute(select(t.Hypothesis).order_by(t.Hypothesis.title)).scalars())


def count(s: Session) -> int:
    return s.execute(select(func.count()).select_from(t.Hypothesis)).scalar_one()


# ---------------------------------------------------------------- files


def read_hypotheses_file(path: Path) -> list[HypothesisIn]:
    """Parse a YAML, JSON or CSV file of hypotheses; the first error names its line or record."""
    return [h for _, h in read_located(path)]


Located = list[tuple[str, HypothesisIn]]  # (file:line or file: record N, hypothesis)


def read_located(path: Path) -> Located:
    """Like :func:`read_hypotheses_file`, each hypothesis with where it stands in the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError("no such file", where=str(path)) from None
    except IsADirectoryError:
        raise UserInputError("is a directory, not a file of hypotheses", where=str(path)) from None
    except PermissionError:
        raise UserInputError("not readable (permission denied)", where=str(path)) from None
    except UnicodeDecodeError:
        raise UserInputError("not UTF-8 text", where=str(path)) from None
    if not text.strip():  # an empty CSV would otherwise import nothing and succeed
        raise UserInputError("empty file, no hypotheses in it", where=str(path))
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(text, path)
    records, lines = _load_structured(text, path, suffix)
    out: Located = []
    for i, rec in enumerate(records):
        where = f"{path}:{lines[i]}" if lines else f"{path}: record {i + 1}"
        if not isinstance(rec, dict):
            raise UserInputError("each hypothesis must be a mapping", where=where)
        out.append((where, _validate(rec, where)))
    _check_unique(out)
    return out


def _load_structured(text: str, path: Path, suffix: str) -> tuple[list, list[int]]:
    try:
        if suffix == ".json":
            data = json.loads(text)
            lines = _json_record_lines(text, data)
        else:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
            lines = [n.start_mark.line + 1 for n in node.value] if isinstance(node, yaml.SequenceNode) else []
    except json.JSONDecodeError as e:
        raise UserInputError(f"invalid JSON: {e.msg}", where=f"{path}:{e.lineno}") from None
    except RecursionError:
        raise UserInputError("nested too deeply to be a list of hypotheses", where=str(path)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UserInputError(f"invalid YAML: {getattr(e, 'problem', e)}", where=where) from None
    if isinstance(data, dict) and "hypotheses" in data:
        data = data["hypotheses"]
        lines = []
    if not isinstance(data, list):
        raise UserInputError("expected a list of hypotheses", where=str(path))
    return data, lines


def _json_record_lines(text: str, data: object) -> list[int]:
    """The line each element of a top-level JSON array starts on (none for other shapes)."""
    if not isinstance(data, list):
        return []
    decoder, ws = json.JSONDecoder(), re.compile(r"[\s,]*")
    pos = ws.match(text, 0).end() + 1  # type: ignore[union-attr]  # past "["
    lines = []
    for _ in data:
        pos = ws.match(text, pos).end()  # type: ignore[union-attr]
        lines.append(text.count("\n", 0, pos) + 1)
        _, pos = decoder.raw_decode(text, pos)
    return lines


def _read_csv(text: str, path: Path) -> Located:
    reader = csv.DictReader(io.StringIO(text))
    known = set(HypothesisIn.model_fields)
    unknown = [c for c in reader.fieldnames or [] if c.strip() not in known]
    if unknown:
        raise UserInputError(
            f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(sorted(known))})",
            where=f"{path}:1",
        )
    out: Located = []
    list_fields = ("diseases", "targets", "mechanisms")
    for rec in reader:
        where = f"{path}:{reader.line_num}"
        if None in rec:  # DictReader files cells beyond the header under None
            raise UserInputError(f"{len(rec[None])} more cell(s) than the header has columns", where=where)  # type: ignore[index]
        clean = {k.strip(): (v or "").strip() for k, v in rec.items() if k}
        for f in list_fields:
            if f in clean:
                clean[f] = [x.strip() for x in clean[f].replace(";", ",").split(",") if x.strip()]  # type: ignore[assignment]
        for f in ("id", "prior_score", "target_label", "statement"):
            if clean.get(f) == "":
                clean.pop(f)
        out.append((where, _validate(clean, where)))
    _check_unique(out)
    return out


def _validate(rec: dict, where: str) -> HypothesisIn:
    rec = {k: v for k, v in rec.items() if v is not None}
    refuse_control(rec, where)
    rec.setdefault("source", "import")
    try:
        return HypothesisIn.model_validate(rec)
    except ValidationError as e:
        raise UserInputError(_first_error(e), where=where) from None
    except UserInputError as e:  # raised by a field validator (an invalid gene symbol)
        raise UserInputError(str(e), where=where) from None


def _check_unique(hyps: Located) -> None:
    ids: set[str] = set()
    titles: set[str] = set()
    for where, h in hyps:
        key = normalize_title(h.title)
        if (h.id and h.id in ids) or key in titles:
            raise UserInputError(f"duplicate hypothesis {h.id or h.title!r} in file", where=where)
        if h.id:
            ids.add(h.id)
        titles.add(key)


def import_file(engine: Engine, path: Path, *, update: bool = False) -> list[str]:
    """Import every hypothesis in a file in one transaction (all or nothing). Returns their ids."""
    hyps = read_located(path)
    ids: list[str] = []
    with session_scope(engine, immediate=True) as s:
        for where, h in hyps:
            try:
                row, _ = add(s, h, update=update)
            except UserInputError as e:
                raise UserInputError(str(e), where=where) from None
            ids.append(row.id)
    return ids
