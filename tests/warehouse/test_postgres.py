"""What only PostgreSQL needs: settings, names that fit 63 bytes, dependants, lock
timeouts, interrupted switches, and readers that never see a mix of releases.

Every test gets its own database (conftest.postgres_database). Numbers measured under
concurrency are printed; run with `-s` (or `-rP`) to see them.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import pytest

from releasekit.errors import WarehouseBusyError, WarehouseError
from releasekit.warehouse.base import MARKER_VIEW, Capabilities, Connection
from releasekit.warehouse.naming import qualify, quote
from releasekit.warehouse.postgres import PostgresWarehouse, staging_schema
from releasekit.warehouse.registry import connect
from tests.support.warehouse import make_marker, postgres_connection, postgres_dsn, run_sql

pytestmark = pytest.mark.postgres

PHYSICAL = "rk__physical"
ENV = "prod"


@dataclass
class Side:
    """A consumer's own autocommit connection to the test database."""

    con: Any

    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        return run_sql(self.con, statement)

    def served(self, schema: str, view: str) -> int:
        return int(self.sql(f"SELECT release_id FROM {qualify(schema, view)}")[0][0])

    def schema_exists(self, schema: str) -> bool:
        with self.con.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
            return cur.fetchone() is not None


@pytest.fixture
def side(postgres_database: str) -> Iterator[Side]:
    con = _open(postgres_database)
    try:
        yield Side(con)
    finally:
        con.close()


@pytest.fixture
def open_warehouse(postgres_database: str) -> Iterator[Any]:
    """Open PostgresWarehouse instances on the test database with extra settings."""
    opened: list[PostgresWarehouse] = []

    def open_(**settings: Any) -> PostgresWarehouse:
        opened.append(PostgresWarehouse(postgres_connection(postgres_database, **settings)))
        return opened[-1]

    yield open_
    for warehouse in opened:
        warehouse.close()


def _open(database: str, *, autocommit: bool = True) -> Any:
    con = psycopg2.connect(**postgres_dsn(database))
    con.autocommit = autocommit
    return con


def _models(count: int) -> list[str]:
    return [f"model_{i:02d}" for i in range(count)]


def _release(models: list[str], release_id: int) -> dict[str, str]:
    return {model: f"{model}__r{release_id}" for model in models}


def _build(side: Side, models: list[str], releases: tuple[int, ...] = (1, 2)) -> None:
    statements = [f"CREATE SCHEMA IF NOT EXISTS {quote(PHYSICAL)}"]
    for release_id in releases:
        for relation in _release(models, release_id).values():
            table = qualify(PHYSICAL, relation)
            statements.append(f"CREATE TABLE {table} AS SELECT {release_id}::int AS release_id")
    side.sql(";".join(statements))


def _switch(warehouse: PostgresWarehouse, models: list[str], release_id: int, env: str = ENV) -> None:
    warehouse.switch(
        env, _release(models, release_id), physical_schema=PHYSICAL, marker=make_marker(release_id)
    )


# --- connecting ----------------------------------------------------------------------------


def test_capabilities() -> None:
    assert PostgresWarehouse.capabilities == Capabilities(transactional_ddl=True, grants=True)


def test_the_registry_opens_postgres(postgres_database: str) -> None:
    warehouse = connect(postgres_connection(postgres_database))
    try:
        assert isinstance(warehouse, PostgresWarehouse)
        assert warehouse.relations("public") == set()
    finally:
        warehouse.close()


def test_a_server_that_is_not_there_is_named_with_a_hint() -> None:
    settings = {"host": "127.0.0.1", "port": 1, "user": "postgres", "connect_timeout": 2}

    with pytest.raises(WarehouseError) as raised:
        PostgresWarehouse(Connection(type="postgres", database="analytics", settings=settings))

    assert "127.0.0.1:1/analytics" in str(raised.value)
    assert raised.value.hint is not None and "dbname" in raised.value.hint


def test_a_missing_database_is_named(postgres_server: Any) -> None:
    with pytest.raises(WarehouseError, match="rk_test_no_such_db"):
        PostgresWarehouse(postgres_connection("rk_test_no_such_db"))


