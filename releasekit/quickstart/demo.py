"""The quickstart's demo dbt project: template files plus generated shop data.

The project (models, tests, macro, profile) ships as package data in
`releasekit/resources/demo/`. Its data is generated here from a seeded `random.Random`, so
a quickstart is the same on every machine and small enough to build in seconds:
- the catalogue and the customer accounts are dbt seeds (they change with code);
- orders, their items and payments are *sources*: tables in the warehouse's `raw` schema
  that the shop's loader writes outside dbt (`load_raw` stands in for it). Besides the
  first load, the demo holds two more days of them: a good one, and one the loader got
  wrong (it sent some of the previous day's orders again), for `releasekit refresh`.
"""

from __future__ import annotations

import csv
import dataclasses
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from releasekit.errors import ReleasekitError
from releasekit.warehouse.duckdb_load import TableRows, append_rows

PROJECT_NAME = "jaffle_demo"
DATABASE_FILE = "warehouse.duckdb"
STAGING_MODELS = ("stg_customers", "stg_products", "stg_orders", "stg_order_items", "stg_payments")
MART_MODELS = ("orders", "customers", "revenue_daily", "product_performance")
SEEDS = ("raw_customers", "raw_products")
# Tables the shop's loader writes into the warehouse, declared as dbt sources.
RAW_SCHEMA = "raw"
SOURCES = ("orders", "order_items", "payments")

# The var that differs between environments, and the only models that read it.
DEMO_VAR = "include_test_customers"
DEMO_VAR_READERS = ("customers", "revenue_daily")

# The quickstart's "change a model on a branch" step: recognise revenue when an order is
# placed rather than when it ships. It changes `orders` and its two descendants
# (`customers`, `revenue_daily`); every data and unit test still passes.
DEMO_CHANGE = (
    "models/marts/orders.sql",
    "orders.status in ('shipped', 'completed') as is_revenue",
    "orders.status in ('placed', 'shipped', 'completed') as is_revenue",
)
DEMO_CHANGE_AFFECTS = ("orders", "customers", "revenue_daily")

MIN_ROWS = 10
# A day of orders after the history: rows // this many, at least 3.
_ORDERS_PER_DAY_SHARE = 500
_REPLAYED_ORDERS = 2  # of the new day's orders, sent again by the bad load
_ORDERS_PER_CUSTOMER = 8
_FIRST_ORDER = datetime(2024, 1, 1)
_LAST_ORDER = datetime(2025, 6, 30, 23, 59, 59)
_NEW_DAY = date(2025, 7, 1)  # the day after _LAST_ORDER
_FIRST_SIGNUP = date(2023, 1, 1)
_TEST_CUSTOMER_SHARE = 0.03

_COUNTRIES = ("US", "GB", "DE", "FR", "NL", "CA", "AU", "SE")
_COUNTRY_WEIGHTS = (38, 14, 12, 9, 7, 8, 6, 6)
_FIRST_NAMES = (
    "Amara", "Ben", "Chloe", "Diego", "Elif", "Finn", "Grace", "Hiro", "Ines", "Jonas",
    "Kofi", "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara",
)  # fmt: skip
_LAST_NAMES = (
    "Andersen", "Bakker", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Haddad",
    "Ito", "Jensen", "Kowalski", "Lopez", "Muller", "Nguyen", "Okafor", "Patel",
)  # fmt: skip
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
_TEST_DOMAIN = "jaffle.test"  # stg_customers flags accounts on this domain

