"""dbt's parsed manifest -> releasekit's ProjectGraph (plain values)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from releasekit.dbtcore.reads import scan_reads
from releasekit.graph import Exposure, Macro, Node, ProjectGraph, digest

# Config keys that say where a relation lives or describe it, not what it holds.
# releasekit chooses placement itself, so env-specific schema/database/alias never
# change a fingerprint (dbt's state:modified false positives, dbt-core 9562).
NON_CONTENT_CONFIG = frozenset(
    {
        "schema",
        "database",
        "alias",
        "tags",
        "meta",
        "docs",
        "group",
        "access",
        "grants",
        "enabled",
        "persist_docs",
        "event_time",
        "packages",
    }
)
# Config keys that describe a node: `releasekit check` calls a change to them (or to
# descriptions) metadata-only. Placement keys are left out: releasekit places relations.
METADATA_CONFIG = ("tags", "meta", "docs", "group", "access", "grants", "persist_docs")
# Macros of dbt itself and of the adapter (packages `dbt`, `dbt_duckdb`, ...) are versioned
# with the installed tool, not with the project: they are left out of fingerprints.


if TYPE_CHECKING:
    from dbt.contracts.graph.manifest import Manifest


def to_graph(manifest: Manifest, *, project_vars: dict[str, Any], cli_vars: dict[str, Any]) -> ProjectGraph:
    tested = _tested_columns(manifest)
    nodes = {
        uid: _node(n, tested.get(uid, frozenset()))
        for uid, n in manifest.nodes.items()
        if n.resource_type.value in ("model", "seed", "snapshot")
    }
    nodes.update({uid: _source(s) for uid, s in manifest.sources.items()})
    adapter = str(manifest.metadata.adapter_type or "")
    from dbt.adapters.factory import get_adapter_package_names

    internal_packages = set(get_adapter_package_names(adapter))
    internal = {uid for uid, m in manifest.macros.items() if m.package_name in internal_packages}
    macros = {uid: _macro(m, internal) for uid, m in manifest.macros.items() if uid not in internal}
    nodes = {uid: _with_materialization(n, macros, adapter) for uid, n in nodes.items()}
    tests = _tests_by_node(manifest, macros)
    nodes = {uid: dataclasses.replace(n, tests=tests.get(uid, {})) for uid, n in nodes.items()}
    global_vars, scoped = _split_vars(project_vars, _package_names(manifest))
    return ProjectGraph(
        project_name=str(manifest.metadata.project_name or ""),
        adapter=adapter,
        nodes=nodes,
        macros=macros,
        vars=global_vars,
        package_vars=scoped,
        cli_vars=cli_vars,
        exposures={uid: _exposure(e) for uid, e in manifest.exposures.items()},
    )


def _node(n: Any, tested: frozenset[str]) -> Node:
    resource_type = n.resource_type.value
    config = n.config.to_dict()
    content = _seed_checksum(n) if resource_type == "seed" else n.raw_code
    return Node(
        unique_id=n.unique_id,
        name=n.name,
        resource_type=resource_type,
        package=n.package_name,
        materialized=str(config.get("materialized", resource_type)),
        content=content,
        config=_content_config(config),
        parents=tuple(getattr(n.depends_on, "nodes", ())),
        macros=tuple(n.depends_on.macros),
        reads=scan_reads(n.raw_code) if resource_type != "seed" else scan_reads(""),
        path=n.original_file_path,
        fqn=tuple(n.fqn),
        unique_key=_unique_key(n, config, tested),
        metadata=_metadata(n, config),
        spc=_spc_settings(config),
        properties_path=(getattr(n, "patch_path", None) or "").partition("://")[2],
    )


def _spc_settings(config: dict[str, Any]) -> Any:
    """What `meta: {releasekit: {spc: ...}}` says, as written: config.spc validates it when
    it is used, naming the properties file."""
    ours = (config.get("meta") or {}).get("releasekit")
    return (ours.get("spc") if isinstance(ours, dict) else None) or {}


def _unique_key(n: Any, config: dict[str, Any], tested: frozenset[str]) -> tuple[str, ...]:
    """The columns that identify a row of the node, for `releasekit check`'s data diff. The
    first of these that is declared wins:

    1. `meta: {releasekit: {unique_key: ...}}` (a column or a list; `[]` for no key): said for
       releasekit alone, so it may differ from dbt's merge key, or turn the diff off;
    2. dbt's `unique_key` config (incremental models, snapshots), a column or a list;
    3. a `primary_key` constraint, on the model or on a column;
    4. a column with both dbt's `unique` and `not_null` tests (the first in declared order).
    """
    ours = (config.get("meta") or {}).get("releasekit")
    if isinstance(ours, dict) and "unique_key" in ours:
        return _column_list(ours["unique_key"])
    if config.get("unique_key"):
        return _column_list(config["unique_key"])
    declared = list(getattr(n, "columns", {}))
    ordered = sorted(tested, key=lambda c: (declared.index(c) if c in declared else len(declared), c))
    return _primary_key(n) or tuple(ordered[:1])


def _column_list(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)


def _primary_key(n: Any) -> tuple[str, ...]:
    for constraint in getattr(n, "constraints", ()):
        if _is_primary_key(constraint) and constraint.columns:
            return tuple(constraint.columns)
    columns = getattr(n, "columns", {})
    return tuple(name for name, c in columns.items() if any(map(_is_primary_key, c.constraints)))


def _is_primary_key(constraint: Any) -> bool:
    return str(getattr(constraint.type, "value", constraint.type)) == "primary_key"


def _tested_columns(manifest: Manifest) -> dict[str, frozenset[str]]:
    """Node -> its columns that dbt's `unique` and `not_null` tests both cover."""
    seen: dict[tuple[str, str], set[str]] = {}
    for n in manifest.nodes.values():
        meta = getattr(n, "test_metadata", None)
        column, node = getattr(n, "column_name", None), getattr(n, "attached_node", None)
        if meta is not None and meta.namespace is None and column and node:
            seen.setdefault((node, column), set()).add(meta.name)
    found: dict[str, frozenset[str]] = {}
    for (node, column), names in seen.items():
        if {"unique", "not_null"} <= names:
            found[node] = found.get(node, frozenset()) | {column}
    return found


