"""The statements of the PostgreSQL adapter: each runs as a step that names what it touches,
and a failing one raises _StatementFailed carrying that name, so the message says where.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import psycopg2

Cursor = Any  # psycopg2 ships no type information


@dataclass(frozen=True)
class _Step:
    subject: str  # what the statement touches, for the error message
    sql: str


class _StatementFailed(Exception):
    def __init__(self, subject: str, cause: Exception) -> None:
        super().__init__(subject)
        self.subject = subject
        self.cause = cause
        self.pgcode: str | None = getattr(cause, "pgcode", None)


def _batch(subject: str, steps: list[_Step]) -> _Step:
    # One round trip: the swap holds its locks for as short a time as possible.
    return _Step(subject, ";\n".join(step.sql for step in steps))


def _execute(cur: Cursor, step: _Step, params: Any = None) -> None:
    try:
        cur.execute(step.sql, params)
    except psycopg2.Error as exc:
        raise _StatementFailed(step.subject, exc) from exc


def _fetch(cur: Cursor, subject: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    _execute(cur, _Step(subject, sql), params)
    return list(cur.fetchall())


def _commit(con: Any) -> None:
    try:
        con.commit()
    except psycopg2.Error as exc:
        raise _StatementFailed("commit", exc) from exc


def _rollback(con: Any) -> None:
    # After a failed statement or COMMIT the first error is the story.
    with contextlib.suppress(psycopg2.Error):
        con.rollback()


def _describe(exc: Exception) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    text = primary or str(exc).strip() or type(exc).__name__
    text = text.splitlines()[0]
    detail = getattr(diag, "message_detail", None)
    return f"{text} ({'; '.join(detail.splitlines())})" if detail else text
