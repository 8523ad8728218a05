"""What a user reads first: every failure, stale entry and declared non-conformance of a run, by library; then
the conformance matrix, one table per area.

The declarations come from the run's ``implementations`` catalogue (``reports.declared``, stored by the plugin),
so a declared failure is listed with its reason, link and smallest case even when it did not run. A run saved
before the catalogue existed still shows every xfailed and stale item, from the stored reason
``"<reason> (<link>)"``.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pandas as pd

from reports.benchviews import AREA_ORDER

MAX_FAILURES_PER_LIBRARY = 60
STATUS_ORDER = ("failed", "stale", "xfailed", "not run")
UNRECORDED = "(no library recorded: a test of the suite, or an implementation that names none)"
_REASON_LINK = re.compile(r"^(?P<reason>.*) \((?P<link>[a-z][a-z0-9+.-]*://[^\s()]+)\)$", re.S)
KINDS = {"test_property": "properties", "test_example": "examples", "test_error_input": "error inputs",
         "test_declared_failure": "declared failures"}
OTHER_KIND = "other tests"


@dataclass
class Finding:
    library: str
    impl: str
    area: str
    test: str  # the check (or the declaration's pattern)
    status: str  # one of STATUS_ORDER
    detail: str  # what happened to it in this run
    reason: str
    link: str = ""
    smallest_case: str = ""
    evidence: str = ""  # the verdict: the failing case with its numbers
    items: int = 0


def safe_link(link: str) -> str:
    """Only web links become anchors; anything else (``javascript:``, a path) stays text."""
    return link if re.match(r"^https?://", link or "") else ""


def case_of(verdict: str) -> str:
    """The case line of a stored verdict (``case: ...``), or ''."""
    for line in verdict.splitlines():
        if line.startswith("case: "):
            return line.removeprefix("case: ").strip()
    return ""


def _matches(check: str, pattern: str) -> bool:
    return check in (pattern, f"declared:{pattern}") or fnmatch.fnmatchcase(check, pattern) or \
        fnmatch.fnmatchcase(check.split(".")[0], pattern)


def findings(outcomes: pd.DataFrame, catalogue: dict[str, dict[str, Any]]) -> list[tuple[str, list[Finding]]]:
    """(library, its findings) for one run's conformance outcomes, libraries with failures first."""
    def library(impl: str, recorded: str = "") -> str:
        return (catalogue.get(impl) or {}).get("library") or recorded or UNRECORDED

    found: list[Finding] = []
    claimed: set[int] = set()
    by_impl = {impl: part for impl, part in outcomes.groupby("impl")} if not outcomes.empty else {}
    for impl, entry in sorted(catalogue.items()):
        rows = by_impl.get(impl)
        for known in entry.get("expected_failures", []):
            found.append(_declared(impl, entry, known, rows, claimed))
    if not outcomes.empty:
        bad = outcomes[outcomes.outcome.isin(["failed", "error", "xpassed"])]
        keys = ["impl", "library", "area", "check", bad.reason.str.slice(0, 400).rename("short")]
        for (impl, lib, area, check, short), part in bad.groupby(keys, sort=True):
            verdict = next((v for v in part.verdict if v), "")
            found.append(Finding(library(impl, lib), impl, area, check, "failed", _items(len(part), "failed"),
                                 short, smallest_case=case_of(verdict), evidence=verdict, items=len(part)))
        leftover = outcomes[outcomes.outcome.isin(["xfailed", "stale"]) & ~outcomes.index.isin(claimed)]
        for (impl, lib, area, outcome, reason), part in leftover.groupby(
                ["impl", "library", "area", "outcome", "reason"], sort=True):
            text = str(reason).removeprefix("stale expected failure: ").split(" -- this entry")[0]
            m = _REASON_LINK.match(text)
            verdict = next((v for v in part.verdict if v), "")
            checks = sorted(set(part.check))
            found.append(Finding(library(impl, lib), impl, area, ", ".join(checks[:4]) + (" …" if len(checks) > 4
                                                                                         else ""),
                                 outcome, _items(len(part), outcome),
                                 m.group("reason") if m else text, safe_link(m.group("link")) if m else "",
                                 case_of(verdict), verdict, len(part)))
    groups: dict[str, list[Finding]] = {}
    for f in found:
        groups.setdefault(f.library, []).append(f)
    ordered = []
    for lib, items in groups.items():
        items.sort(key=lambda f: (STATUS_ORDER.index(f.status), f.impl, f.test))
        failures = [f for f in items if f.status == "failed"]
        if len(failures) > MAX_FAILURES_PER_LIBRARY:
            rest = [f for f in items if f.status != "failed"]
            hidden = len(failures) - MAX_FAILURES_PER_LIBRARY
            items = [*failures[:MAX_FAILURES_PER_LIBRARY],
                     Finding(lib, "…", "", "", "failed", f"{hidden} more distinct failures (see the matrix)", ""),
                     *rest]
        ordered.append((lib, items))
    return sorted(ordered, key=lambda kv: (min(STATUS_ORDER.index(f.status) for f in kv[1]), kv[0]))


def _items(n: int, outcome: str) -> str:
    return f"{outcome} on {n} item{'s' if n != 1 else ''}"