@pytest.mark.parametrize("settings", [{"lock_timeout_ms": "soon"}, {"lock_timeout_ms": 0}, {"port": "x"}])
def test_bad_settings_are_refused_before_connecting(settings: dict[str, Any]) -> None:
    with pytest.raises(WarehouseError, match=next(iter(settings))):
        PostgresWarehouse(postgres_connection("anything", **settings))


def test_dbt_postgres_credentials_connect_as_they_are(postgres_database: str) -> None:
    # What releasekit.dbtcore.profile keeps of a dbt-postgres target: credentials.to_dict().
    from dbt.adapters.postgres.connections import PostgresCredentials
    from dbt_common.helper_types import Port

    credentials = PostgresCredentials(
        host="127.0.0.1",
        port=Port(5432),
        user="postgres",
        password="",
        database=postgres_database,
        schema="s",
    ).to_dict()
    connection = Connection(type="postgres", database=credentials["database"], settings=credentials)

    with PostgresWarehouse(connection) as warehouse:
        assert warehouse.read_marker("s") is None


def test_close_is_idempotent_and_later_use_is_a_warehouse_error(open_warehouse: Any) -> None:
    warehouse = open_warehouse()
    warehouse.close()
    warehouse.close()

    with pytest.raises(WarehouseError):
        warehouse.relations("prod")


def test_the_role_setting_is_assumed(open_warehouse: Any, side: Side, postgres_database: str) -> None:
    role = f"rk_role_{postgres_database[-12:]}"
    side.sql(
        f"CREATE ROLE {quote(role)}; GRANT CREATE ON DATABASE {quote(postgres_database)} TO {quote(role)}"
    )
    try:
        with open_warehouse(role=role) as warehouse:
            warehouse.switch(ENV, {}, physical_schema=PHYSICAL, marker=make_marker(1))
        owner = side.sql(f"SELECT viewowner FROM pg_views WHERE viewname = '{MARKER_VIEW}'")
        assert owner == [(role,)]
    finally:
        side.sql(f"DROP OWNED BY {quote(role)}; DROP ROLE {quote(role)}")


# --- names ---------------------------------------------------------------------------------


def test_staging_names_fit_and_stay_distinct() -> None:
    assert staging_schema("prod") == "prod__rk_next"
    long_names = ["e" * 63, "e" * 62 + "f", "é" * 31 + "x", "x" + "é" * 31, "a" * 54]
    stagings = [staging_schema(name) for name in long_names]
    assert all(len(name.encode()) <= 63 for name in stagings)
    assert len(set(stagings)) == len(stagings)
    assert staging_schema("a" * 54) == "a" * 54 + "__rk_next"  # exactly 63 bytes


def test_names_over_63_bytes_are_refused_before_anything_changes(open_warehouse: Any, side: Side) -> None:
    warehouse = open_warehouse()
    _build(side, ["orders"], releases=(1,))
    too_long = "é" * 32  # 64 bytes: PostgreSQL would cut it to 62 and call it another name

    for schema, views in [(too_long, {"orders": "orders__r1"}), (ENV, {too_long: "orders__r1"})]:
        with pytest.raises(WarehouseError, match="64 bytes"):
            warehouse.switch(schema, views, physical_schema=PHYSICAL, marker=make_marker(1))

    assert side.sql("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'é%' OR nspname = 'prod'") == [(0,)]
    assert warehouse.relations(too_long) == set()
    warehouse.drop_schema(too_long)  # cannot exist: nothing to do


HOSTILE_SCHEMAS = [
    'a"b',
    "x; DROP SCHEMA public; --",
    "$(id)`whoami`",
    "ünïcødé 环境",
    "e" * 63,
    "é" * 31 + "x",  # 63 bytes; its staging name is cut on a character boundary
]


