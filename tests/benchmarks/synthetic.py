"""Synthetic dbt projects for benchmarks: N models in a layered DAG over one raw table.

The raw table (`raw.events`, R rows) is made directly in the DuckDB file with SQL, not as
a dbt seed, so generating a million rows takes about a second and a build spends its time
on models. Layer 1 filters the events into event-grain tables; later layers aggregate and
combine them at user-day grain. Layers widen towards the end and each model's fan-out is
balanced, so middle layers hold models with only a handful of descendants: the shape of a
real project, where most edits touch a small corner of the DAG.

User-day grain keeps the later tables near the raw table's size (0.4-0.9M rows at
R=1M), so model work, not dbt's per-node overhead, dominates a build: a full build at
N=200, R=1M costs about what the design notes measured for such a project (~70 s here).

PostgreSQL (`warehouse="postgres"`): the same DAG and models in a database on the server at
127.0.0.1:5432 (user postgres, trust auth), `raw.events` made there with `generate_series`
(same columns and value distributions; PostgreSQL's hash, so not DuckDB's values). Model
SQL differs from DuckDB's only where DuckDB has a function PostgreSQL lacks (`datediff`).
generate_project creates the database when missing; drop_postgres_database drops it.

Everything is deterministic for a seed. Run it by hand to make a project to time:

    python tests/benchmarks/synthetic.py /tmp/synth --models 200 --rows 1000000
    python tests/benchmarks/synthetic.py /tmp/synth_pg --warehouse postgres --database rk_bench_x
"""

from __future__ import annotations

import argparse
import contextlib
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb

Warehouse = Literal["duckdb", "postgres"]

PROJECT_NAME = "synthetic"
DATABASE_FILE = "warehouse.duckdb"
EVENT_TYPES = ("view", "click", "add_to_cart", "purchase", "refund")
USERS_PER_ROW = 1 / 100  # 1M events from 10k users over a year
VIEW_SHARE = 0.15  # the rest are tables, so a build does real work
TESTED_SHARE = 0.35
_PARENT_COUNTS = (1, 2, 3)
_PARENT_WEIGHTS = (45, 40, 15)
_EDIT_MARK = "as rk_edit_"
PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"


@dataclass(frozen=True)
class SyntheticProject:
    """A generated project and the DAG it was generated from.

    db_path is the DuckDB file; on PostgreSQL (`warehouse="postgres"`) no such file is
    made, and `database` names the PostgreSQL database instead.
    """

    project_dir: Path
    db_path: Path
    layers: tuple[tuple[str, ...], ...]  # model names, layer 1 first
    parents: Mapping[str, tuple[str, ...]]
    seed: int
    warehouse: Warehouse = "duckdb"
    database: str | None = None

    @property
    def profiles_dir(self) -> Path:
        return self.project_dir

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(name for layer in self.layers for name in layer)

    def layer_of(self, name: str) -> int:
        return next(i for i, layer in enumerate(self.layers, start=1) if name in layer)

    def model_path(self, name: str) -> Path:
        return self.project_dir / "models" / f"layer_{self.layer_of(name)}" / f"{name}.sql"

    def descendants(self, name: str) -> frozenset[str]:
        children = _children(self.parents)
        seen: set[str] = set()
        stack = list(children.get(name, ()))
        while stack:
            child = stack.pop()
            if child not in seen:
                seen.add(child)
                stack.extend(children.get(child, ()))
        return frozenset(seen)

    def pick_mid_model(self, max_descendants: int = 5) -> str:
        """A middle-layer model with 1..max_descendants descendants, preferring the most.

        Searches the middle layer, then later ones, then earlier ones, so the pick sits
        mid-DAG whenever the DAG allows; the same project always gives the same pick.
        """
        for layer in _layers_from_middle(len(self.layers)):
            sizes = {name: len(self.descendants(name)) for name in self.layers[layer - 1]}
            fitting = [name for name, size in sizes.items() if 1 <= size <= max_descendants]
            if fitting:
                return min(fitting, key=lambda name: (-sizes[name], name))
        raise ValueError(f"no model has between 1 and {max_descendants} descendants")

    def edit_model(self, name: str) -> None:
        """Add a constant column to the model's final select: new SQL, same tests pass.

        Each call adds another column, so repeated edits keep changing the content.
        """
        path = self.model_path(name)
        sql = path.read_text()
        number = sql.count(_EDIT_MARK) + 1
        cut = sql.rindex("\nfrom final")
        path.write_text(f"{sql[:cut]},\n    {number} {_EDIT_MARK}{number}{sql[cut:]}")