# (sku, name, category, price in cents, popularity weight)
_PRODUCTS = (
    ("JAF-001", "Classic Ham & Cheese Jaffle", "jaffle", 899, 30),
    ("JAF-002", "Spiced Lamb Jaffle", "jaffle", 1149, 14),
    ("JAF-003", "Mushroom & Gruyere Jaffle", "jaffle", 1049, 16),
    ("JAF-004", "Kimchi Toastie Jaffle", "jaffle", 1099, 9),
    ("JAF-005", "Breakfast Jaffle", "jaffle", 949, 18),
    ("SID-001", "Sweet Potato Fries", "side", 499, 20),
    ("SID-002", "House Pickles", "side", 299, 6),
    ("SID-003", "Garden Salad", "side", 599, 8),
    ("BEV-001", "Flat White", "beverage", 450, 24),
    ("BEV-002", "Iced Tea", "beverage", 375, 12),
    ("BEV-003", "Sparkling Water", "beverage", 250, 10),
    ("BEV-004", "Hot Chocolate", "beverage", 425, 7),
    ("DES-001", "Nutella Jaffle", "dessert", 799, 11),
    ("DES-002", "Apple Pie Jaffle", "dessert", 749, 9),
    ("DES-003", "Lamington", "dessert", 399, 5),
    ("DES-004", "Anzac Biscuit", "dessert", 249, 6),
)
_PAYMENT_METHODS = ("credit_card", "bank_transfer", "gift_card", "coupon")
_PAYMENT_WEIGHTS = (62, 20, 10, 8)


Row = tuple[object, ...]


@dataclass(frozen=True)
class RawLoad:
    """What one load of the shop's loader appends to the raw tables: table -> rows."""

    day: date | None  # the day whose orders it brings; None for the history loaded first
    tables: Mapping[str, tuple[Row, ...]]

    def rows(self, table: str) -> int:
        return len(self.tables.get(table, ()))


@dataclass(frozen=True)
class DemoProject:
    """Where a written demo project lives, what it holds, and the loads of its raw data
    (`load_raw` writes one into the warehouse)."""

    project_dir: Path
    profiles_path: Path
    database_path: Path
    models: tuple[str, ...]
    seeds: tuple[str, ...]
    history: RawLoad  # loaded before the first deploy
    new_day: RawLoad  # the day after the history
    bad_day: RawLoad  # the day after that, with some of new_day's orders sent again

    @property
    def profiles_dir(self) -> Path:
        return self.profiles_path.parent

    @property
    def replayed_orders(self) -> tuple[int, ...]:
        """The ids of bad_day's orders that new_day already brought."""
        seen = {row[0] for row in self.new_day.tables["orders"]}
        return tuple(int(str(row[0])) for row in self.bad_day.tables["orders"] if row[0] in seen)


def write_demo_project(dest: Path, *, rows: int = 5000, seed: int = 7) -> DemoProject:
    """Write the demo dbt project into `dest` with about `rows` orders of generated data.

    `dest` may exist (a fresh git repository, say) but must not hold any file the project
    would write: nothing of the user's is ever overwritten.
    """
    if rows < MIN_ROWS:
        raise ReleasekitError(
            f"the demo needs at least {MIN_ROWS} orders, got rows={rows}",
            hint=f"pass rows={MIN_ROWS} or more",
        )
    template = files("releasekit.resources") / "demo"
    targets = dict(_template_files(template, Path()))
    _refuse_overwrite(dest, [*targets, *(Path("seeds") / f"{name}.csv" for name in SEEDS)])
    for relative, source in targets.items():
        _write_bytes(dest / relative, source.read_bytes())
    tables, people = _generate_shop(random.Random(seed), rows)
    _write_seeds(dest / "seeds", tables)
    history = RawLoad(None, {name: tuple(tables[name]) for name in SOURCES})
    # Its own generator: the history stays the same bytes whatever the days draw.
    new_day, bad_day = _generate_days(random.Random(f"{seed}:days"), tables, people, _day_orders(rows))
    return DemoProject(
        project_dir=dest,
        profiles_path=dest / "profiles.yml",
        database_path=dest / DATABASE_FILE,
        models=STAGING_MODELS + MART_MODELS,
        seeds=SEEDS,
        history=history,
        new_day=new_day,
        bad_day=bad_day,
    )


def load_raw(project: DemoProject, load: RawLoad) -> None:
    """Append `load` to the raw tables in the project's warehouse, as the shop's loader
    would, creating them on the first load. No releasekit run may hold the file meanwhile."""
    tables = [TableRows(name, _COLUMNS[name], load.tables[name]) for name in SOURCES]
    append_rows(project.database_path, RAW_SCHEMA, tables)