def test_hostile_schema_names_work_end_to_end(open_warehouse: Any, side: Side) -> None:
    warehouse = open_warehouse()
    physical = 'phys "$(id)"; ü' + "p" * 45  # 63 bytes
    view = 'v"; --$(x)' + "ü" * 26  # 62 bytes
    side.sql(f"CREATE SCHEMA {quote(physical)}")
    for release_id in (1, 2):
        side.sql(f"CREATE TABLE {qualify(physical, f'r{release_id}')} AS SELECT {release_id} AS release_id")

    for schema in HOSTILE_SCHEMAS:
        for release_id in (1, 2):
            marker = make_marker(release_id, env=schema)
            warehouse.switch(schema, {view: f"r{release_id}"}, physical_schema=physical, marker=marker)
            assert warehouse.read_marker(schema) == marker
            assert warehouse.view_targets(schema) == {view: f"r{release_id}"}
            assert side.served(schema, view) == release_id
        assert warehouse.relations(schema) == {view, MARKER_VIEW}
        warehouse.drop_relations(schema, [view])
        assert warehouse.relations(schema) == {MARKER_VIEW}
        warehouse.drop_schema(schema)
        assert not side.schema_exists(schema)
    assert side.sql("SELECT count(*) FROM pg_namespace WHERE nspname LIKE '%rk_next%'") == [(0,)]


# --- the switch keeps the schema -------------------------------------------------------------


def test_the_schema_keeps_its_grants_and_the_objects_releasekit_did_not_make(
    open_warehouse: Any, side: Side, postgres_database: str
) -> None:
    warehouse = open_warehouse()
    models = _models(3)
    _build(side, models)
    _switch(warehouse, models, 1)
    reader = f"rk_reader_{postgres_database[-12:]}"
    side.sql(f"CREATE ROLE {quote(reader)}; GRANT USAGE ON SCHEMA {ENV} TO {quote(reader)}")
    side.sql(f"CREATE TABLE {ENV}.notes AS SELECT 1 AS x; CREATE SEQUENCE {ENV}.counter")
    side.sql(f"CREATE VIEW {ENV}.legacy AS SELECT * FROM {PHYSICAL}.model_00__r1")
    side.sql(f"CREATE VIEW consumer_legacy AS SELECT * FROM {ENV}.legacy")  # reads a view we keep
    try:
        _switch(warehouse, models, 2)

        usage = side.sql(f"SELECT has_schema_privilege('{reader}', '{ENV}', 'USAGE')")
        assert usage == [(True,)]
        assert warehouse.relations(ENV) == {*models, "notes", "legacy", MARKER_VIEW}
        assert side.served("public", "consumer_legacy") == 1
        assert warehouse.view_targets(ENV) == _release(models, 2)
    finally:
        side.sql(f"DROP OWNED BY {quote(reader)}; DROP ROLE {quote(reader)}")


@pytest.fixture
def roles(side: Side, postgres_database: str) -> Iterator[tuple[str, str]]:
    """Two roles of the server (roles are not per database), dropped afterwards."""
    made = (f"rk_bi_{postgres_database[-12:]}", f"rk_hand_{postgres_database[-12:]}")
    side.sql(";".join(f"CREATE ROLE {quote(role)}" for role in made))
    try:
        yield made
    finally:
        side.sql(";".join(f"DROP OWNED BY {quote(role)}; DROP ROLE {quote(role)}" for role in made))


def _can(side: Side, role: str, view: str, privilege: str = "SELECT") -> bool:
    sql = f"SELECT has_table_privilege('{role}', '{qualify(ENV, view)}', '{privilege}')"
    return bool(side.sql(sql)[0][0])


def test_declared_grants_hold_on_every_view_after_every_switch(
    open_warehouse: Any, side: Side, roles: tuple[str, str]
) -> None:
    bi, _ = roles
    warehouse, models = open_warehouse(), _models(3)
    _build(side, models)
    grants = {"select": [bi]}
    warehouse.switch(ENV, _release(models, 1), physical_schema=PHYSICAL, marker=make_marker(1), grants=grants)
    assert all(_can(side, bi, view) for view in [*models, MARKER_VIEW])
    assert not _can(side, bi, models[0], "INSERT")
    assert side.sql(f"SELECT has_schema_privilege('{bi}', '{ENV}', 'USAGE')") == [(True,)]

    # Release 2 replaces two views and keeps one: the new views get the grant, and the kept
    # view is the same object as before.
    kept = side.sql(f"SELECT '{qualify(ENV, models[0])}'::regclass::oid")
    views = {**_release(models, 2), models[0]: f"{models[0]}__r1"}
    warehouse.switch(ENV, views, physical_schema=PHYSICAL, marker=make_marker(2), grants=grants)
    assert all(_can(side, bi, view) for view in [*models, MARKER_VIEW])
    assert side.sql(f"SELECT '{qualify(ENV, models[0])}'::regclass::oid") == kept


