"""The state store's values and its small interface.

The ledger is a sequence of immutable events per environment. A *release* is a map
model -> physical version; events record what happened to it: a deploy announces the
switch (`switching`) before the warehouse changes and confirms it (`succeeded`)
after, so a run killed at any point leaves a ledger a rerun can reconcile.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from releasekit.state.probes import Check

# How long a run waits for an environment's lock before LockedError. Short: a second run
# should fail at once, naming the holder (the whole command within 5 seconds), not queue.
DEFAULT_LOCK_TIMEOUT = 2.0

# repair: the live release switched in again, whole, over a schema that drifted from it.
# refresh: the live release's code run on the data as it is now (engine.refresh): a new
# release whose models read new data versions.
Kind = Literal["deploy", "rollback", "teardown", "repair", "refresh"]
# The kinds of entry that make a new release (a new id); the others switch to one again.
RELEASE_KINDS: tuple[Kind, ...] = ("deploy", "refresh")
Outcome = Literal["switching", "succeeded", "failed", "abandoned"]


@dataclass(frozen=True)
class ModelVersion:
    """One model's version in a release: where consumers read it and where it lives."""

    unique_id: str  # dbt unique id, e.g. model.shop.orders
    name: str  # the view name in the consumer schema
    fingerprint: str  # full hex digest
    relation: str  # physical relation name in the physical schema, e.g. orders__a1b2c3d4
    inputs: Mapping[str, str] = field(default_factory=dict)  # component digests, for plan reasons
    # Its data version: source unique id -> that source's data version (engine.data) when the
    # relation was written, for every source it reads (through its parents). Empty: written
    # by a releasekit that did not record it, or it reads no source (a seed).
    data: Mapping[str, str] = field(default_factory=dict)
    written_at: str = ""  # ISO 8601, UTC, when the relation was written; "" when unknown


@dataclass(frozen=True)
class LedgerEntry:
    env: str
    release_id: int
    kind: Kind
    outcome: Outcome
    git_sha: str
    who: str
    at: str  # ISO 8601, UTC
    params: Mapping[str, Any] = field(default_factory=dict)
    models: Mapping[str, ModelVersion] = field(default_factory=dict)  # by unique_id
    built: tuple[str, ...] = ()
    reused: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()
    previous_release: int | None = None
    physical_schema: str = ""
    note: str = ""
    # A promotion's record: source environment and release, gates passed, approvals,
    # the git branch update and tag. Empty for a plain deploy.
    promotion: Mapping[str, Any] = field(default_factory=dict)
    # A deploy let past a promoted environment's gate by `deploy --force --reason`: the
    # reason, the environment's branch and where it pointed. Empty otherwise.
    forced: Mapping[str, Any] = field(default_factory=dict)
    # A rollback holds the environment against `sync` ({"action": "hold", ...}); the deploy
    # that ends a hold says so ({"action": "lift", ...}). Empty otherwise.
    hold: Mapping[str, Any] = field(default_factory=dict)
    # A refresh's record: the sources read and their data versions before and after, why
    # each model was rewritten, rows written, test results and timings. Empty otherwise.
    refresh: Mapping[str, Any] = field(default_factory=dict)
    # What statistical process control measured and found in a deploy or refresh: counts,
    # findings, and the models a user accepted with the reason. Empty when nothing was measured.
    spc: Mapping[str, Any] = field(default_factory=dict)
    seq: int = 0  # position in the environment's ledger; assigned by the store on append


@dataclass(frozen=True)
class LockInfo:
    """Who holds an environment's lock. `id` names this one hold: `releasekit unlock ENV
    --id ID` clears a dead holder's lock only when given it, never a later holder's."""

    env: str
    owner: str
    host: str
    pid: int
    since: str  # ISO 8601, UTC
    id: str  # short random hex, new for every hold


# The store-wide lock a deploy holds while it decides what to build and claims it, and gc
# while it decides what to drop. Never an environment's name: `~` is in no git branch
# name nor declared environment name.
PLANNING_LOCK = "~planning"
# How long a deploy or gc waits for the planning lock (held for the seconds a plan takes).
PLANNING_TIMEOUT = 120.0


@dataclass(frozen=True)
class HeldLock:
    """A lock record in the store: `held` by a run, or `left behind` (its holder is gone or
    its lease expired; the next run takes it over, `releasekit unlock` clears it now)."""

    info: LockInfo
    where: str
    state: Literal["held", "left behind"]
    detail: str