def _day_orders(rows: int) -> int:
    return max(3, rows // _ORDERS_PER_DAY_SHARE)


def _template_files(directory: Traversable, relative: Path) -> Iterator[tuple[Path, Traversable]]:
    """Every file under the template, dotfiles included, by path relative to it."""
    for entry in directory.iterdir():
        # Byte-code caches appear beside package data when a tool imports from it.
        if entry.name in {"__pycache__", "__init__.py"}:
            continue
        if entry.is_dir():
            yield from _template_files(entry, relative / entry.name)
        else:
            yield relative / entry.name, entry


def _refuse_overwrite(dest: Path, relatives: Sequence[Path]) -> None:
    clashes = sorted(str(path) for path in relatives if (dest / path).exists())
    if clashes:
        shown = ", ".join(clashes[:5]) + (", ..." if len(clashes) > 5 else "")
        raise ReleasekitError(
            f"{dest} already holds files the demo project would overwrite: {shown}",
            hint="choose an empty directory, or move those files away",
        )


def _write_bytes(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


# --- generated data ----------------------------------------------------------------------

_HEADERS: dict[str, Row] = {
    "raw_customers": ("id", "first_name", "last_name", "email", "country", "signup_date"),
    "raw_products": ("id", "sku", "name", "category", "price_cents"),
}
_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "orders": (
        ("id", "INTEGER"),
        ("customer_id", "INTEGER"),
        ("ordered_at", "TIMESTAMP"),
        ("status", "VARCHAR"),
    ),
    "order_items": (
        ("id", "INTEGER"),
        ("order_id", "INTEGER"),
        ("product_id", "INTEGER"),
        ("quantity", "INTEGER"),
        ("unit_price_cents", "INTEGER"),
    ),
    "payments": (
        ("id", "INTEGER"),
        ("order_id", "INTEGER"),
        ("payment_method", "VARCHAR"),
        ("amount_cents", "INTEGER"),
    ),
}


@dataclass(frozen=True)
class _Customer:
    id: int
    signup: date
    weight: float  # how often this customer orders relative to the others


def _generate_shop(rng: random.Random, orders: int) -> tuple[dict[str, list[Row]], list[_Customer]]:
    """Seed tables and the history of the source tables, and the customers who order.
    The draw order is fixed, so a seed always gives the same bytes."""
    customers = _generate_customers(rng, max(MIN_ROWS, orders // _ORDERS_PER_CUSTOMER))
    tables: dict[str, list[Row]] = {
        "raw_customers": [row for row, _ in customers],
        "raw_products": [(i, *p[:4]) for i, p in enumerate(_PRODUCTS, start=1)],
        **{name: [] for name in SOURCES},
    }
    people = [customer for _, customer in customers]
    weights = [customer.weight for customer in people]
    for order_id in range(1, orders + 1):
        customer = rng.choices(people, weights)[0]
        _add_order(rng, tables, order_id, customer.id, _order_time(rng, customer.signup))
    return tables, people


def _generate_days(
    rng: random.Random, tables: dict[str, list[Row]], people: Sequence[_Customer], count: int
) -> tuple[RawLoad, RawLoad]:
    """The day after the history, and the day after that as a faulty loader sends it:
    its own orders plus the last few of the day before, again."""
    new_day = _day_of_orders(rng, tables, people, _NEW_DAY, count)
    bad_day = _day_of_orders(rng, tables, people, _NEW_DAY + timedelta(days=1), count)
    replayed = new_day.tables["orders"][-_REPLAYED_ORDERS:]
    return new_day, dataclasses.replace(
        bad_day, tables={**bad_day.tables, "orders": bad_day.tables["orders"] + replayed}
    )


def _day_of_orders(
    rng: random.Random, tables: dict[str, list[Row]], people: Sequence[_Customer], day: date, count: int
) -> RawLoad:
    """`count` orders placed on `day`, appended to `tables` (ids go on from theirs)."""
    starts = {name: len(tables[name]) for name in SOURCES}
    weights = [customer.weight for customer in people]
    midnight = datetime.combine(day, datetime.min.time())
    for _ in range(count):
        customer = rng.choices(people, weights)[0]
        ordered_at = midnight + timedelta(seconds=rng.randrange(24 * 3600))
        _add_order(rng, tables, len(tables["orders"]) + 1, customer.id, ordered_at)
    return RawLoad(day, {name: tuple(tables[name][starts[name] :]) for name in SOURCES})


def _generate_customers(rng: random.Random, count: int) -> list[tuple[Row, _Customer]]:
    last_signup = _LAST_ORDER.date() - timedelta(days=30)
    span = (last_signup - _FIRST_SIGNUP).days
    customers = []
    for customer_id in range(1, count + 1):
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        if rng.random() < _TEST_CUSTOMER_SHARE:
            first, last = "Test", f"Account {customer_id}"
            email = f"qa+{customer_id}@{_TEST_DOMAIN}"
        else:
            email = f"{first}.{last}{customer_id}@{rng.choice(_EMAIL_DOMAINS)}".lower()
        country = rng.choices(_COUNTRIES, _COUNTRY_WEIGHTS)[0]
        signup = _FIRST_SIGNUP + timedelta(days=rng.randrange(span))
        row: Row = (customer_id, first, last, email, country, signup.isoformat())
        # A heavy tail: a few regulars place many of the orders.
        customers.append((row, _Customer(customer_id, signup, rng.paretovariate(1.6))))
    return customers


def _add_order(
    rng: random.Random, tables: dict[str, list[Row]], order_id: int, customer_id: int, ordered_at: datetime
) -> None:
    status = _order_status(rng, ordered_at)
    tables["orders"].append((order_id, customer_id, f"{ordered_at:%Y-%m-%d %H:%M:%S}", status))
    total = 0
    items = tables["order_items"]
    for product_id, quantity in _order_lines(rng):
        price = _PRODUCTS[product_id - 1][3]
        items.append((len(items) + 1, order_id, product_id, quantity, price))
        total += quantity * price
    # Cancelled orders are cancelled before payment is taken.
    if status != "cancelled":
        for method, amount in _payments(rng, total):
            payments = tables["payments"]
            payments.append((len(payments) + 1, order_id, method, amount))


def _order_time(rng: random.Random, signup: date) -> datetime:
    start = max(_FIRST_ORDER, datetime.combine(signup, datetime.min.time()))
    seconds = int((_LAST_ORDER - start).total_seconds())
    return start + timedelta(seconds=rng.randrange(seconds))


def _order_status(rng: random.Random, ordered_at: datetime) -> str:
    """Recent orders are still in flight; older ones have settled."""
    age_days = (_LAST_ORDER - ordered_at).days
    if age_days < 2:
        return rng.choices(("placed", "cancelled"), (9, 1))[0]
    if age_days < 7:
        return rng.choices(("placed", "shipped", "cancelled"), (2, 7, 1))[0]
    if age_days < 30:
        return rng.choices(("completed", "return_pending", "cancelled"), (88, 6, 6))[0]
    return rng.choices(("completed", "returned", "return_pending", "cancelled"), (86, 7, 1, 6))[0]


def _order_lines(rng: random.Random) -> list[tuple[int, int]]:
    """(product id, quantity) pairs, distinct products, popular products more often."""
    wanted = rng.choices((1, 2, 3, 4), (55, 25, 12, 8))[0]
    popularity = [product[4] for product in _PRODUCTS]
    chosen: list[int] = []
    while len(chosen) < wanted:
        product_id = rng.choices(range(1, len(_PRODUCTS) + 1), popularity)[0]
        if product_id not in chosen:
            chosen.append(product_id)
    return [(product_id, rng.choices((1, 2, 3), (80, 15, 5))[0]) for product_id in chosen]


def _payments(rng: random.Random, total: int) -> list[tuple[str, int]]:
    """One payment usually; sometimes a gift card covers part and a card the rest."""
    if total > 1000 and rng.random() < 0.08:
        gift = rng.choice((500, 1000))
        return [("gift_card", gift), ("credit_card", total - gift)]
    return [(rng.choices(_PAYMENT_METHODS, _PAYMENT_WEIGHTS)[0], total)]


def _write_seeds(directory: Path, tables: dict[str, list[Row]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in SEEDS:
        rows = tables[name]
        # newline="" and a fixed terminator: the same bytes on every platform.
        with (directory / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(_HEADERS[name])
            writer.writerows(rows)
