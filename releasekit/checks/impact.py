"""Impact and data diff: how each changed model differs between two environments' views.

Given the changes `checks.changes.detect_changes` found, `measure_impact` reads the base
environment's schema and the branch environment's schema (each a schema of views named
after the models) and classifies every change:

- breaking: a model that something reads lost or retyped a column, or a removed model that
  something read in the base. `breaking_because` names those readers;
- non-breaking: a new model, added columns, changed values;
- metadata-only: only descriptions, tags, meta, docs or tests changed.

Queries per model, to keep CI fast: the columns of each side; for new, removed and
redefined models also the row count of each side and, when a unique key is declared, one
row comparison on it (in the warehouse). A model whose own change is metadata only and
whose version is unchanged reads the same relation on both sides: nothing is queried. A
model changed only through its parents is queried for its columns alone, and reported only
when they changed (a `select *` passing a dropped column on). Ephemeral models have no view:
they are reported without columns or rows.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from releasekit.checks.changes import ModelChange
from releasekit.checks.report import ChangeClass, ColumnChange, Finding, ModelImpact, RowDiff, Severity
from releasekit.errors import WarehouseError
from releasekit.graph import Node
from releasekit.warehouse.base import RowComparison, Warehouse
from releasekit.warehouse.inspection import describe_row

MAX_EXAMPLES = 5
_MEASURED_IN_FULL = frozenset({"new", "removed", "definition"})
_KEY_HINT = "declare one with `meta: {releasekit: {unique_key: <column>}}` to diff its rows"

Columns = dict[str, str]  # name -> data type, in column order


@dataclass(frozen=True)
class DataDiff:
    impacts: tuple[ModelImpact, ...]
    notes: tuple[str, ...] = ()  # what was not measured and why, for the report's notes


def measure_impact(
    changes: Sequence[ModelChange],
    warehouse: Warehouse,
    base_schema: str,
    branch_schema: str,
    *,
    examples: int = MAX_EXAMPLES,
    base_relations: Mapping[str, tuple[str, str]] | None = None,
) -> DataDiff:
    """The impact of every change, measured on the environments' views; examples are capped
    at MAX_EXAMPLES keys per model. `base_relations` (model name -> (schema, relation))
    measures the base side on those relations instead of its views: the base release a
    branch environment is on, whose data it holds, when the base has moved on since."""
    measure = _Measure(warehouse, base_schema, branch_schema, min(examples, MAX_EXAMPLES))
    measure.pinned = dict(base_relations or {})
    found = (measure.impact(change) for change in changes)
    return DataDiff(tuple(impact for impact in found if impact is not None), tuple(measure.notes))


def breaking_findings(impacts: Sequence[ModelImpact], *, severity: Severity = "error") -> tuple[Finding, ...]:
    """One `breaking-change` finding of the diff check per breaking impact."""
    return tuple(
        Finding(check="diff", code="breaking-change", severity=severity, subject=i.model, message=_message(i))
        for i in impacts
        if i.classification == "breaking"
    )


class _Measure:
    def __init__(self, warehouse: Warehouse, base: str, branch: str, examples: int) -> None:
        self._warehouse, self._base, self._branch, self._examples = warehouse, base, branch, examples
        self.notes: list[str] = []
        self.pinned: dict[str, tuple[str, str]] = {}

    def _at(self, schema: str, name: str) -> tuple[str, str]:
        """Where a model is read on a side: the base's pinned relation, else the view."""
        return self.pinned.get(name, (schema, name)) if schema == self._base else (schema, name)

    def impact(self, change: ModelChange) -> ModelImpact | None:
        quiet = change.kind == "metadata" and change.same_version
        before = None if quiet else self._columns(self._base, change.before)
        after = None if quiet else self._columns(self._branch, change.after)
        columns = _column_changes(before, after)
        if change.kind == "upstream" and not columns:
            return None
        classification, because = _classify(change, columns)
        impact = ModelImpact(
            model=change.name,
            unique_id=change.unique_id,
            classification=classification,
            reasons=change.reasons,
            downstream=change.downstream,
            exposures=change.exposures,
            breaking_because=because,
            columns=columns,
        )
        return self._rows(impact, change, before, after) if change.kind in _MEASURED_IN_FULL else impact

    def _columns(self, schema: str, node: Node | None) -> Columns | None:
        """The view's columns; None when the model has none on this side (absent, ephemeral)."""
        if node is None or not node.is_material:
            return None
        found = dict(self._warehouse.columns(*self._at(schema, node.name)))
        if not found:
            self.notes.append(f"{node.name}: no view {schema}.{node.name}, so it was not measured there")
            return None
        return found

    def _rows(
        self, impact: ModelImpact, change: ModelChange, before: Columns | None, after: Columns | None
    ) -> ModelImpact:
        count = self._warehouse.row_count
        return dataclasses.replace(
            impact,
            rows_before=None if before is None else count(*self._at(self._base, change.name)),
            rows_after=None if after is None else count(self._branch, change.name),
            rows=self._row_diff(change, before, after) if before and after else None,
        )

    def _row_diff(self, change: ModelChange, before: Columns, after: Columns) -> RowDiff | None:
        key = _resolve(change.after.unique_key if change.after else (), after)
        if not key:
            self.notes.append(f"{change.name}: no unique key, rows not diffed; {_KEY_HINT}")
            return None
        for schema, columns in ((self._base, before), (self._branch, after)):
            missing = [name for name in key if name not in columns]
            if missing:
                self.notes.append(
                    f"{change.name}: no key column {', '.join(missing)} in {schema}, rows not diffed"
                )
                return None
        shared = [name for name in after if name in before and name not in key]
        try:
            compared = self._warehouse.compare_rows(
                self._at(self._base, change.name),
                (self._branch, change.name),
                key,
                shared,
                examples=self._examples,
            )
        except WarehouseError as exc:  # a key not unique on a side: worth a note, not a stop
            hint = f" ({exc.hint})" if exc.hint else ""
            self.notes.append(f"{change.name}: rows not diffed: {exc.message}{hint}")
            return None
        found = _examples(compared, self._examples)
        return RowDiff(compared.key, compared.added, compared.removed, compared.changed, found)