@dataclass(frozen=True)
class Claim:
    """What a run holding an environment's lock is about to build and use in a physical
    schema, recorded on its lock so other runs and gc leave those relations alone while
    the run lives. It goes with the lock; a run that died leaves it, not `live`."""

    env: str
    lock_id: str
    owner: str
    physical_schema: str
    builds: tuple[str, ...]  # relations it builds (and drops again if its attempt fails)
    uses: tuple[str, ...]  # existing relations its release reuses
    live: bool  # its holder still runs (on this host) or renews its lease (a bucket)


@dataclass(frozen=True)
class BranchEnvironment:
    """A registry record: releasekit made this schema for this branch, and owns it."""

    branch: str
    schema: str
    base: str  # the declared environment it started from
    base_release: int  # the base's live release when it was brought up
    owner: str
    created_at: str  # ISO 8601, UTC
    expires_at: str  # ISO 8601, UTC; `env gc` drops it after this unless pinned
    pinned: bool = False


class Registry(Protocol):
    """Branch environments releasekit made: the only schemas teardown and gc may drop."""

    def branches(self) -> list[BranchEnvironment]: ...

    def branch(self, name: str) -> BranchEnvironment | None: ...

    def register(self, record: BranchEnvironment) -> None:
        """Create or replace the record for `record.branch`, atomically."""
        ...

    def unregister(self, name: str) -> None:
        """Forget the branch's record; no error when there is none."""
        ...


@dataclass(frozen=True)
class UnreadableLedger:
    """An environment's ledger with a document that does not read."""

    env: str | None  # whose, when its folder's name says (a long name's is a digest)
    where: str  # the folder or prefix holding it
    problem: str  # the error, naming the document


@dataclass(frozen=True)
class LedgerScan:
    """Every ledger that reads, and the ones that do not: one bad ledger must not stop
    work on the others."""

    entries: Mapping[str, list[LedgerEntry]]  # declared environments', by name
    unreadable: tuple[UnreadableLedger, ...] = ()
    # Branch environments', by branch: a namespace of their own (a declared environment
    # and a branch environment of one name never share a ledger).
    branches: Mapping[str, list[LedgerEntry]] = field(default_factory=dict)


class LedgerReader(Protocol):
    def entries(self, env: str) -> list[LedgerEntry]:
        """All entries of one environment, in append order (seq 1, 2, ...). A name with a
        registry record is a branch environment's, whose ledger lives apart."""
        ...

    def environments(self) -> list[str]:
        """Every environment that has at least one entry, sorted."""
        ...

    def all_entries(self) -> dict[str, list[LedgerEntry]]:
        """Every environment's entries, in one read where the store can (a bucket)."""
        ...

    def scan_ledgers(self) -> LedgerScan:
        """`all_entries`, except that a ledger that does not read is set aside, named."""
        ...


class LedgerWriter(Protocol):
    def append(self, entry: LedgerEntry) -> LedgerEntry:
        """Append durably and atomically; returns the entry with its seq. Never rewrites."""
        ...


@dataclass(frozen=True)
class CheckRecord:
    """One `releasekit check` of one commit: what promotion gates ask about."""

    git_sha: str
    env: str  # the environment the checks ran in
    base: str  # the environment compared against
    release_id: int | None  # the env's release the checks ran against
    passed: bool  # no finding at error severity
    verdict: str
    statuses: Mapping[str, str]  # check name -> passed | failed | skipped
    who: str
    at: str  # ISO 8601, UTC
    report: Mapping[str, Any] = field(default_factory=dict)  # the whole report (JSON schema v1)
    # position among the commit's checks (read by content: among that content's); assigned
    # by the store on append
    seq: int = 0
    # What the check covered: the checks that ran, and why each other one did not (`only`:
    # left out with --only; `off`: turned off by the base's policy; `blocked`: a failed
    # build left nothing to read; `unknown`: recorded before releasekit said why).
    ran: tuple[str, ...] = ()
    skipped: Mapping[str, str] = field(default_factory=dict)
    # The content verified: the git tree id of the dbt project's folder at `git_sha`. None
    # for a dirty tree (no commit holds that content) and for records from before.
    content: str | None = None

    @property
    def full(self) -> bool:
        """Every check the base's policy does not turn off ran: only this is a pass for a gate."""
        return all(reason == "off" for reason in self.skipped.values())


class CheckLog(Protocol):
    def record_check(self, record: CheckRecord) -> CheckRecord:
        """Append durably; returns the record with its seq. Never rewrites. A record with a
        `content` id is also found by `checks_with_content`."""
        ...

    def checks(self, git_sha: str) -> list[CheckRecord]:
        """Every check recorded for the commit, oldest first."""
        ...

    def checks_with_content(self, content: str) -> list[CheckRecord]:
        """Every check recorded of any commit whose dbt project had this content (a git tree
        id), oldest first per commit."""
        ...


