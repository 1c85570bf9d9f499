"""How the PostgreSQL adapter runs its statements: each names what it touches, and a failing
one raises StatementFailed carrying that name, so the message says where.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg2

from releasekit.warehouse.base import Statement

Cursor = Any  # psycopg2 ships no type information


class StatementFailed(Exception):
    def __init__(self, subject: str, cause: Exception) -> None:
        super().__init__(subject)
        self.subject = subject
        self.cause = cause
        self.pgcode: str | None = getattr(cause, "pgcode", None)


def batch(subject: str, steps: list[Statement]) -> Statement:
    # One round trip: the swap holds its locks for as short a time as possible.
    return Statement(subject, ";\n".join(step.sql for step in steps))


def execute(cur: Cursor, step: Statement, params: Any = None) -> None:
    try:
        cur.execute(step.sql, params)
    except psycopg2.Error as exc:
        raise StatementFailed(step.subject, exc) from exc


def fetch(cur: Cursor, subject: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    execute(cur, Statement(subject, sql), params)
    return list(cur.fetchall())


def commit(con: Any) -> None:
    try:
        con.commit()
    except psycopg2.Error as exc:
        raise StatementFailed("commit", exc) from exc


def rollback(con: Any) -> None:
    # After a failed statement or COMMIT the first error is the story.
    with contextlib.suppress(psycopg2.Error):
        con.rollback()


def describe(exc: Exception) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    text = primary or str(exc).strip() or type(exc).__name__
    text = text.splitlines()[0]
    detail = getattr(diag, "message_detail", None)
    return f"{text} ({'; '.join(detail.splitlines())})" if detail else text