def test_grants_made_by_hand_on_a_replaced_view_carry_over(
    open_warehouse: Any, side: Side, roles: tuple[str, str]
) -> None:
    _, hand = roles
    warehouse, models = open_warehouse(), _models(2)
    _build(side, models)
    _switch(warehouse, models, 1)
    side.sql(f"GRANT SELECT, REFERENCES ON {qualify(ENV, models[1])} TO {quote(hand)} WITH GRANT OPTION")

    _switch(warehouse, models, 2)

    assert _can(side, hand, models[1]) and _can(side, hand, models[1], "REFERENCES")
    assert _can(side, hand, models[1], "SELECT WITH GRANT OPTION")
    assert not _can(side, hand, models[0])


def test_a_grant_to_a_role_that_does_not_exist_changes_nothing(open_warehouse: Any, side: Side) -> None:
    warehouse, models = open_warehouse(), _models(2)
    _build(side, models)
    _switch(warehouse, models, 1)
    with pytest.raises(WarehouseError, match="rk_no_such_role") as refused:
        warehouse.switch(
            ENV,
            _release(models, 2),
            physical_schema=PHYSICAL,
            marker=make_marker(2),
            grants={"select": ["rk_no_such_role"]},
        )
    assert "nothing changed" in (refused.value.hint or "")
    assert warehouse.view_targets(ENV) == _release(models, 1)
    assert warehouse.read_marker(ENV) == make_marker(1)


def test_view_targets_need_the_comment_and_the_dependency_to_agree(open_warehouse: Any, side: Side) -> None:
    warehouse = open_warehouse()
    _build(side, ["orders", "customers"])
    _switch(warehouse, ["orders", "customers"], 1)
    # Someone redefines a view of ours; its comment survives CREATE OR REPLACE.
    side.sql(f"CREATE OR REPLACE VIEW {ENV}.orders AS SELECT * FROM {PHYSICAL}.customers__r2")

    assert warehouse.view_targets(ENV) == {"customers": "customers__r1"}


# --- dependants ------------------------------------------------------------------------------


def test_dependants_are_refused_listed_and_nothing_changes(open_warehouse: Any, side: Side) -> None:
    warehouse = open_warehouse()
    models = ["orders", "customers", "old"]
    _build(side, models)
    _switch(warehouse, models, 1)
    side.sql(
        "CREATE SCHEMA analytics;"
        f"CREATE VIEW analytics.orders_report AS SELECT * FROM {ENV}.orders;"
        f"CREATE MATERIALIZED VIEW analytics.frozen AS SELECT * FROM {ENV}.old;"
        f"CREATE VIEW {ENV}.summary AS SELECT count(*) AS n FROM {ENV}.customers;"
        f"CREATE FUNCTION analytics.latest() RETURNS bigint LANGUAGE sql "
        f"BEGIN ATOMIC SELECT release_id FROM {ENV}.{MARKER_VIEW}; END"
    )

    with pytest.raises(WarehouseError) as raised:
        warehouse.switch(
            ENV,
            _release(["orders", "customers"], 2),
            physical_schema=PHYSICAL,
            marker=make_marker(2),
            drop=["old"],
        )

    message = str(raised.value)
    for dependant in ["analytics.orders_report", "analytics.frozen", f"{ENV}.summary", "analytics.latest()"]:
        assert dependant in message
    assert "4 object(s)" in message and "recreate them" in message
    assert warehouse.read_marker(ENV) == make_marker(1)
    assert warehouse.view_targets(ENV) == _release(models, 1)
    assert side.served("analytics", "orders_report") == 1
    assert not side.schema_exists(staging_schema(ENV))

    side.sql(f"DROP SCHEMA analytics CASCADE; DROP VIEW {ENV}.summary")
    warehouse.switch(
        ENV,
        _release(["orders", "customers"], 2),
        physical_schema=PHYSICAL,
        marker=make_marker(2),
        drop=["old"],
    )
    assert warehouse.view_targets(ENV) == _release(["orders", "customers"], 2)