@dataclass(frozen=True)
class Measurement:
    """One model version measured in the warehouse (statistical process control): metric
    name -> value, e.g. `row_count`, `null_fraction.email`, `mean.amount` (None: no value,
    as the mean of a column that is all null)."""

    unique_id: str
    name: str
    relation: str
    written_at: str  # ISO 8601, UTC: when the measured version was written
    values: Mapping[str, float | None]


MetricOutcome = Literal["published", "held", "checked"]


@dataclass(frozen=True)
class MetricRecord:
    """What one deploy, refresh or check measured in an environment, and what became of it:
    `published` (consumers read it), `held` (held back, never served), `checked` (a branch
    check's measurement, compared but never part of the environment's history)."""

    env: str
    kind: str  # deploy | refresh | check
    outcome: MetricOutcome
    release_id: int | None
    git_sha: str
    who: str
    at: str  # ISO 8601, UTC
    measurements: tuple[Measurement, ...] = ()
    # unique id -> the reason a user gave for accepting its data as it is: the model's
    # history starts anew at this record (a new market, a backfill), so it is not flagged forever.
    accepted: Mapping[str, str] = field(default_factory=dict)
    # `<unique id> <metric>` -> the rules its value broke when this record was judged.
    flagged: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    seq: int = 0  # position in the environment's metric log; assigned by the store


class MetricLog(Protocol):
    def record_metrics(self, record: MetricRecord) -> MetricRecord:
        """Append durably; returns the record with its seq. Never rewrites."""
        ...

    def metrics(self, env: str, *, newest: int | None = None) -> list[MetricRecord]:
        """The environment's metric records, oldest first: all, or the `newest` N."""
        ...


class Artifacts(Protocol):
    """Files a release leaves for later runs (a parsed project graph), by name. Written once:
    a second write of the same name keeps the first, which holds the same content."""

    def put_artifact(self, name: str, data: bytes) -> None: ...

    def get_artifact(self, name: str) -> bytes | None: ...

    def has_artifact(self, name: str) -> bool:
        """Whether `name` was written, without reading it (graphs run to megabytes)."""
        ...


# The folders (prefixes) that hold a state: what `releasekit state migrate` copies. Locks are
# not state to copy: they belong to runs going on at the source.
STATE_AREAS = ("ledger", "registry", "checks", "contents", "artifacts", "metrics")


class StateObjects(Protocol):
    """A store's documents as bytes under their keys (`ledger/dev/00000001.json`), the same
    keys in every store, for copying a state from one store to another and checking it."""

    def object_keys(self) -> list[str]:
        """Every document under STATE_AREAS, sorted."""
        ...

    def read_object(self, key: str) -> bytes | None: ...

    def create_object(self, key: str, data: bytes) -> bool:
        """Write a new document; False (nothing written) when `key` exists."""
        ...

    def lock_holders(self) -> list[LockInfo]:
        """Who holds (or left behind) each environment's lock."""
        ...


class StateStore(
    LedgerReader, LedgerWriter, Registry, CheckLog, MetricLog, Artifacts, StateObjects, Protocol
):
    def lock(
        self, env: str, *, owner: str, timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> AbstractContextManager[LockInfo]:
        """Hold the environment's lock; raises LockedError naming the holder after `timeout`."""
        ...

    def break_lock(self, env: str, lock_id: str) -> LockInfo:
        """Clear a lock its holder left behind when it died; returns what was cleared.

        Raises NotFoundError when the environment has no lock holder, LockMismatchError when
        `lock_id` is not the holder's id, and LockedError when the holder is still alive."""
        ...

    def describe(self) -> str:
        """Where the state lives, for messages (a folder path, later a bucket URL)."""
        ...

    def planning_lock(
        self, *, owner: str, timeout: float = PLANNING_TIMEOUT
    ) -> AbstractContextManager[LockInfo]:
        """Hold the store-wide planning lock (PLANNING_LOCK); LockedError after `timeout`."""
        ...

    def claim(self, env: str, physical_schema: str, builds: Sequence[str], uses: Sequence[str]) -> None:
        """Record on the lock this process holds on `env` what its run builds and uses,
        replacing an earlier claim of that hold."""
        ...

    def claims(self) -> list[Claim]:
        """Every claim recorded on an environment's lock, live or left by a dead run."""
        ...

    def lock_records(self) -> tuple[list[HeldLock], list[str]]:
        """Every lock record, held or left behind, and those that do not read (named)."""
        ...

    def probe(self) -> Generator[Check, None, None]:
        """Doctor's access probes: what this kind of store must honour to keep state safe."""
        ...


def iter_models(entry: LedgerEntry) -> Iterator[ModelVersion]:
    return iter(entry.models.values())