def _column_changes(before: Columns | None, after: Columns | None) -> tuple[ColumnChange, ...]:
    if before is None or after is None:
        return ()  # a new or removed view: all of its columns come or go with it
    removed = [
        ColumnChange(name, "removed", before=kind) for name, kind in before.items() if name not in after
    ]
    retyped = [
        ColumnChange(name, "retyped", before=before[name], after=kind)
        for name, kind in after.items()
        if name in before and before[name] != kind
    ]
    added = [ColumnChange(name, "added", after=kind) for name, kind in after.items() if name not in before]
    return (*removed, *retyped, *added)


def _classify(change: ModelChange, columns: Sequence[ColumnChange]) -> tuple[ChangeClass, tuple[str, ...]]:
    lost = change.kind == "removed" or any(column.change != "added" for column in columns)
    if lost and change.dependants:
        return "breaking", change.dependants
    if change.kind == "metadata" and not columns:
        return "metadata-only", ()
    return "non-breaking", ()


def _resolve(key: Sequence[str], columns: Columns) -> tuple[str, ...]:
    """The key's columns as the warehouse spells them (a YAML `ID` is `id` in PostgreSQL)."""
    spelled = {name.lower(): name for name in columns}
    return tuple(name if name in columns else spelled.get(name.lower(), name) for name in key)


def _examples(compared: RowComparison, limit: int) -> tuple[str, ...]:
    """Up to `limit` keys, taking changed, added and removed rows in turn."""
    kinds = (
        ("changed", compared.changed_examples),
        ("added", compared.added_examples),
        ("removed", compared.removed_examples),
    )
    rendered = [[f"{kind} {_render_key(compared.key, row)}" for row in rows] for kind, rows in kinds]
    mixed = (item for group in itertools.zip_longest(*rendered) for item in group if item is not None)
    return tuple(itertools.islice(mixed, limit))


def _render_key(key: Sequence[str], values: Sequence[object]) -> str:
    text = describe_row(key, values)
    return text if len(key) == 1 else f"({text})"


def _message(impact: ModelImpact) -> str:
    readers = ", ".join(impact.breaking_because)
    if not impact.columns:
        return (
            f"{impact.model} is removed, but {readers} read it in the base environment: "
            "keep it until they move off it, or move them in this branch"
        )
    lost = [c for c in impact.columns if c.change != "added"]
    what = "; ".join(
        f"column {c.column} removed"
        if c.change == "removed"
        else f"column {c.column} {c.before} -> {c.after}"
        for c in lost
    )
    return f"{impact.model}: {what}, and {readers} read it: keep the column(s), or check each reader copes"
