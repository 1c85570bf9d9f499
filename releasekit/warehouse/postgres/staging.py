"""The statements of a PostgreSQL switch: the plan, its steps, the staging name.

Switching an environment. A switch builds the views that change, and the new marker, in a
staging schema beside the live one (`<schema>__rk_next`; a schema too long for that gets a
cut name with a hash, so every name fits PostgreSQL's 63 bytes by construction), then swaps
them in view by view, all in ONE transaction:

    CREATE SCHEMA staging; CREATE VIEW staging.v AS SELECT * FROM physical.rel; ...
    DROP VIEW live.v, ...                      -- the views replaced or dropped, and the marker
    ALTER VIEW staging.v SET SCHEMA live; ...  -- every new view, and the new marker
    DROP SCHEMA staging

A view of ours that already reads the relation the release wants is left alone: it is not
locked, and keeps its grants and whatever reads it. Readers see the old release until
COMMIT and the new one after, never a mix, not even across the statements of one open
transaction: while a reader holds an old view the switch cannot drop it, so cannot commit.

Why views are swapped one by one and not by renaming the staging schema over the live one
(and dropping the old one in the same transaction): that drop locks every old view exactly
as DROP VIEW does, so renaming blocks readers no less, and it locks unchanged views too.
Swapping views keeps the live schema the same object: its owner, grants (the consumers'
USAGE), default privileges and comment survive, and objects releasekit did not make (a
notes table, a user's own view) stay where they are instead of being moved across. DROP
VIEW without CASCADE fails rather than silently dropping a dependant created after the
dependants check (catalog). The staging schema exists only inside the switch
transaction: a killed switch leaves nothing behind (the server rolls back). A committed
schema under the staging name that carries releasekit's staging comment is a leftover and
is dropped first; one without the comment is someone else's, and the switch refuses rather
than drop it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from releasekit.errors import WarehouseError
from releasekit.warehouse.base import MARKER_VIEW, SWITCH_HINT, ReleaseMarker, Statement
from releasekit.warehouse.naming import qualify, quote, string_literal
from releasekit.warehouse.postgres.catalog import (
    DROP_KINDS,
    KIND_WORDS,
    VIEW_COMMENT,
    our_views,
    refuse_dependants,
    relations,
)
from releasekit.warehouse.postgres.grants import Grant, grantee, missing_grants, view_grants
from releasekit.warehouse.postgres.statements import Cursor, batch, fetch

_STAGING_COMMENT = "releasekit staging schema for "

_SCHEMA_COMMENTS_SQL = """
SELECT nspname, obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = ANY(%s)
"""


@dataclass(frozen=True)
class StagedSwitch:
    schema: str
    staging: str
    physical_schema: str
    views: dict[str, str]
    dropped: tuple[str, ...]
    marker: ReleaseMarker
    grants: tuple[Grant, ...] = ()  # the environment's: on every view after the switch

    @property
    def failure(self) -> str:
        return f"could not switch schema {self.schema!r} to release {self.marker.release_id}"

    def steps(self, cur: Cursor) -> list[Statement]:
        """The switch's two round trips, to run in order in one transaction: the next release
        built in the staging schema, then the swap. Reads the catalog, changes nothing."""
        # Every check reads only the catalog, before anything changes or locks a view.
        schemas = dict(fetch(cur, "schemas", _SCHEMA_COMMENTS_SQL, ([self.schema, self.staging],)))
        build = [self._clear_leftover(schemas[self.staging])] if self.staging in schemas else []
        self._require_physical(cur)
        if self.schema in schemas:
            changed = self._changed(cur)
            replaced = self._replaced(cur, changed)
            carried = view_grants(cur, self.schema, [name for name, _ in replaced if name in changed])
            swap = self._swap_steps(changed, replaced) + self._grant_steps(cur, changed)
        else:
            changed, carried, swap = self.views, [], self._first_steps() + self._grant_steps(cur, self.views)
        build += self._build_steps(changed)
        build += [
            grant.on_view(self.staging, name)
            for name in [*changed, MARKER_VIEW]
            for grant in (*carried, *self.grants)
            if grant.view in (None, name)
        ]
        return [batch(f"views of release {self.marker.release_id} in staging", build), batch("swap", swap)]

    def _grant_steps(self, cur: Cursor, changed: Mapping[str, str]) -> list[Statement]:
        """The environment's grants on the views this switch leaves as they are, where a
        role lacks them (so an unchanged view is not touched), and USAGE on the schema."""
        if not self.grants:
            return []
        kept = [name for name in self.views if name not in changed]
        steps = [
            grant.on_view(self.schema, name)
            for grant, name in missing_grants(cur, self.schema, kept, self.grants)
        ]
        roles = sorted({grant.role for grant in self.grants})
        steps.append(
            Statement(
                "schema usage",
                f"GRANT USAGE ON SCHEMA {quote(self.schema)} TO {', '.join(map(grantee, roles))}",
            )
        )
        return steps

    def _changed(self, cur: Cursor) -> dict[str, str]:
        """The views to swap: a view of ours that already reads its relation stays as it is,
        so it is neither locked nor does it lose its grants or dependants."""
        live = our_views(cur, self.schema)
        return {
            name: relation
            for name, relation in self.views.items()
            if live.get(name) != (self.physical_schema, relation)
        }

    def _clear_leftover(self, comment: str | None) -> Statement:
        if comment != _STAGING_COMMENT + self.schema:
            raise WarehouseError(
                f"{self.failure}: schema {self.staging!r} exists and is not releasekit's staging "
                f"schema for {self.schema!r}",
                hint="releasekit builds the next release there: rename or drop that schema",
            )
        return Statement(f"leftover {self.staging!r}", f"DROP SCHEMA {quote(self.staging)} CASCADE")

    def _require_physical(self, cur: Cursor) -> None:
        wanted = sorted(set(self.views.values()))
        found = relations(cur, self.physical_schema, wanted)
        missing = [
            f"view {v!r} -> {r!r}" for v, r in self.views.items() if found.get(r, ("",))[0] not in DROP_KINDS
        ]
        if missing:
            raise WarehouseError(
                f"{self.failure}: schema {self.physical_schema!r} has no relation for {', '.join(missing)}",
                hint=SWITCH_HINT,
            )

    def _replaced(self, cur: Cursor, changed: Mapping[str, str]) -> list[tuple[str, int]]:
        """The live views this switch replaces or drops, as (name, oid)."""
        names = [MARKER_VIEW, *changed, *self.dropped]
        found = relations(cur, self.schema, names)
        for name, (kind, _) in found.items():
            if kind != "v":
                raise self._not_a_view(name, kind)
        replaced = [(name, found[name][1]) for name in names if name in found]
        refuse_dependants(cur, self.failure, [oid for _, oid in replaced])
        return replaced

    def _not_a_view(self, name: str, kind: str) -> WarehouseError:
        word = KIND_WORDS.get(kind, "relation")
        if name in self.dropped:
            why = "the switch was asked to drop it, and drops only views"
        else:
            why = f"release {self.marker.release_id} puts a view under that name"
        return WarehouseError(
            f"{self.failure}: schema {self.schema!r} holds a {word} named {name!r}; {why}",
            hint=f"rename or drop the {word}; nothing changed",
        )

    def _build_steps(self, changed: Mapping[str, str]) -> list[Statement]:
        staging = quote(self.staging)
        comment = string_literal(_STAGING_COMMENT + self.schema)
        steps = [Statement("staging", f"CREATE SCHEMA {staging}; COMMENT ON SCHEMA {staging} IS {comment}")]
        for name, relation in changed.items():
            view, source = qualify(self.staging, name), qualify(self.physical_schema, relation)
            note = string_literal(VIEW_COMMENT + source)
            sql = f"CREATE VIEW {view} AS SELECT * FROM {source}; COMMENT ON VIEW {view} IS {note}"
            steps.append(Statement(f"view {name!r}", sql))
        steps.append(Statement("marker", _marker_sql(qualify(self.staging, MARKER_VIEW), self.marker)))
        return steps

    def _first_steps(self) -> list[Statement]:
        live = quote(self.schema)
        sql = f"ALTER SCHEMA {quote(self.staging)} RENAME TO {live}; COMMENT ON SCHEMA {live} IS NULL"
        return [Statement(f"schema {self.schema!r}", sql)]

    def _swap_steps(self, changed: Mapping[str, str], replaced: list[tuple[str, int]]) -> list[Statement]:
        steps = []
        if replaced:
            old = ", ".join(qualify(self.schema, name) for name, _ in replaced)
            steps.append(Statement("old views", f"DROP VIEW {old}"))
        for name in [*changed, MARKER_VIEW]:
            sql = f"ALTER VIEW {qualify(self.staging, name)} SET SCHEMA {quote(self.schema)}"
            steps.append(Statement(f"view {name!r}", sql))
        steps.append(Statement("staging", f"DROP SCHEMA {quote(self.staging)}"))
        return steps


def staging_schema(schema: str, max_bytes: int = 63) -> str:
    """Where a switch builds `schema`'s next release: `<schema>__rk_next`, or for a long
    schema its cut prefix, `__rk_next_` and a hash of the whole name (never cut)."""
    plain = f"{schema}__rk_next"
    if byte_length(plain) <= max_bytes:
        return plain
    suffix = f"__rk_next_{hashlib.sha256(schema.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"
    room = max_bytes - len(suffix)
    # Cut on a character boundary: a half character would be an encoding error.
    prefix = schema.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore")
    return prefix + suffix


def byte_length(name: str) -> int:
    return len(name.encode("utf-8", "surrogatepass"))


def _marker_sql(view: str, marker: ReleaseMarker) -> str:
    return (
        f"CREATE VIEW {view} AS SELECT "
        f"CAST({int(marker.release_id)} AS bigint) AS release_id, "
        f"CAST({string_literal(marker.env)} AS text) AS env, "
        f"CAST({string_literal(marker.git_sha)} AS text) AS git_sha, "
        f"CAST({string_literal(marker.switched_at)} AS text) AS switched_at"
    )