def test_drop_schema_refuses_dependants_outside_it(open_warehouse: Any, side: Side) -> None:
    warehouse = open_warehouse()
    _build(side, ["orders"])
    _switch(warehouse, ["orders"], 1)
    side.sql(f"CREATE VIEW public.report AS SELECT * FROM {ENV}.orders")
    side.sql(f"CREATE VIEW {ENV}.inside AS SELECT * FROM {ENV}.orders")  # goes with the schema

    with pytest.raises(WarehouseError, match=r"public\.report") as raised:
        warehouse.drop_schema(ENV)

    assert "inside" not in str(raised.value)
    assert side.schema_exists(ENV)
    side.sql("DROP VIEW public.report")
    warehouse.drop_schema(ENV)
    assert not side.schema_exists(ENV)


# --- interrupted switches ----------------------------------------------------------------------

SWITCH_IN_CHILD = """
import sys
from releasekit.warehouse.base import Connection, ReleaseMarker
from releasekit.warehouse.postgres import PostgresWarehouse

settings = {{"host": "127.0.0.1", "port": 5432, "user": "postgres", "lock_timeout_ms": 60000}}
warehouse = PostgresWarehouse(Connection(type="postgres", database=sys.argv[1], settings=settings))
views = {{m: m + "__r2" for m in {models!r}}}
marker = ReleaseMarker(env="prod", release_id=2, git_sha="2", switched_at="t")
warehouse.switch("prod", views, physical_schema="rk__physical", marker=marker)
"""


def _switch_backends(side: Side, database: str, *, waiting: bool) -> list[int]:
    """Server processes of releasekit sessions on `database` (only those waiting for a lock)."""
    rows = side.sql(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'releasekit' "
        f"AND datname = '{database}'" + (" AND wait_event_type = 'Lock'" if waiting else "")
    )
    return [int(pid) for (pid,) in rows]


def _wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_switch_killed_mid_swap_leaves_the_old_release_and_the_next_switch_works(
    open_warehouse: Any, side: Side, postgres_database: str
) -> None:
    models = _models(5)
    _build(side, models)
    warehouse = open_warehouse()
    _switch(warehouse, models, 1)
    holder = _open(postgres_database, autocommit=False)  # a reader in a long transaction
    run_sql(holder, f"SELECT * FROM {ENV}.model_03")
    child = subprocess.Popen([sys.executable, "-c", SWITCH_IN_CHILD.format(models=models), postgres_database])
    try:
        _wait_for(lambda: _switch_backends(side, postgres_database, waiting=True) != [])
        [backend] = _switch_backends(side, postgres_database, waiting=True)
        child.kill()  # kill -9 while its swap waits for the reader's lock
        child.wait()
    finally:
        holder.commit()
        holder.close()
    # The orphaned server backend gets the lock, finds its client gone and rolls back.
    _wait_for(lambda: backend not in _switch_backends(side, postgres_database, waiting=False))

    assert warehouse.read_marker(ENV) == make_marker(1)
    assert warehouse.view_targets(ENV) == _release(models, 1)
    assert not side.schema_exists(staging_schema(ENV))
    _switch(warehouse, models, 2)
    assert warehouse.view_targets(ENV) == _release(models, 2)


def test_a_leftover_staging_schema_of_ours_is_dropped_first(open_warehouse: Any, side: Side) -> None:
    warehouse = open_warehouse()
    _build(side, ["orders"])
    _switch(warehouse, ["orders"], 1)
    staging = staging_schema(ENV)
    side.sql(
        f"CREATE SCHEMA {staging}; COMMENT ON SCHEMA {staging} IS 'releasekit staging schema for {ENV}';"
        f"CREATE VIEW {staging}.orders AS SELECT * FROM {PHYSICAL}.orders__r2"
    )

    _switch(warehouse, ["orders"], 2)

    assert warehouse.view_targets(ENV) == {"orders": "orders__r2"}
    assert not side.schema_exists(staging)


def test_someone_elses_schema_under_the_staging_name_is_left_alone(open_warehouse: Any, side: Side) -> None:
    warehouse = open_warehouse()
    _build(side, ["orders"])
    _switch(warehouse, ["orders"], 1)
    staging = staging_schema(ENV)
    side.sql(f"CREATE SCHEMA {staging}; CREATE TABLE {staging}.precious AS SELECT 1 AS x")

    with pytest.raises(WarehouseError, match=staging):
        _switch(warehouse, ["orders"], 2)

    assert side.sql(f"SELECT x FROM {staging}.precious") == [(1,)]
    assert warehouse.read_marker(ENV) == make_marker(1)


