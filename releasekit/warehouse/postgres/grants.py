"""The grants a switch gives its views: carried over from the views they replace, and declared.

Grants. A replaced view is a new object: the grants made on the old one (by anyone, to
anyone but its owner) are given to the new one while it is built in the staging schema, and
the environment's declared grants are given to every new view and the marker there too. A
view the switch keeps gets a declared grant only when a role lacks it (asked with
has_table_privilege, so a steady state touches nothing), and the roles get USAGE on the
schema. All of it commits or rolls back with the switch: a role that does not exist fails
the switch, and nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from releasekit.errors import WarehouseError
from releasekit.warehouse.base import Statement
from releasekit.warehouse.naming import qualify, quote
from releasekit.warehouse.postgres.statements import Cursor, fetch

_PRIVILEGES = frozenset({"select", "insert", "update", "delete", "truncate", "references", "trigger"})

_VIEW_GRANTS_SQL = """
SELECT c.relname, a.privilege_type,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, a.is_grantable
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(c.relacl) AS a
WHERE n.nspname = %s AND c.relname = ANY(%s) AND a.grantee <> c.relowner
ORDER BY 1, 2, 3
"""
_LACKING_SQL = """
SELECT v.name, g.role, g.privilege
FROM unnest(%(names)s::text[]) AS v(name)
CROSS JOIN unnest(%(roles)s::text[], %(privileges)s::text[]) AS g(role, privilege)
WHERE NOT has_table_privilege(g.role, format('%%I.%%I', %(schema)s::text, v.name), g.privilege)
"""


@dataclass(frozen=True)
class Grant:
    privilege: str  # SELECT, INSERT, ...
    role: str  # a role's name, or PUBLIC
    view: str | None = None  # carried over from this replaced view; None: on every view
    grantable: bool = False

    def on_view(self, schema: str, name: str) -> Statement:
        option = " WITH GRANT OPTION" if self.grantable else ""
        sql = f"GRANT {self.privilege} ON {qualify(schema, name)} TO {grantee(self.role)}{option}"
        return Statement(f"grant {self.privilege} on {name!r} to {self.role!r}", sql)


def parse_grants(grants: Mapping[str, Sequence[str]]) -> tuple[Grant, ...]:
    unknown = sorted(set(grants) - _PRIVILEGES)
    if unknown:
        raise WarehouseError(
            f"unknown privilege(s) for views: {', '.join(map(repr, unknown))}",
            hint=f"use {', '.join(sorted(_PRIVILEGES))}",
        )
    return tuple(Grant(privilege.upper(), role) for privilege, roles in grants.items() for role in roles)


def grantee(role: str) -> str:
    return "PUBLIC" if role.upper() == "PUBLIC" else quote(role)


def view_grants(cur: Cursor, schema: str, names: list[str]) -> list[Grant]:
    """What was granted on these views, by whoever, to anyone but their owner."""
    rows = fetch(cur, "grants", _VIEW_GRANTS_SQL, (schema, names)) if names else []
    return [Grant(str(priv), str(role), str(view), bool(option)) for view, priv, role, option in rows]


def missing_grants(
    cur: Cursor, schema: str, names: list[str], grants: Sequence[Grant]
) -> list[tuple[Grant, str]]:
    """(grant, view) pairs the view lacks. PUBLIC cannot be asked, so it is always granted."""
    public = [(grant, name) for grant in grants if grant.role.upper() == "PUBLIC" for name in names]
    asked = [grant for grant in grants if grant.role.upper() != "PUBLIC"]
    if not names or not asked:
        return public
    params = {
        "schema": schema,
        "names": names,
        "roles": [grant.role for grant in asked],
        "privileges": [grant.privilege for grant in asked],
    }
    by_key = {(grant.role, grant.privilege): grant for grant in asked}
    rows = fetch(cur, "privileges", _LACKING_SQL, params)
    return public + [(by_key[(str(role), str(priv))], str(name)) for name, role, priv in rows]
