"""The results store: one self-describing directory per run, written atomically, never overwritten.

A run directory ``<UTC time>_<host>_<device>`` holds ``run.json`` (format, environment, command),
``outcomes.jsonl`` (one conformance outcome per line) and optionally ``benchmarks.json`` (the
pytest-benchmark JSON). It is assembled under a hidden temporary name and renamed into place, so an
interrupted run leaves nothing half-written where the loader looks.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FORMAT = "tokenspec-run/1"
DEFAULT_ROOT = Path(__file__).resolve().parent / "runs"


class RunLoadError(ValueError):
    """A file in the store that is not a valid tokenspec run; the message names the file."""


@dataclass
class Run:
    path: Path
    meta: dict[str, Any]
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    benchmarks: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")[:40] or "unknown"


def save_run(meta: dict[str, Any], outcomes: Iterable[dict[str, Any]], benchmarks: dict[str, Any] | None = None,
             root: Path = DEFAULT_ROOT, now: datetime | None = None) -> Path:
    """Write a new run directory and return its path; an existing run is never touched."""
    root.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}_{_slug(meta.get('host') or socket.gethostname())}_{_slug(meta.get('device', 'cpu'))}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    (tmp / "run.json").write_text(json.dumps({"format": FORMAT, **meta}, indent=1, default=str))
    with (tmp / "outcomes.jsonl").open("w") as fh:
        for row in outcomes:
            fh.write(json.dumps(row, default=str) + "\n")
    if benchmarks:
        (tmp / "benchmarks.json").write_text(json.dumps(benchmarks, default=str))
    for attempt in range(1000):
        target = root / (base if attempt == 0 else f"{base}-{attempt}")
        try:
            os.rename(tmp, target)  # atomic; fails if the target exists and is not empty
            return target
        except OSError:
            if not target.exists():
                raise
    raise RuntimeError(f"could not find a free run name for {base} in {root}")


def load_run(path: Path) -> Run:
    meta_file = path / "run.json"
    try:
        meta = json.loads(meta_file.read_text())
    except FileNotFoundError:
        raise RunLoadError(f"{meta_file}: missing; {path} is not a tokenspec run") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunLoadError(f"{meta_file}: not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RunLoadError(f"{meta_file}: format is {meta.get('format') if isinstance(meta, dict) else meta!r}, "
                           f"expected {FORMAT!r}")
    outcome_file = path / "outcomes.jsonl"
    outcomes = _outcomes(outcome_file) if outcome_file.exists() else []
    benchmarks: dict[str, Any] = {}
    bench_file = path / "benchmarks.json"
    if bench_file.exists():
        try:
            benchmarks = json.loads(bench_file.read_text())
        except json.JSONDecodeError as err:
            raise RunLoadError(f"{bench_file}: not valid JSON ({err})") from None
        if not isinstance(benchmarks, dict) or not isinstance(benchmarks.get("benchmarks", []), list):
            raise RunLoadError(f"{bench_file}: expected pytest-benchmark JSON with a 'benchmarks' list")
    return Run(path, meta, outcomes, benchmarks)


def _outcomes(outcome_file: Path) -> list[dict[str, Any]]:
    """Every line of ``outcomes.jsonl``; a bad line is named by its number."""
    lines = [line for line in outcome_file.read_text().splitlines() if line.strip()]
    try:
        rows = json.loads("[" + ",".join(lines) + "]")  # one parse: a large run loads twice as fast
    except json.JSONDecodeError:
        rows = None
    if not isinstance(rows, list) or len(rows) != len(lines):  # find the line that is wrong
        rows = []
        for number, line in enumerate(lines, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise RunLoadError(f"{outcome_file}:{number}: not valid JSON ({err})") from None
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict) or "outcome" not in row:
            raise RunLoadError(f"{outcome_file}:{number}: expected an object with an 'outcome'")
    return rows


def load_runs(roots: Iterable[Path] = (DEFAULT_ROOT,)) -> tuple[list[Run], list[str]]:
    """Every run under the roots (newest last) and one error message per run that could not be read."""
    runs, errors = [], []
    for root in roots:
        if not root.exists():
            continue
        candidates = [root] if (root / "run.json").exists() else sorted(p for p in root.rglob("*") if p.is_dir())
        for path in candidates:
            if path.name.startswith(".tmp-") or not any(path.glob("*.json*")):
                continue
            try:
                runs.append(load_run(path))
            except RunLoadError as err:
                errors.append(str(err))
    return sorted(runs, key=lambda r: str(r.meta.get("started", r.name))), errors


def find_run(name: str, root: Path = DEFAULT_ROOT) -> Run:
    """A run by its directory, or by its name (or a unique prefix of it) anywhere under ``root``."""
    path = Path(name)
    if (path / "run.json").exists():
        return load_run(path)
    matches = sorted(p.parent for p in root.rglob("run.json") if p.parent.name.startswith(name)
                     and not p.parent.name.startswith(".tmp-")) if root.exists() else []
    exact = [p for p in matches if p.name == name]
    if len(exact) == 1 or len(matches) == 1:
        return load_run((exact or matches)[0])
    if not matches:
        raise RunLoadError(f"no run named {name!r} in {root} (and {name!r} is not a run directory)")
    raise RunLoadError(f"{name!r} names {len(matches)} runs in {root}: {', '.join(p.name for p in matches[:5])}")