# --- concurrency --------------------------------------------------------------------------------


@dataclass
class Reader:
    """A consumer looping over reads on its own connection, until told to stop.

    mode "transaction": one REPEATABLE READ transaction, one statement per view;
    "statement": one statement over every view (UNION ALL); "each": autocommit statements.
    """

    database: str
    views: list[str]  # read in this order; the marker is one of them
    mode: str
    reads: list[set[int]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        con = _open(self.database, autocommit=self.mode != "transaction")
        if self.mode == "transaction":
            con.set_session(isolation_level="REPEATABLE READ")
        try:
            while not self.stop.is_set():
                self.reads.append(self._read(con))
        except psycopg2.Error as exc:
            self.errors.append(str(exc))
        finally:
            con.close()

    def _read(self, con: Any) -> set[int]:
        selects = [f"SELECT release_id FROM {qualify(ENV, view)}" for view in self.views]
        statements = [" UNION ALL ".join(selects)] if self.mode == "statement" else selects
        seen: set[int] = set()
        with con.cursor() as cur:
            for statement in statements:
                started = time.monotonic()
                cur.execute(statement)
                seen.update(int(row[0]) for row in cur.fetchall())
                self.latencies.append(time.monotonic() - started)
        if self.mode == "transaction":
            con.commit()
        return seen


def _start(readers: list[Reader]) -> list[threading.Thread]:
    threads = [threading.Thread(target=reader.run) for reader in readers]
    for thread in threads:
        thread.start()
    return threads


def _stop(readers: list[Reader], threads: list[threading.Thread]) -> None:
    for reader in readers:
        reader.stop.set()
    for thread in threads:
        thread.join()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def test_readers_never_see_a_mix_of_releases(open_warehouse: Any, side: Side, postgres_database: str) -> None:
    models = _models(30)
    _build(side, models)
    naps: list[float] = []
    settings = {"lock_timeout_ms": 200}
    warehouse = PostgresWarehouse(postgres_connection(postgres_database, **settings), sleep=naps.append)
    alone = []
    for number in range(10):
        started = time.monotonic()
        _switch(warehouse, models, 1 + number % 2)
        alone.append(time.monotonic() - started)
    # Both read the marker first, then the views in another order than the switch's.
    readers = [
        Reader(postgres_database, [MARKER_VIEW, *models], "transaction"),
        Reader(postgres_database, [MARKER_VIEW, *models[::-1]], "statement"),
    ]
    threads = _start(readers)
    durations = []
    try:
        for number in range(120):
            started = time.monotonic()
            _switch(warehouse, models, 1 + number % 2)
            durations.append(time.monotonic() - started)
    finally:
        _stop(readers, threads)
        warehouse.close()

    reads = [seen for reader in readers for seen in reader.reads]
    mixed = [seen for seen in reads if len(seen) != 1]
    latencies = [latency for reader in readers for latency in reader.latencies]
    print(
        f"\n30 views, 120 switches under 2 readers: {len(reads)} reads "
        f"(marker + 30 views each, in one transaction or one statement), {len(mixed)} mixed, "
        f"errors {sum(len(r.errors) for r in readers)}; "
        f"switch alone median {_ms(statistics.median(alone))}; under readers median "
        f"{_ms(statistics.median(durations))}, max {_ms(max(durations))}, {len(naps)} retries; "
        f"max read latency {_ms(max(latencies))}"
    )
    assert [reader.errors for reader in readers] == [[], []]
    assert mixed == []
    assert {1, 2} <= set().union(*reads), "the readers never overlapped the switches"


def test_a_long_reader_blocks_the_switch_and_other_readers_only_for_the_lock_timeout(
    open_warehouse: Any, side: Side, postgres_database: str
) -> None:
    models = _models(10)
    _build(side, models)
    warehouse = open_warehouse(lock_timeout_ms=200)
    _switch(warehouse, models, 1)
    holder = _open(postgres_database, autocommit=False)
    run_sql(holder, f"SELECT * FROM {ENV}.model_05")  # and keeps its transaction open
    holder_pid = int(run_sql(holder, "SELECT pg_backend_pid()")[0][0])
    readers = [Reader(postgres_database, [MARKER_VIEW, "model_00"], "each")]
    threads = _start(readers)
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseBusyError) as raised:
            _switch(warehouse, models, 2)
        gave_up_after = time.monotonic() - started
        assert warehouse.read_marker(ENV) == make_marker(1)
        holder.commit()
        started = time.monotonic()
        _switch(warehouse, models, 2)
        switched_after = time.monotonic() - started
    finally:
        _stop(readers, threads)
        holder.close()

    slowest = max(readers[0].latencies)
    print(
        f"\nlock_timeout 200 ms: gave up after {_ms(gave_up_after)}; once the reader ended, "
        f"switched in {_ms(switched_after)}; a looping reader's {len(readers[0].latencies)} reads "
        f"took at most {_ms(slowest)}"
    )
    message = str(raised.value)
    assert f"pid {holder_pid}" in message and "idle in transaction" in message and "model_05" in message
    assert "lock_timeout (200 ms)" in message and "pg_terminate_backend" in message
    assert gave_up_after < 4.0
    assert readers[0].errors == []
    # The lock timeout (0.2 s) plus scheduling on a loaded machine; never the switch's whole
    # wait (its retries, seconds), which a reader queued behind it would share.
    assert slowest < 0.9
    assert warehouse.read_marker(ENV) == make_marker(2)
    assert {1, 2} <= set().union(*readers[0].reads)