def _declared(impl: str, entry: dict[str, Any], known: dict[str, Any], rows: pd.DataFrame | None,
              claimed: set[int]) -> Finding:
    finding = Finding(entry.get("library") or UNRECORDED, impl, entry.get("area", ""), known["test"], "not run", "",
                      known["reason"], safe_link(known["link"]), known.get("example") or "")
    if rows is None or rows.empty:
        why = "; ".join(entry.get("unavailable") or [])
        finding.detail = f"not run: {why}" if why else "not run (not selected in this run)"
        return finding
    mine = rows[rows.outcome.isin(["xfailed", "stale"]) & rows.reason.str.contains(known["xfail_reason"], regex=False)
                & rows.check.map(lambda c: _matches(str(c), known["test"]))]
    claimed.update(mine.index)
    stale, xfailed = mine[mine.outcome == "stale"], mine[mine.outcome == "xfailed"]
    # Without a declared example: the shortest case among the verdicts (each already shrunk by hypothesis).
    verdict = min((v for v in xfailed.verdict if v), key=lambda v: (len(case_of(v)), v), default="")
    finding.smallest_case = finding.smallest_case or case_of(verdict)
    finding.evidence = verdict
    if not stale.empty:
        finding.status, finding.items = "stale", len(stale)
        finding.detail = f"STALE: passes on {len(stale)} item(s), e.g. {stale.check.iloc[0]}; remove the entry"
    elif not xfailed.empty:
        finding.status, finding.items = "xfailed", len(xfailed)
        checks = sorted(set(xfailed.check))
        finding.detail = _items(len(xfailed), "xfailed") + ": " + ", ".join(checks[:3]) + (
            f" and {len(checks) - 3} more" if len(checks) > 3 else "")
    elif (rows.outcome == "skipped").all():
        finding.detail = "not run: " + str(rows.reason.iloc[0])[:300]
    else:
        finding.detail = "not exercised by the items of this run"
    return finding


# ---- the matrix ------------------------------------------------------------------------------------------------

class Row(NamedTuple):
    area: str
    impl: str
    library: str
    test: str
    check: str
    outcome: str
    reason: str
    checked: int
    unsupported: dict[str, int]
    declared: dict[str, int]


@dataclass
class MatrixCell:
    checked: int = 0
    unsupported: Counter[str] = field(default_factory=Counter)
    declared: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    skip_reasons: Counter[str] = field(default_factory=Counter)
    failed_checks: Counter[str] = field(default_factory=Counter)

    def add(self, row: Row) -> None:
        self.checked += int(row.checked)
        self.unsupported.update(row.unsupported)
        self.declared.update(row.declared)
        outcome = "failed" if row.outcome in ("error", "xpassed") else row.outcome
        self.outcomes[outcome] += 1
        if outcome == "skipped":
            self.skip_reasons[str(row.reason)[:300]] += 1
        elif outcome in ("failed", "stale"):
            self.failed_checks[f"{row.check}: {str(row.reason)[:200]}"] += 1

    @property
    def worst(self) -> str:
        return next((o for o in ("failed", "stale", "xfailed", "passed") if self.outcomes[o]), "skipped")

    @property
    def n_unsupported(self) -> int:
        return sum(self.unsupported.values())

    @property
    def n_declared(self) -> int:
        return sum(self.declared.values())


@dataclass
class AreaMatrix:
    area: str
    kinds: list[str]
    rows: list[tuple[str, str, list[MatrixCell | None], MatrixCell]]  # impl, library, cell per kind, total


def kind_of(test: str) -> str:
    return KINDS.get(test, OTHER_KIND)


def matrix_by_area(outcomes: pd.DataFrame) -> list[AreaMatrix]:
    """Per area, one row per implementation and one column per kind of check; each cell the cases checked,
    unsupported (by reason), declared, and the items passed / xfailed / failed / stale / skipped."""
    cells: dict[str, dict[str, dict[str, MatrixCell]]] = {}
    libraries: dict[str, str] = {}
    names = ["area", "impl", "library", "test", "check", "outcome", "reason", "checked", "unsupported", "declared"]
    for values in zip(*(outcomes[n].tolist() for n in names), strict=True):  # far faster than itertuples
        row = Row(*values)
        kind = kind_of(row.test)
        cells.setdefault(row.area, {}).setdefault(row.impl, {}).setdefault(kind, MatrixCell()).add(row)
        libraries.setdefault(row.impl, row.library)
    order = {a: i for i, a in enumerate(AREA_ORDER)}
    kind_order = [*KINDS.values(), OTHER_KIND]
    matrices = []
    for area in sorted(cells, key=lambda a: (order.get(a, len(order)), a)):
        present = {k for per_impl in cells[area].values() for k in per_impl}
        kinds = [k for k in kind_order if k in present]
        rows = []
        for impl in sorted(cells[area]):
            per_kind = cells[area][impl]
            total = MatrixCell()
            for cell in per_kind.values():
                total.checked += cell.checked
                for name in ("unsupported", "declared", "outcomes", "skip_reasons", "failed_checks"):
                    getattr(total, name).update(getattr(cell, name))
            rows.append((impl, libraries.get(impl, ""), [per_kind.get(k) for k in kinds], total))
        matrices.append(AreaMatrix(area, kinds, rows))
    return matrices