def _metadata(n: Any, config: dict[str, Any]) -> str:
    columns = {
        name: {
            "description": c.description,
            "meta": c.meta,
            "tags": c.tags,
            "data_type": c.data_type,
            "constraints": [constraint.to_dict() for constraint in c.constraints],
        }
        for name, c in getattr(n, "columns", {}).items()
    }
    described = {key: config.get(key) for key in METADATA_CONFIG}
    return digest({"description": n.description, "columns": columns, **described})


def _exposure(e: Any) -> Exposure:
    return Exposure(
        unique_id=e.unique_id,
        name=e.name,
        type=str(getattr(e.type, "value", e.type)),
        owner=_owner(e.owner),
        depends_on=tuple(e.depends_on.nodes),
    )


def _owner(owner: Any) -> str:
    email = owner.email
    return str(owner.name or (", ".join(email) if isinstance(email, list) else email) or "")


def _source(s: Any) -> Node:
    return Node(
        unique_id=s.unique_id,
        name=s.name,
        resource_type="source",
        package=s.package_name,
        materialized="source",
        content="",
        relation=str(s.relation_name or ""),
        path=s.original_file_path,
        fqn=tuple(s.fqn),
    )


def _macro(m: Any, internal: set[str]) -> Macro:
    calls = tuple(uid for uid in m.depends_on.macros if uid not in internal)
    return Macro(
        unique_id=m.unique_id,
        package=m.package_name,
        sql=m.macro_sql,
        macros=calls,
        reads=scan_reads(m.macro_sql),
    )


def _with_materialization(node: Node, macros: dict[str, Macro], adapter: str) -> Node:
    """A project-defined materialization decides content too: count it as a called macro."""
    names = (f"materialization_{node.materialized}_{adapter}", f"materialization_{node.materialized}_default")
    found = tuple(uid for uid, m in macros.items() if uid.rsplit(".", 1)[-1] in names)
    if not found:
        return node
    return dataclasses.replace(node, macros=(*node.macros, *found))


def _tests_by_node(manifest: Manifest, macros: dict[str, Macro]) -> dict[str, dict[str, str]]:
    """Test unique id -> digest of its definition, for every node each test reads."""
    found: dict[str, dict[str, str]] = {}
    definitions: list[tuple[str, Any, dict[str, Any]]] = [
        (uid, n, _data_test(n, macros))
        for uid, n in manifest.nodes.items()
        if n.resource_type.value == "test"
    ]
    definitions += [(uid, u, _unit_test(u)) for uid, u in manifest.unit_tests.items()]
    for uid, test, definition in definitions:
        for parent in test.depends_on.nodes:
            found.setdefault(parent, {})[uid] = digest(definition)
    return found


def _data_test(n: Any, macros: dict[str, Macro]) -> dict[str, Any]:
    metadata = n.test_metadata.to_dict() if getattr(n, "test_metadata", None) else None
    return {
        "sql": n.raw_code,
        "metadata": metadata,
        "config": _content_config(n.config.to_dict()),
        "macros": [macros[uid].sql for uid in n.depends_on.macros if uid in macros],
    }


def _unit_test(u: Any) -> dict[str, Any]:
    return {
        "given": [g.to_dict() for g in u.given],
        "expect": u.expect.to_dict(),
        "overrides": u.overrides.to_dict() if u.overrides else None,
        "config": _content_config(u.config.to_dict()),
    }


def _content_config(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in NON_CONTENT_CONFIG}


def _seed_checksum(n: Any) -> str:
    # dbt hashes only the path of seeds over 1 MiB; hash the content ourselves.
    digest = hashlib.sha256()
    with open(Path(n.root_path) / n.original_file_path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def _package_names(manifest: Manifest) -> set[str]:
    return {m.package_name for m in manifest.macros.values()} | {
        n.package_name for n in manifest.nodes.values()
    }


def _split_vars(
    project_vars: dict[str, Any], packages: set[str]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    global_vars = {k: v for k, v in project_vars.items() if not (k in packages and isinstance(v, dict))}
    scoped = {k: v for k, v in project_vars.items() if k in packages and isinstance(v, dict)}
    return global_vars, scoped
