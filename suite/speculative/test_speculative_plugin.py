"""Outside samplers (examples/plugin/samplers.py) run as a user would, in a subprocess; the stored run is read back.

One run serves the three tests: a sampler that declines greedy keeps every other draw checked; a slow one gets
verdicts that state the power they keep; a case-level expected failure is stored as xfailed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reports.store import load_runs

ROOT = Path(__file__).resolve().parents[2]
SELECT = ("(no-greedy-example and (decisions.random or decisions.mixed or greedy.chain)) or "
          "(slow-example and law_fixed.random) or "
          "(xfail-example and (law_fixed.ngram or outcome_law.ragged or test_declared_failure))")


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, dict[str, Any]], str]:
    store = tmp_path_factory.mktemp("plugin-run")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-disable", "--store",
           str(store), "--impl-module", str(ROOT / "examples" / "plugin" / "samplers.py"), "--impl", "outside-*",
           "suite/test_conformance.py", "-k", SELECT]
    env = {**os.environ, "TOKENSPEC_PROFILE": "quick"}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    (run,), errors = load_runs([store])
    assert not errors, errors
    return {o["nodeid"].split("::")[-1]: o for o in run.outcomes}, done.stdout


def _of(records: dict[str, dict[str, Any]], impl: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in records.items() if f"[{impl}-" in n}


def test_a_sampler_without_greedy_has_every_other_draw_checked(stored: tuple[dict, str]) -> None:
    records, stdout = stored
    mine = _of(records, "outside-no-greedy-example")
    greedy = mine["test_property[outside-no-greedy-example-speculative.greedy.chain]"]
    assert greedy["outcome"] == "skipped" and "this sampler has no greedy path" in greedy["reason"], greedy
    plain = mine["test_property[outside-no-greedy-example-speculative.decisions.random]"]
    assert plain["outcome"] == "passed" and plain["tally"]["checked"] == 12 + 3, plain  # 12 drawn + 3 pinned
    mixed = mine["test_property[outside-no-greedy-example-speculative.decisions.mixed]"]
    assert mixed["outcome"] == "passed", (mixed, stdout[-3000:])
    # every sampled draw was checked: the only declined ones are greedy (12 examples; equal cases count once)
    assert set(mixed["tally"]["unsupported"]) == {"this sampler has no greedy path"}, mixed
    assert mixed["tally"]["unsupported"]["this sampler has no greedy path"] > 0 and mixed["tally"]["checked"] >= 10, mixed
    assert "failed" not in {r["outcome"] for r in mine.values()}, {n: r["outcome"] for n, r in mine.items()}


def test_a_slow_sampler_states_the_power_it_keeps(stored: tuple[dict, str]) -> None:
    records, _ = stored
    law = _of(records, "outside-slow-example")["test_example[outside-slow-example-speculative.law_fixed.random]"]
    assert law["outcome"] == "passed", law
    notes = " ".join(law["tally"]["notes"])
    assert "to detect TV 0.01 at N = 2,000" in notes and "full power needs N = 172,000" in notes, notes
    assert "at the declared 0.0005 s per request" in notes, notes


def test_a_declared_case_level_failure_is_stored_as_xfailed(stored: tuple[dict, str]) -> None:
    records, _ = stored
    mine = _of(records, "outside-xfail-example")
    declared = mine["test_declared_failure[outside-xfail-example-speculative.declared.0]"]
    assert declared["outcome"] == "xfailed", declared
    assert "samples from p, not p without the drafted token" in declared["reason"], declared
    assert "example.invalid" in declared["reason"] and "X²" in declared["verdict"], declared
    pinned = mine["test_example[outside-xfail-example-speculative.law_fixed.ngram]"]
    assert pinned["outcome"] == "xfailed", pinned
    mixed = mine["test_property[outside-xfail-example-speculative.outcome_law.ragged]"]
    assert mixed["outcome"] == "passed" and mixed["tally"]["declared"] and mixed["tally"]["checked"], mixed
