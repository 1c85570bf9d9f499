"""The state store: every document releasekit keeps, written once, over the object-store
seam (`objects.py`), with a lock strategy beside it (`locks.py`).

Layout, the same keys in every store (a folder's paths, a bucket's keys under its prefix):

    ledger/<env-key>/00000001.json   one immutable document per entry (create-only)
    ledger/branch~<env-key>/...      a branch environment's (one an older releasekit wrote at
                                     ledger/<env-key>/ is found there, and stays there)
    registry/<env-key>.json          a branch environment's record (compare-and-swap)
    checks/<sha-key>/00000001.json   one immutable document per check (create-only)
    metrics/<env-key>/00000001.json  what one run measured in an environment (create-only)
    contents/<tree-key>/00000001.json  the same records by the content they verified
    artifacts/<name-key>             files releases leave for later runs (create-only)
    locks/...                        the lock strategy's (see locks.py)

Appends create the next sequence number only if it does not exist: a writer that loses the
race tries the number after it at once, so entries are never lost, duplicated or
overwritten, and no writer starves. A holder of an environment's lock checks it is still
its own before each write it makes to that environment's ledger or registry (fencing), so
a holder that lost it stops before it records a switch, which comes before the warehouse
changes.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace

from releasekit.errors import StateError
from releasekit.state.base import (
    DEFAULT_LOCK_TIMEOUT,
    PLANNING_LOCK,
    PLANNING_TIMEOUT,
    STATE_AREAS,
    BranchEnvironment,
    CheckRecord,
    Claim,
    HeldLock,
    LedgerEntry,
    LedgerScan,
    LockInfo,
    MetricRecord,
    UnreadableLedger,
)
from releasekit.state.codec import (
    BRANCH_LEDGER_PREFIX,
    KEEP_HINT,
    branch_from_bytes,
    branch_to_bytes,
    check_from_bytes,
    check_to_bytes,
    claim_to_document,
    dumps,
    env_from_key,
    env_key,
    ledger_folder_env_key,
    legacy_branch_ledger_error,
    loads,
)
from releasekit.state.ledger import made_by_branch
from releasekit.state.locks import Locks
from releasekit.state.metric_codec import metric_from_bytes, metric_to_bytes
from releasekit.state.objects import ObjectStore, Stored, attempts, read_all
from releasekit.state.probes import Check, probe_objects

ENTRY_NAME = re.compile(r"^[0-9]{8,}\.json$")  # a ledger entry's or check record's name


class DocumentStore:
    """`StateStore` over an `ObjectStore` and a `Locks` strategy. `readers`: how many
    documents to read at once; `remember`: keep the create-only documents read or written
    (a bucket answers each in milliseconds; a folder reads them faster than it could look
    them up, and its files can be edited by hand, so it reads them each time)."""

    def __init__(
        self, objects: ObjectStore, locks: Locks, *, readers: int = 1, remember: bool = False
    ) -> None:
        self.objects = objects
        self.locks = locks
        self._readers = readers
        self._remember = remember
        self._documents: dict[str, bytes] = {}  # create-only documents already read, by key
        self._counts: dict[str, int] = {}  # ledger folder -> its entries, while its env is held
        self._folders: dict[str, str] = {}  # env -> its ledger folder, while held

    def describe(self) -> str:
        return self.objects.describe()

    # --- the ledger ----------------------------------------------------------------------

    def environments(self) -> list[str]:
        return sorted(self._ledgers(first_only=True))

    def entries(self, env: str) -> list[LedgerEntry]:
        folder = self._ledger_folder(env)
        held = self.locks.holds(env)
        known = self._counts.get(folder) if held else None
        seqs = list(range(1, known + 1)) if known is not None else self._seqs(folder)
        if held:
            self._counts[folder] = len(seqs)  # nobody else appends while this process holds it
        return self._parse(folder, seqs, env)

    def all_entries(self) -> dict[str, list[LedgerEntry]]:
        return self._ledgers(first_only=False)

    def append(self, entry: LedgerEntry) -> LedgerEntry:
        self.locks.fence(entry.env)
        folder = self._ledger_folder(entry.env)
        held = self.locks.holds(entry.env)
        known = self._counts.get(folder) if held else None
        start = 0 if known is None else known + 1  # 0: list the folder to find the number
        seq = self._append(folder, lambda seq: dumps(replace(entry, seq=seq)), start=start)
        if held:
            self._counts[folder] = seq
        return replace(entry, seq=seq)

    def scan_ledgers(self) -> LedgerScan:
        declared, branches, problems = self._scan(first_only=False)
        unreadable = tuple(
            UnreadableLedger(
                env_from_key(ledger_folder_env_key(folder.split("/")[1])[0]),
                self.objects.describe(folder),
                exc.message,
            )
            for folder, exc in problems
        )
        return LedgerScan(declared, unreadable, branches)

    def _ledgers(self, *, first_only: bool) -> dict[str, list[LedgerEntry]]:
        declared, branches, problems = self._scan(first_only=first_only)
        if problems:
            raise problems[0][1]
        return {**branches, **declared}

    def _ledger_folder(self, env: str) -> str:
        """`ledger/branch~<key>/` for a branch environment (it has a registry record), else
        `ledger/<key>/`. A branch ledger an older releasekit wrote at `ledger/<key>/` stays
        there and is found; a declared environment never reads one as its own."""
        held = self.locks.holds(env)
        if held and env in self._folders:
            return self._folders[env]  # only this process registers or forgets it meanwhile
        folder = self._find_ledger_folder(env)
        if held:
            self._folders[env] = folder
        return folder

    def _find_ledger_folder(self, env: str) -> str:
        declared = f"ledger/{env_key(env)}/"
        branch = f"ledger/{BRANCH_LEDGER_PREFIX}{env_key(env)}/"
        # The registry record and the declared folder's first entry, in one round trip.
        registry, first = f"registry/{env_key(env)}.json", declared + entry_name(1)
        known = self._documents.get(first)
        found = self._reads([registry] if known is not None else [registry, first])
        if known is None and found[1] is not None:
            known = self._keep(first, found[1].data)
        legacy = known is not None and made_by_branch([loads(known, where=self.objects.describe(first))])
        if found[0] is None:
            if legacy:
                raise legacy_branch_ledger_error(
                    self.objects.describe(declared), env, self.objects.describe(branch)
                )
            return declared
        self._branch(found[0], registry)  # a record that does not read is named
        return declared if legacy and not self.objects.keys(branch) else branch

    def _scan(
        self, *, first_only: bool
    ) -> tuple[dict[str, list[LedgerEntry]], dict[str, list[LedgerEntry]], list[tuple[str, StateError]]]:
        """Every environment's ledger (or only its first entry) from one listing of the
        store and one parallel read of the documents this process has not read before;
        the folders that do not read, each with its error."""
        by_folder: dict[str, list[str]] = {}
        for key in self.objects.keys("ledger/"):
            parts = key.split("/")
            if len(parts) == 3:
                by_folder.setdefault(f"ledger/{parts[1]}/", []).append(key)
        wanted: dict[str, list[int]] = {}
        problems: list[tuple[str, StateError]] = []
        for folder, keys in sorted(by_folder.items()):
            try:
                seqs = self._seqs_of(folder, keys)
            except StateError as exc:
                problems.append((folder, exc))
                continue
            if seqs:
                wanted[folder] = seqs[:1] if first_only else seqs
        if self._remember:  # one parallel read of them all; a document gone meanwhile is named below
            with contextlib.suppress(StateError):
                self._immutables(
                    [folder + entry_name(seq) for folder, seqs in wanted.items() for seq in seqs]
                )
        declared: dict[str, list[LedgerEntry]] = {}
        branches: dict[str, list[LedgerEntry]] = {}
        for folder, seqs in sorted(wanted.items()):
            try:
                env, entries = self._folder_entries(folder, seqs)
            except StateError as exc:
                problems.append((folder, exc))
                continue
            # A branch's ledger an older releasekit wrote among declared ones is a branch's.
            in_branches = ledger_folder_env_key(folder.split("/")[1])[1] or made_by_branch(entries)
            (branches if in_branches else declared)[env] = entries
        return declared, branches, problems

    def _folder_entries(self, folder: str, seqs: list[int]) -> tuple[str, list[LedgerEntry]]:
        first_key = folder + entry_name(1)
        first = loads(self._immutables([first_key])[0], where=self.objects.describe(first_key))
        if env_key(first.env) != ledger_folder_env_key(folder.split("/")[1])[0]:
            where = self.objects.describe(folder)
            raise StateError(f"{where}: holds entries of environment {first.env!r}", hint=KEEP_HINT)
        return first.env, self._parse(folder, seqs, first.env)

    def _parse(self, folder: str, seqs: list[int], env: str) -> list[LedgerEntry]:
        keys = [folder + entry_name(seq) for seq in seqs]
        found = []
        for seq, key, data in zip(seqs, keys, self._immutables(keys), strict=True):
            entry = loads(data, where=self.objects.describe(key))
            if entry.seq != seq or entry.env != env:
                raise StateError(
                    f"{self.objects.describe(key)}: holds entry {entry.seq} of environment {entry.env!r}, "
                    f"expected entry {seq} of {env!r}",
                    hint=KEEP_HINT,
                )
            found.append(entry)
        return found

    # --- check records -------------------------------------------------------------------

    def record_check(self, record: CheckRecord) -> CheckRecord:
        seq = self._append(
            f"checks/{env_key(record.git_sha)}/", lambda seq: check_to_bytes(replace(record, seq=seq))
        )
        if record.content is not None:  # after the commit's own: an index never names a lost record
            self._append(
                f"contents/{env_key(record.content)}/", lambda seq: check_to_bytes(replace(record, seq=seq))
            )
        return replace(record, seq=seq)

    def checks(self, git_sha: str) -> list[CheckRecord]:
        return self._read_checks(f"checks/{env_key(git_sha)}/")

    def checks_with_content(self, content: str) -> list[CheckRecord]:
        return self._read_checks(f"contents/{env_key(content)}/")

    def _read_checks(self, folder: str) -> list[CheckRecord]:
        keys = [folder + entry_name(seq) for seq in self._seqs(folder)]
        return [
            check_from_bytes(data, where=self.objects.describe(key))
            for key, data in zip(keys, self._immutables(keys), strict=True)
        ]

    # --- metric records (statistical process control) -----------------------------------

    def record_metrics(self, record: MetricRecord) -> MetricRecord:
        folder = f"metrics/{env_key(record.env)}/"
        seq = self._append(folder, lambda seq: metric_to_bytes(replace(record, seq=seq)))
        return replace(record, seq=seq)

    def metrics(self, env: str, *, newest: int | None = None) -> list[MetricRecord]:
        folder = f"metrics/{env_key(env)}/"
        seqs = self._seqs(folder)
        keys = [folder + entry_name(seq) for seq in (seqs if newest is None else seqs[-newest:])]
        return [
            metric_from_bytes(data, where=self.objects.describe(key))
            for key, data in zip(keys, self._immutables(keys), strict=True)
        ]

    # --- artifacts -----------------------------------------------------------------------

    def put_artifact(self, name: str, data: bytes) -> None:
        self.objects.create(f"artifacts/{env_key(name)}", data)  # None: written before, same content

    def get_artifact(self, name: str) -> bytes | None:
        stored = self.objects.get(f"artifacts/{env_key(name)}")
        return None if stored is None else stored.data

    def has_artifact(self, name: str) -> bool:
        return self.objects.exists(f"artifacts/{env_key(name)}")

    # --- the registry of branch environments ---------------------------------------------

    def branches(self) -> list[BranchEnvironment]:
        keys = [key for key in self.objects.keys("registry/") if key.endswith(".json")]
        records = [
            self._branch(stored, key) for key, stored in zip(keys, self._reads(keys), strict=True) if stored
        ]
        return sorted(records, key=lambda record: record.branch)

    def branch(self, name: str) -> BranchEnvironment | None:
        key = f"registry/{env_key(name)}.json"
        stored = self.objects.get(key)
        return None if stored is None else self._branch(stored, key)

    def register(self, record: BranchEnvironment) -> None:
        self.locks.fence(record.branch)
        self._folders.pop(record.branch, None)
        key = f"registry/{env_key(record.branch)}.json"
        data = branch_to_bytes(record)
        for attempt in attempts(f"register {record.branch!r} in {self.objects.describe(key)}"):
            current = self.objects.get(key)
            if current is not None and current.data == data:
                return
            if current is not None:
                self._branch(current, key)  # never replace what does not read
            written = (
                self.objects.create(key, data)
                if current is None
                else self.objects.replace(key, data, current.etag)
            )
            if written is not None:
                return
            attempt.lost()

    def unregister(self, name: str) -> None:
        self.locks.fence(name)
        self._folders.pop(name, None)
        key = f"registry/{env_key(name)}.json"
        for attempt in attempts(f"forget {name!r} in {self.objects.describe(key)}"):
            current = self.objects.get(key)
            if current is None or self.objects.delete(key, current.etag):
                return
            attempt.lost()

    def _branch(self, stored: Stored, key: str) -> BranchEnvironment:
        return branch_from_bytes(stored.data, where=self.objects.describe(key))

    # --- locks ---------------------------------------------------------------------------

    @contextmanager
    def lock(self, env: str, *, owner: str, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[LockInfo]:
        with self.locks.holding(env_key(env), env, owner, timeout) as info:
            try:
                # Prove the ledger writable before the run builds anything, so a read-only
                # state stops it here, not when it records.
                self.check_writable(env)
                yield info
            finally:
                self._counts.pop(self._folders.pop(env, f"ledger/{env_key(env)}/"), None)

    def planning_lock(
        self, *, owner: str, timeout: float = PLANNING_TIMEOUT
    ) -> AbstractContextManager[LockInfo]:
        return self.locks.holding(PLANNING_LOCK, PLANNING_LOCK, owner, timeout)

    def claim(self, env: str, physical_schema: str, builds: Sequence[str], uses: Sequence[str]) -> None:
        if not self.locks.holds(env):
            raise StateError(f"a claim on {env!r} needs its lock, and this process does not hold it")
        self.locks.claim(env, claim_to_document(physical_schema, builds, uses))

    def claims(self) -> list[Claim]:
        return self.locks.claims()

    def break_lock(self, env: str, lock_id: str) -> LockInfo:
        return self.locks.break_lock(env_key(env), env, lock_id)

    def lock_holders(self) -> list[LockInfo]:
        records, problems = self.locks.records()
        if problems:
            raise problems[0]
        return [record.info for record in records]

    def lock_records(self) -> tuple[list[HeldLock], list[str]]:
        records, problems = self.locks.records()
        return records, [problem.message for problem in problems]

    def check_writable(self, env: str) -> None:
        """Prove `env`'s ledger writable. A store whose lock already wrote beside it (a
        bucket's lease) has nothing more to prove."""

    def probe(self) -> Generator[Check, None, None]:
        """Doctor's access probes: conditional create, compare-and-swap and delete of a probe
        object of its own, removed whatever happens."""
        return probe_objects(self.objects)

    # --- documents as bytes (migrate, doctor) --------------------------------------------

    def object_keys(self) -> list[str]:
        return sorted(key for area in STATE_AREAS for key in self.objects.keys(f"{area}/"))

    def read_object(self, key: str) -> bytes | None:
        stored = self.objects.get(document_key(key))
        return None if stored is None else stored.data

    def create_object(self, key: str, data: bytes) -> bool:
        return self.objects.create(document_key(key), data) is not None

    # --- append-only folders -------------------------------------------------------------

    def _append(self, folder: str, render: Callable[[int], bytes], *, start: int = 0) -> int:
        seq = start  # the number to try; 0: list the folder to find it
        for attempt in attempts(f"append to {self.objects.describe(folder)}"):
            seq = seq or len(self._seqs(folder)) + 1
            key, data = folder + entry_name(seq), render(seq)
            if self.objects.create(key, data) is None:
                current = self.objects.get(key)
                if current is None:  # refused, then gone: list again after a pause
                    seq = 0
                    attempt.lost()
                    continue
                if current.data != data:
                    # Another writer took this number, so the next one is free or being raced
                    # for now: try it at once. Backing off here starves a writer (the more it
                    # loses, the longer it sleeps, the more it loses) until it gives up.
                    seq += 1
                    continue
            self._keep(key, data)  # ours (a retried create whose answer was lost, too)
            return seq
        raise AssertionError("unreachable")  # attempts raises when it runs out

    def _seqs(self, folder: str) -> list[int]:
        return self._seqs_of(folder, self.objects.keys(folder))

    def _seqs_of(self, folder: str, keys: list[str]) -> list[int]:
        """The entry numbers among `keys`, checked to be exactly 1..n."""
        names = [key[len(folder) :] for key in keys]
        for name in names:
            if ENTRY_NAME.match(name) and name != entry_name(int(name.removesuffix(".json"))):
                # Two spellings of one number (0001, 00000001) would make two entries share a seq.
                raise StateError(
                    f"{self.objects.describe(folder + name)}: not a ledger entry name", hint=KEEP_HINT
                )
        seqs = sorted(int(name.removesuffix(".json")) for name in names if ENTRY_NAME.match(name))
        gaps = missing_seqs(seqs)
        if gaps:
            found = min(seq for seq in seqs if seq > gaps[0])
            raise StateError(
                f"{self.objects.describe(folder)}: entry {entry_name(gaps[0])} is missing "
                f"(found {entry_name(found)} next)",
                hint="restore the missing entry from a backup; releasekit never rewrites a ledger",
            )
        return seqs

    def _immutables(self, keys: list[str]) -> list[bytes]:
        """Documents that never change once written: read once per process."""
        found = dict((key, data) for key in keys if (data := self._documents.get(key)) is not None)
        missing = [key for key in keys if key not in found]
        for key, stored in zip(missing, self._reads(missing), strict=True):
            if stored is None:
                raise StateError(f"{self.objects.describe(key)} vanished while being read", hint=KEEP_HINT)
            found[key] = self._keep(key, stored.data)
        return [found[key] for key in keys]

    def _keep(self, key: str, data: bytes) -> bytes:
        if self._remember:
            self._documents[key] = data
        return data

    def _reads(self, keys: list[str]) -> list[Stored | None]:
        return read_all(self.objects, keys, self._readers)


def missing_seqs(seqs: Sequence[int]) -> list[int]:
    """The numbers an append-only folder holding `seqs` lacks below its last: history lost."""
    return sorted(set(range(1, max(seqs, default=0) + 1)) - set(seqs))


def entry_name(seq: int) -> str:
    return f"{seq:08d}.json"


def document_key(key: str) -> str:
    """`key`, checked to name a document of the state (migrate copies keys from one store
    to another: a key such as `../x` must never reach a folder)."""
    parts = key.split("/")
    if parts[0] not in STATE_AREAS or any(part in {"", ".", ".."} for part in parts):
        raise StateError(f"{key!r} is not a state document key", hint=f"keys start with one of {STATE_AREAS}")
    return key
