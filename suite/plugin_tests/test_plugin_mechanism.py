"""The plug-in mechanism: registration rules, discovery, user modules, stale expected failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from impls import registry
from impls.base import ExpectedFailure, Implementation, Requirements
from reports.store import load_runs

ROOT = Path(__file__).resolve().parents[2]


class Dummy(Implementation):
    area = "billing"
    name = "dummy-for-registry-test"


def test_every_implementation_module_imports() -> None:
    broken = registry.broken_modules()
    assert not broken, "\n\n".join(f"{b.origin}:\n{b.error}" for b in broken)


def test_names_are_unique_across_areas() -> None:
    registry.register(first := Dummy())
    try:
        with pytest.raises(ValueError, match="registered twice"):
            registry.register(Dummy())
        registry.register(first)  # the same object again is harmless
    finally:
        registry._registry.pop(first.name)


def test_unknown_area_is_rejected() -> None:
    class Bad(Implementation):
        area = "astrology"
        name = "bad"

    with pytest.raises(ValueError, match="'astrology'"):
        registry.register(Bad())


def test_select_reports_unknown_names() -> None:
    with pytest.raises(LookupError, match=r"matches no implementation; known: .*eager"):
        registry.select(["no-such-kernel"])
    assert "eager" in registry.select(["eag*"])


def test_requirements_give_reasons() -> None:
    reasons = Requirements(modules=("surely_not_installed_module_xyz",), env=("TOKENSPEC_SURELY_UNSET",)).unmet()
    assert reasons == ["module 'surely_not_installed_module_xyz' is not installed",
                       "environment variable TOKENSPEC_SURELY_UNSET is not set"]


def test_expected_failure_needs_reason_and_link() -> None:
    with pytest.raises(ValueError, match="reason and a link"):
        ExpectedFailure(test="test_x", reason="", link="")
    entry = ExpectedFailure(test="test_lse*", reason="r", link="l", when=lambda case: case == 3)
    assert entry.matches("test_lse_varlen", 3) and not entry.matches("test_lse_varlen", 4)
    assert not entry.matches("test_forward", 3)


def test_a_module_that_fails_to_import_is_kept_as_broken(tmp_path: Path) -> None:
    bad = tmp_path / "crashing_module.py"
    bad.write_text("raise RuntimeError('boom at import')\n")
    before = len(registry.broken_modules())
    registry._guarded(str(bad), lambda: registry.load_user_module(str(bad)))
    broken = registry.broken_modules()
    assert len(broken) == before + 1 and "boom at import" in broken[-1].error
    registry._broken.pop()


def _run_outside(tmp_path: Path, modules: list[str], patterns: list[str], select: str) -> tuple[
        dict[str, dict], str]:
    """Run pytest as a user would, on kernels outside the package; the stored records by node id."""
    examples = ROOT / "examples" / "plugin"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--store", str(tmp_path),
           *(arg for m in modules for arg in ("--impl-module", str(examples / m))),
           *(arg for p in patterns for arg in ("--impl", p)), "suite/test_conformance.py", "-k", select]
    env = {**os.environ, "TOKENSPEC_PROFILE": "quick"}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    (run,), errors = load_runs([tmp_path])
    assert not errors, errors
    return {o["nodeid"].split("::")[-1]: o for o in run.outcomes}, done.stdout


def test_outside_kernels_pass_fail_and_stale_without_editing_the_repo(tmp_path: Path) -> None:
    """A correct outside kernel passes, a broken one fails, and declared failures that no longer fail are stale."""
    records, stdout = _run_outside(tmp_path, ["my_kernel.py", "broken_kernel.py", "stale_kernel.py"],
                                   ["chunked-example", "chunked-broken-example", "stale-*-example"],
                                   "forward and causal_bottom_right or lse and float32 or declared_failure")
    good = {n: r["outcome"] for n, r in records.items() if "[chunked-example-" in n}
    broken = {n: r["outcome"] for n, r in records.items() if "[chunked-broken-example-" in n}
    stale = {n: r["outcome"] for n, r in records.items()
             if "[stale-xfail-example-attention.lse." in n or "[stale-when-example-attention.declared" in n}
    assert "passed" in good.values() and "failed" not in good.values(), (good, stdout[-3000:])
    assert "failed" in broken.values(), (broken, stdout[-3000:])
    assert stale and set(stale.values()) == {"stale"}, stale
    assert "test_declared_failure[stale-when-example-attention.declared.0]" in stale
    assert "stale expected failures" in stdout and "believed to drop the window's left edge" in stdout


def test_declined_capabilities_keep_every_other_draw_checked(tmp_path: Path) -> None:
    """A kernel that takes float32 only and gives no LSE: its other dtypes are skipped with that reason, and in
    its float32 items every drawn case not needing the LSE is checked (the full example budget)."""
    records, _ = _run_outside(tmp_path, ["declared_kernel.py"], ["chunked-fp32-example"],
                                   "forward.float or nan_in_masked_keys or lse")
    mine = {n: r for n, r in records.items() if "[chunked-fp32-example-" in n}
    half = [r for n, r in mine.items() if ".float16" in n or ".bfloat16" in n]
    assert half and all(r["outcome"] == "skipped" and "computes in float32, not" in r["reason"] for r in half)
    plain = mine["test_property[chunked-fp32-example-attention.forward.float32.plain]"]
    assert plain["outcome"] == "passed" and plain["tally"]["checked"] >= 12, plain  # 12 drawn (quick) + 2 pinned
    mixed = mine["test_property[chunked-fp32-example-attention.nan_in_masked_keys.float32]"]
    declined = mixed["tally"]["unsupported"]
    assert mixed["outcome"] == "passed" and mixed["tally"]["checked"] > 0, mixed
    assert declined.get("this kernel does not return the LSE", 0) > 0, mixed
    lse = mine["test_property[chunked-fp32-example-attention.lse.float32]"]
    assert lse["outcome"] == "skipped" and "does not return the LSE" in lse["reason"], lse


def test_a_declared_case_level_failure_is_stored_as_xfailed(tmp_path: Path) -> None:
    records, _ = _run_outside(tmp_path, ["declared_kernel.py"], ["chunked-declared-example"],
                                   "forward and float32 or declared_failure")
    mine = {n: r for n, r in records.items() if "[chunked-declared-example-" in n}
    declared = mine["test_declared_failure[chunked-declared-example-attention.declared.0]"]
    assert declared["outcome"] == "xfailed", declared
    assert "aligns every causal mask top-left" in declared["reason"] and "example.invalid" in declared["reason"]
    assert "max error" in declared["verdict"], declared  # the evidence: the case and its numbers
    covered = mine["test_property[chunked-declared-example-attention.forward.float32.causal_bottom_right]"]
    assert covered["tally"]["declared"], covered  # the covered draws were counted, not checked
    assert "failed" not in {r["outcome"] for r in mine.values()}, {n: r["outcome"] for n, r in mine.items()}


def test_a_plugin_beside_a_module_named_like_ours_is_refused(tmp_path: Path) -> None:
    (tmp_path / "reference.py").write_text("X = 1\n")
    plugin = tmp_path / "kernel.py"
    plugin.write_text("import reference\n")
    with pytest.raises(registry.ModuleClash, match=r"reference\.py has the name of tokenspec's top-level package "
                                                   r"'reference'"):
        registry.load_user_module(str(plugin))