def generate_project(
    dest: Path,
    *,
    models: int = 200,
    rows: int = 1_000_000,
    layers: int = 6,
    seed: int = 1,
    warehouse: Warehouse = "duckdb",
    database: str | None = None,
) -> SyntheticProject:
    """Write a dbt project with `models` models in `layers` layers over `rows` raw events.

    On PostgreSQL, `database` (created when missing) must not hold `raw.events` yet.
    """
    if layers < 2 or models < layers or rows < 1:
        raise ValueError(f"need layers >= 2, models >= layers, rows >= 1; got {models=}, {layers=}")
    if warehouse not in ("duckdb", "postgres"):
        raise ValueError(f"warehouse must be 'duckdb' or 'postgres', not {warehouse!r}")
    if (warehouse == "postgres") != (database is not None):
        raise ValueError("name a database for PostgreSQL, and only for PostgreSQL")
    if (dest / "dbt_project.yml").exists() or (dest / DATABASE_FILE).exists():
        raise FileExistsError(f"{dest} already holds a project; generate into a fresh directory")
    if database is not None:
        _prepare_postgres_database(database)
    rng = random.Random(seed)
    names, parents = _plan_dag(rng, _layer_widths(models, layers))
    project = SyntheticProject(dest, dest / DATABASE_FILE, names, parents, seed, warehouse, database)
    _write_project_files(project)
    _write_models(rng, project)
    if database is None:
        _create_raw_events(project.db_path, rows, seed)
    else:
        _create_raw_events_postgres(database, rows, seed)
    return project


# --- the DAG -----------------------------------------------------------------------------


