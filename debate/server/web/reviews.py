"""Review actions over HTTP: the request model and recording one (shared by the API and the UI)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, TypeAdapter
from sqlalchemy.engine import Engine

from debate.engine.runs import review_run
from debate.server.controls import NO_CONTROL, SOME_TEXT, text_problem
from debate.server.web import queries as q
from debate.store.db import session_scope


def _clean(value: object, *, need_text: bool = False) -> object:
    # Runs before the length and pattern checks, so these refusals get their own message.
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(problem)
        if need_text and not value.strip():
            raise ValueError("a comment needs a note")
    return value


# Constraints before the validator: they then belong to the str (and its schema), and the
# validator, wrapped around them, runs first.
Note = Annotated[str, StringConstraints(max_length=4000, pattern=NO_CONTROL), BeforeValidator(_clean)]
CommentNote = Annotated[
    str, StringConstraints(max_length=4000, pattern=SOME_TEXT), BeforeValidator(partial(_clean, need_text=True))
]


class _Review(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Comment(_Review):
    """A comment on a run: a note, nothing else changes."""

    action: Literal["comment"]
    note: CommentNote = Field(description="The comment.")


class Verdict(_Review):
    """Approve, flag (withhold the run's score) or clear (undo an approval or a flag)."""

    action: Literal["approve", "flag", "clear"]
    note: Note | None = Field(None, description="Why, optionally.")


ReviewRequest = Annotated[Comment | Verdict, Field(discriminator="action")]
"""A review action on a run (a comment needs a note)."""
REVIEW_REQUEST: TypeAdapter[Comment | Verdict] = TypeAdapter(ReviewRequest)
REVIEW_ACTIONS = ("approve", "comment", "flag", "clear")


class ReviewResult(BaseModel):
    """The review recorded and the run's review state after it."""

    review: q.ReviewOut
    run: q.RunSummary


def record_review(engine: Engine, run_id: str, req: Comment | Verdict, *, by: str) -> ReviewResult:
    """Record a review as reviewer ``by`` and read back what it changed (NotFoundError for a bad id)."""
    run = review_run(engine, run_id, req.action, by=by, note=(req.note or "").strip() or None)
    with session_scope(engine) as s:
        review = q.reviews_of(s, run_id)[-1]
        [summary] = q.run_summaries(s, [run])
    return ReviewResult(review=review, run=summary)
