"""What the PostgreSQL catalog says: relations, their readers, our views, the marker;
and the drops that follow readers-first order.

Dependants. Views bind to objects, not names: a view of someone else's (in any schema) on
`prod.orders` would keep reading the old release, and the switch could not drop the old
view anyway. So a switch refuses, before changing anything, with a WarehouseError that
lists every object reading a view it would replace or drop: drop them, switch, then
recreate them on the new release. `drop_schema` refuses likewise when objects outside the
schema read it, which CASCADE would otherwise drop silently.

Views releasekit made carry a comment naming their relation; a view counts as ours (for
`view_targets` and for leaving it alone) when that comment names the one relation
`pg_depend` says it reads: no SQL is parsed.
"""

from __future__ import annotations

import graphlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from releasekit.errors import WarehouseError
from releasekit.warehouse.base import MARKER_VIEW, ReleaseMarker, Statement
from releasekit.warehouse.naming import qualify, quote
from releasekit.warehouse.postgres.statements import Cursor, execute, fetch

DROP_KINDS = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE"}
KIND_WORDS = {
    **{kind: word.lower() for kind, word in DROP_KINDS.items()},
    "p": "partitioned table",
    "S": "sequence",
    "i": "index",
    "I": "partitioned index",
    "c": "composite type",
}
VIEW_COMMENT = "releasekit: SELECT * FROM "

_RELATIONS_SQL = """
SELECT c.relname, c.relkind, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND (%s OR c.relname = ANY(%s))
"""
# Who reads the given relations: views and materialized views (through their rewrite
# rule), and anything else that depends on the relation or its row type.
_DEPENDANTS_SQL = """
SELECT DISTINCT o.type, coalesce(o.schema, ''), o.identity, src.relname
FROM pg_class src
JOIN pg_depend d ON d.deptype = 'n' AND (
     (d.refclassid = 'pg_class'::regclass AND d.refobjid = src.oid)
  OR (d.refclassid = 'pg_type'::regclass AND d.refobjid = src.reltype))
LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
CROSS JOIN LATERAL pg_identify_object(
    CASE WHEN r.oid IS NULL THEN d.classid ELSE 'pg_class'::regclass END,
    coalesce(r.ev_class, d.objid),
    CASE WHEN r.oid IS NULL THEN d.objsubid ELSE 0 END) AS o
WHERE src.oid = ANY(%(oids)s::oid[]) AND NOT coalesce(r.ev_class, 0) = ANY(%(oids)s::oid[])
ORDER BY 3, 4
"""

_VIEW_READS_SQL = """
SELECT DISTINCT v.relname, obj_description(v.oid, 'pg_class'), tn.nspname, t.relname
FROM pg_class v
JOIN pg_namespace vn ON vn.oid = v.relnamespace
JOIN pg_rewrite r ON r.ev_class = v.oid
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
 AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> v.oid
JOIN pg_class t ON t.oid = d.refobjid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE vn.nspname = %s AND v.relkind = 'v'
"""
# (reader, read) pairs among the given relations: a view or materialized view reads
# through its rewrite rule.
_READS_AMONG_SQL = """
SELECT DISTINCT r.ev_class, d.refobjid
FROM pg_rewrite r
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
 AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
WHERE r.ev_class = ANY(%(oids)s::oid[]) AND d.refobjid = ANY(%(oids)s::oid[])
"""


@dataclass(frozen=True)
class _Dependant:
    kind: str
    schema: str
    identity: str
    reads: str  # the view of ours it reads

    def __str__(self) -> str:
        return f"{self.kind} {self.identity} (reads {self.reads})"


def relations(cur: Cursor, schema: str, names: Sequence[str] | None = None) -> dict[str, tuple[str, int]]:
    """name -> (relkind, oid) for `names` in `schema` (every relation when names is None)."""
    rows = fetch(cur, f"schema {schema!r}", _RELATIONS_SQL, (schema, names is None, list(names or [])))
    return {str(name): (str(kind), int(oid)) for name, kind, oid in rows}