def _layer_widths(models: int, layers: int) -> list[int]:
    """Widths growing with depth (1:2:...:L), each at least one, summing to `models`."""
    total_weight = layers * (layers + 1) // 2
    widths = [max(1, models * layer // total_weight) for layer in range(1, layers + 1)]
    # Rounding leftovers go to the last layers, which are the widest anyway.
    layer = layers - 1
    while sum(widths) < models:
        widths[layer] += 1
        layer = layer - 1 if layer > 0 else layers - 1
    while sum(widths) > models:
        widths[widths.index(max(widths))] -= 1
    return widths


def _plan_dag(
    rng: random.Random, widths: Sequence[int]
) -> tuple[tuple[tuple[str, ...], ...], dict[str, tuple[str, ...]]]:
    names = tuple(
        tuple(f"l{layer}_m{i:03d}" for i in range(1, width + 1))
        for layer, width in enumerate(widths, start=1)
    )
    parents: dict[str, tuple[str, ...]] = {name: () for name in names[0]}
    fan_out: dict[str, int] = dict.fromkeys(parents, 0)
    for depth in range(1, len(names)):
        for name in names[depth]:
            chosen = _pick_parents(rng, names, depth, fan_out)
            parents[name] = chosen
            fan_out[name] = 0
    return names, parents


def _pick_parents(
    rng: random.Random,
    names: Sequence[Sequence[str]],
    depth: int,
    fan_out: dict[str, int],
) -> tuple[str, ...]:
    """One parent from the layer just above (so the model sits at this depth), extra ones
    from the two layers above; always the least-used candidates, which caps fan-out."""
    wanted = rng.choices(_PARENT_COUNTS, _PARENT_WEIGHTS)[0]
    chosen = [_least_used(rng, names[depth - 1], fan_out)]
    extra_pool = [n for layer in names[max(0, depth - 2) : depth] for n in layer]
    while len(chosen) < wanted and len(chosen) < len(extra_pool):
        chosen.append(_least_used(rng, [n for n in extra_pool if n not in chosen], fan_out))
    for parent in chosen:
        fan_out[parent] += 1
    return tuple(chosen)


def _least_used(rng: random.Random, candidates: Sequence[str], fan_out: Mapping[str, int]) -> str:
    fewest = min(fan_out[name] for name in candidates)
    return rng.choice([name for name in candidates if fan_out[name] == fewest])


def _children(parents: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {}
    for child, its_parents in parents.items():
        for parent in its_parents:
            children.setdefault(parent, []).append(child)
    return children


def _layers_from_middle(count: int) -> Iterator[int]:
    """Layer numbers to search for a mid model: the middle, later ones, then earlier ones.
    The last layer is left out: its models have no descendants."""
    middle = (count + 1) // 2
    yield from range(middle, count)
    yield from range(middle - 1, 0, -1)


# --- files -------------------------------------------------------------------------------

_DBT_PROJECT = f"""\
name: {PROJECT_NAME}
version: "1.0.0"
config-version: 2
profile: {PROJECT_NAME}
model-paths: ["models"]

models:
  {PROJECT_NAME}:
    +materialized: table
"""

_PROFILES = f"""\
{PROJECT_NAME}:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: {DATABASE_FILE}
      threads: 4
"""

# dbt-postgres requires a password; the server trusts local connections.
_POSTGRES_PROFILES = f"""\
{PROJECT_NAME}:
  target: dev
  outputs:
    dev:
      type: postgres
      host: {PG_HOST}
      port: {PG_PORT}
      user: {PG_USER}
      password: ""
      dbname: {{database}}
      schema: public
      threads: 4
"""

_SOURCES = """\
version: 2

sources:
  - name: raw
    schema: raw
    tables:
      - name: events
"""

_GITIGNORE = "target/\nlogs/\n*.duckdb\n*.duckdb.wal\n.releasekit/\n"


def _write_project_files(project: SyntheticProject) -> None:
    root = project.project_dir
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "dbt_project.yml").write_text(_DBT_PROJECT)
    if project.database is None:
        (root / "profiles.yml").write_text(_PROFILES)
    else:
        (root / "profiles.yml").write_text(_POSTGRES_PROFILES.format(database=project.database))
    (root / ".gitignore").write_text(_GITIGNORE)
    (root / "models" / "sources.yml").write_text(_SOURCES)


def _write_models(rng: random.Random, project: SyntheticProject) -> None:
    tested: list[tuple[str, str]] = []
    for layer, names in enumerate(project.layers, start=1):
        folder = project.project_dir / "models" / f"layer_{layer}"
        folder.mkdir(exist_ok=True)
        for name in names:
            if layer == 1:
                sql = _event_model_sql(rng)
            else:
                sql = _daily_model_sql(rng, project.parents[name], set(project.layers[0]), project.warehouse)
            (folder / f"{name}.sql").write_text(sql)
            if rng.random() < TESTED_SHARE:
                tested.append((name, "id" if layer == 1 else "activity_id"))
    (project.project_dir / "models" / "schema.yml").write_text(_schema_yml(tested))


def _schema_yml(tested: Sequence[tuple[str, str]]) -> str:
    lines = ["version: 2", "", "models:"]
    for name, key in tested:
        lines += [
            f"  - name: {name}",
            "    columns:",
            f"      - name: {key}",
            "        data_tests:",
            "          - unique",
            "          - not_null",
        ]
    return "\n".join(lines) + "\n"


def _event_model_sql(rng: random.Random) -> str:
    """Layer 1: a filtered slice of the raw events, sometimes with a window column."""
    types = sorted(rng.sample(EVENT_TYPES, rng.randint(2, 4)), key=EVENT_TYPES.index)
    in_list = ", ".join(f"'{t}'" for t in types)
    factor = rng.choice((1, 1.05, 1.1, 0.9))
    sequence = (
        ",\n        row_number() over (partition by user_id order by ts, id) as user_event_seq"
        if rng.random() < 0.35
        else ""
    )
    return f"""\
with source as (
    select id, user_id, event_type, amount, ts
    from {{{{ source('raw', 'events') }}}}
    where event_type in ({in_list}) and amount >= {rng.randrange(0, 300)}
),

final as (
    select
        id,
        user_id,
        event_type,
        cast(amount * {factor} as decimal(18, 2)) as amount,
        ts{sequence}
    from source
)

select
    id,
    user_id,
    event_type,
    amount,
    ts
from final
"""


def _daily_model_sql(
    rng: random.Random, parents: Sequence[str], event_models: set[str], warehouse: Warehouse = "duckdb"
) -> str:
    """Later layers: combinations of the parents at user-day grain, keyed by activity_id."""
    inputs = ",\n\n".join(
        f"p{i} as (\n{_daily(parent, parent in event_models, warehouse)}\n)"
        for i, parent in enumerate(parents)
    )
    if len(parents) == 1:
        combine = _filter(rng)
    elif rng.random() < 0.5:
        combine = _join(len(parents))
    else:
        combine = _union(len(parents))
    config = "{{ config(materialized='view') }}\n\n" if rng.random() < VIEW_SHARE else ""
    return f"""\
{config}with {inputs},

final as (
{combine}
)

select
    activity_id,
    user_id,
    activity_date,
    amount,
    events
from final
"""


# Whole days from 2024-01-01 to ts: PostgreSQL has no datediff, but date - date is days.
_DAY_NUMBER = {
    "duckdb": "datediff('day', date '2024-01-01', ts)",
    "postgres": "(cast(ts as date) - date '2024-01-01')",
}


def _daily(parent: str, is_event_grain: bool, warehouse: Warehouse = "duckdb") -> str:
    ref = f"{{{{ ref('{parent}') }}}}"
    if is_event_grain:
        # One key column per user and day, so a single-column unique test covers the grain.
        return (
            "    select\n"
            f"        user_id * 1000 + {_DAY_NUMBER[warehouse]} as activity_id,\n"
            "        user_id,\n"
            "        cast(ts as date) as activity_date,\n"
            "        sum(amount) as amount,\n"
            "        count(*) as events\n"
            f"    from {ref}\n"
            "    group by 1, 2, 3"
        )
    return f"    select activity_id, user_id, activity_date, amount, events\n    from {ref}"


def _join(count: int) -> str:
    others = range(1, count)
    amount = " + ".join(["p0.amount", *(f"coalesce(p{i}.amount, 0)" for i in others)])
    events = " + ".join(["p0.events", *(f"coalesce(p{i}.events, 0)" for i in others)])
    joins = "\n".join(f"    left join p{i} on p0.activity_id = p{i}.activity_id" for i in others)
    return (
        "    select\n        p0.activity_id, p0.user_id, p0.activity_date,\n"
        f"        {amount} as amount,\n        {events} as events\n    from p0\n{joins}"
    )


def _union(count: int) -> str:
    unioned = "\n        union all\n".join(f"        select * from p{i}" for i in range(count))
    return (
        "    select activity_id, user_id, activity_date, sum(amount) as amount, sum(events) as events\n"
        f"    from (\n{unioned}\n    ) as unioned\n    group by activity_id, user_id, activity_date"
    )


def _filter(rng: random.Random) -> str:
    factor = rng.choice((1, 1.1, 0.95))
    return (
        f"    select activity_id, user_id, activity_date, amount * {factor} as amount, events\n"
        f"    from p0\n    where amount >= {rng.randrange(5, 100)}"
    )


# --- the raw table -----------------------------------------------------------------------


def _create_raw_events(db_path: Path, rows: int, seed: int) -> None:
    """`raw.events` from hashes of the row number: deterministic, and fast in parallel."""
    users = max(10, int(rows * USERS_PER_ROW))
    event_types = ", ".join(f"'{t}'" for t in EVENT_TYPES)
    with duckdb.connect(str(db_path)) as connection:
        connection.execute("create schema raw")
        connection.execute(
            f"""
            create table raw.events as
            select
                range as id,
                cast(hash(range, 1, {seed}) % {users} as bigint) as user_id,
                ([{event_types}])[cast(1 + hash(range, 2, {seed}) % 5 as bigint)] as event_type,
                cast((hash(range, 3, {seed}) % 100000) / 100.0 as decimal(12, 2)) as amount,
                timestamp '2024-01-01'
                    + to_seconds(cast(hash(range, 4, {seed}) % (365 * 86400) as bigint)) as ts
            from range({rows})
            """
        )


# PostgreSQL's hashint8extended is a signed 64-bit hash: `((h % n) + n) % n` maps it onto
# 0..n-1 evenly, as DuckDB's unsigned `hash % n` does. Each column hashes the row number
# under its own seed, so the columns are independent, as in DuckDB.
def _pg_bucket(column: int, seed: int, buckets: int) -> str:
    hashed = f"hashint8extended(i, {seed * 16 + column})"
    return f"(({hashed} % {buckets} + {buckets}) % {buckets})"


def _create_raw_events_postgres(database: str, rows: int, seed: int) -> None:
    """`raw.events` with DuckDB's columns, types and value distributions (not its values):
    about 1.5 s per million rows, in one statement on one connection."""
    users = max(10, int(rows * USERS_PER_ROW))
    event_types = ", ".join(f"'{t}'" for t in EVENT_TYPES)
    seconds = 365 * 86400
    with _postgres(database) as connection, connection.cursor() as cursor:
        cursor.execute("create schema if not exists raw")
        cursor.execute(
            f"""
            create table raw.events as
            select
                i as id,
                {_pg_bucket(1, seed, users)} as user_id,
                (array[{event_types}])[1 + {_pg_bucket(2, seed, 5)}] as event_type,
                cast({_pg_bucket(3, seed, 100000)} / 100.0 as decimal(12, 2)) as amount,
                timestamp '2024-01-01' + {_pg_bucket(4, seed, seconds)} * interval '1 second' as ts
            from generate_series(cast(0 as bigint), {rows - 1}) as i
            """
        )
        # Hint bits and statistics now, not during the first (timed) build.
        cursor.execute("vacuum analyze raw.events")


def _postgres(database: str) -> Any:
    """An autocommit psycopg2 connection to `database` on the benchmark server."""
    import psycopg2

    connection = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database)
    connection.autocommit = True
    return contextlib.closing(connection)


def _prepare_postgres_database(database: str) -> None:
    """Create `database` when missing; refuse one that already holds a raw table."""
    with _postgres("postgres") as connection, connection.cursor() as cursor:
        cursor.execute("select 1 from pg_database where datname = %s", (database,))
        if cursor.fetchone() is None:
            cursor.execute(f"create database {_quote(database)}")
            return
    with _postgres(database) as connection, connection.cursor() as cursor:
        cursor.execute("select to_regclass('raw.events')")
        if cursor.fetchone()[0] is not None:
            raise FileExistsError(f"database {database} already holds raw.events; use a fresh one")


def drop_postgres_database(database: str) -> None:
    """Drop a database generate_project made, even while sessions are still connected."""
    with _postgres("postgres") as connection, connection.cursor() as cursor:
        cursor.execute(f"drop database if exists {_quote(database)} with (force)")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warehouse", choices=("duckdb", "postgres"), default="duckdb")
    parser.add_argument("--database", help="PostgreSQL database to create and fill (postgres only)")
    args = parser.parse_args(argv)
    if args.warehouse == "postgres" and not args.database:
        parser.error("--warehouse postgres needs --database")
    project = generate_project(
        args.dest,
        models=args.models,
        rows=args.rows,
        layers=args.layers,
        seed=args.seed,
        warehouse=args.warehouse,
        database=args.database,
    )
    print(f"{project.project_dir}: layers {[len(layer) for layer in project.layers]}")
    if project.database is not None:
        print(f"PostgreSQL database {project.database} (drop it when done)")
    mid = project.pick_mid_model()
    print(f"mid model {mid}, descendants {sorted(project.descendants(mid))}")


if __name__ == "__main__":
    main()