def test_readers_that_take_the_marker_last_make_the_switch_give_way_never_the_reader(
    open_warehouse: Any, side: Side, postgres_database: str
) -> None:
    # The known limit of locking every old view: a reader that holds a view and then waits
    # for one the switch holds deadlocks with it. The switch, whose lock timeout is under
    # deadlock_timeout, always gives way; with readers that never pause it may not get
    # through at all. Readers see no error, no mix, and wait at most the lock timeout.
    models = _models(10)
    _build(side, models)
    warehouse = open_warehouse(lock_timeout_ms=100)
    _switch(warehouse, models, 1)
    readers = [
        Reader(postgres_database, [MARKER_VIEW, *models], "transaction"),
        Reader(postgres_database, [*models[::-1], MARKER_VIEW], "statement"),
    ]
    threads = _start(readers)
    outcomes = []
    try:
        for release_id in (2, 1, 2):
            try:
                _switch(warehouse, models, release_id)
                outcomes.append("switched")
            except WarehouseBusyError:
                outcomes.append("gave up")
    finally:
        _stop(readers, threads)

    reads = [seen for reader in readers for seen in reader.reads]
    slowest = max(latency for reader in readers for latency in reader.latencies)
    print(f"\ncross-ordered readers: switches {outcomes}; {len(reads)} reads, max latency {_ms(slowest)}")
    assert [reader.errors for reader in readers] == [[], []]
    assert all(len(seen) == 1 for seen in reads)
    # The lock timeout (0.1 s) plus scheduling on a loaded machine; under the server's
    # deadlock_timeout (1 s), which a reader would reach if the switch did not give way.
    assert slowest < 0.9


def test_views_that_keep_their_relation_are_left_alone(
    open_warehouse: Any, side: Side, postgres_database: str
) -> None:
    models = _models(5)
    _build(side, models)
    warehouse = open_warehouse(lock_timeout_ms=100)
    _switch(warehouse, models, 1)
    oids = dict(side.sql(f"SELECT relname, oid FROM pg_class WHERE relnamespace = '{ENV}'::regnamespace"))
    side.sql(f"CREATE VIEW public.report AS SELECT * FROM {ENV}.model_01")  # a dependant, on a kept view
    holder = _open(postgres_database, autocommit=False)
    run_sql(holder, f"SELECT * FROM {ENV}.model_02")  # a long reader, on a kept view
    try:
        changed = {**_release(models, 1), "model_04": "model_04__r2"}
        warehouse.switch(ENV, changed, physical_schema=PHYSICAL, marker=make_marker(2))
    finally:
        holder.close()

    after = dict(side.sql(f"SELECT relname, oid FROM pg_class WHERE relnamespace = '{ENV}'::regnamespace"))
    assert {name for name in oids if oids[name] != after.get(name)} == {"model_04", MARKER_VIEW}
    assert warehouse.view_targets(ENV) == changed
    assert side.served("public", "report") == 1