def refuse_dependants(cur: Cursor, failure: str, oids: list[int], *, outside: str | None = None) -> None:
    rows = fetch(cur, "dependants", _DEPENDANTS_SQL, {"oids": oids}) if oids else []
    found = [_Dependant(*map(str, row)) for row in rows]
    found = [dependant for dependant in found if dependant.schema != outside]
    if found:
        raise WarehouseError(
            f"{failure}: {len(found)} object(s) read its views and would keep reading the old "
            f"ones, since PostgreSQL binds views to objects, not names: {'; '.join(map(str, found))}",
            hint="drop them, run this again, then recreate them on the new release; nothing changed",
        )


def read_marker(cur: Cursor, schema: str) -> ReleaseMarker | None:
    if relations(cur, schema, [MARKER_VIEW]).get(MARKER_VIEW, ("",))[0] != "v":
        return None
    sql = f"SELECT release_id, env, git_sha, switched_at FROM {qualify(schema, MARKER_VIEW)}"
    rows = fetch(cur, "marker", sql)
    if len(rows) != 1:
        raise WarehouseError(
            f"the release marker {schema}.{MARKER_VIEW} holds {len(rows)} rows, not 1",
            hint="switch the environment again (deploy or rollback) to rewrite it",
        )
    release_id, env, git_sha, switched_at = rows[0]
    return ReleaseMarker(env=env, release_id=int(release_id), git_sha=git_sha, switched_at=switched_at)


def our_views(cur: Cursor, schema: str) -> dict[str, tuple[str, str]]:
    """view -> (schema, relation) it reads, for the views releasekit made in `schema`: their
    comment names the one relation pg_depend says they read."""
    reads: dict[str, set[tuple[str | None, str, str]]] = {}
    for view, comment, source_schema, relation in fetch(cur, "views", _VIEW_READS_SQL, (schema,)):
        reads.setdefault(view, set()).add((comment, source_schema, relation))
    ours = {}
    for view, found in reads.items():
        if view == MARKER_VIEW or len(found) != 1:
            continue
        [(comment, source_schema, relation)] = found
        if comment == VIEW_COMMENT + qualify(source_schema, relation):
            ours[view] = (source_schema, relation)
    return ours


def drop_relations(cur: Cursor, schema: str, names: list[str]) -> None:
    """Drop what exists of `names`, readers before what they read: physical relations read
    each other (a view model on a table model), and DROP without CASCADE refuses to drop a
    relation another one still reads. One outside `names` that reads them makes it fail."""
    kinds = relations(cur, schema, names)
    present = {name: kinds[name] for name in names if kinds.get(name, ("",))[0] in DROP_KINDS}
    for name in _readers_first(cur, present):
        kind = present[name][0]
        step = Statement(f"{KIND_WORDS[kind]} {name!r}", f"DROP {DROP_KINDS[kind]} {qualify(schema, name)}")
        execute(cur, step)


def readers(cur: Cursor, schema: str, names: list[str]) -> dict[str, list[str]]:
    oids = [oid for _, oid in relations(cur, schema, names).values()]
    rows = fetch(cur, "dependants", _DEPENDANTS_SQL, {"oids": oids}) if oids else []
    found: dict[str, list[str]] = {}
    for row in rows:  # readers among `names` themselves are left out by the query
        dependant = _Dependant(*map(str, row))
        found.setdefault(dependant.reads, []).append(f"{dependant.kind} {dependant.identity}")
    return found


def _readers_first(cur: Cursor, relations: Mapping[str, tuple[str, int]]) -> list[str]:
    by_oid = {oid: name for name, (_, oid) in relations.items()}
    edges = fetch(cur, "dependencies", _READS_AMONG_SQL, {"oids": list(by_oid)}) if len(by_oid) > 1 else []
    order: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name in relations:
        order.add(name)
    for reader, read in edges:
        order.add(by_oid[int(read)], by_oid[int(reader)])  # the reader goes first
    return list(order.static_order())


def drop_schema(cur: Cursor, schema: str) -> None:
    oids = [oid for _, oid in relations(cur, schema).values()]
    refuse_dependants(cur, f"could not drop schema {schema!r}", oids, outside=schema)
    execute(cur, Statement(f"schema {schema!r}", f"DROP SCHEMA IF EXISTS {quote(schema)} CASCADE"))
