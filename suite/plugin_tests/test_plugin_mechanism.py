"""The plug-in mechanism: registration rules, discovery, user modules, stale expected failures."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from impls import registry
from impls.base import ExpectedFailure, Implementation, Requirements

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


def test_outside_kernels_pass_fail_and_stale_without_editing_the_repo(tmp_path: Path) -> None:
    """Run pytest as a user would: a correct outside kernel passes, a broken one fails, and an
    expected failure that no longer fails is reported as stale."""
    junit = tmp_path / "junit.xml"
    examples = ROOT / "examples" / "plugin"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
           "--impl-module", str(examples / "my_kernel.py"), "--impl-module", str(examples / "broken_kernel.py"),
           "--impl-module", str(examples / "stale_kernel.py"),
           "--impl", "chunked*", "--impl", "stale-xfail-example",
           "suite/attention/test_attention_conformance.py", "-k",
           "(test_forward and causal_bottom_right) or (test_lse and float32)"]
    env = {**os.environ, "TOKENSPEC_PROFILE": "quick"}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    outcomes: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "")
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[name] = "failed" if failed else "skipped" if case.find("skipped") is not None else "passed"
    good = {n: o for n, o in outcomes.items() if "[chunked-example-" in n}
    broken = {n: o for n, o in outcomes.items() if "[chunked-broken-example-" in n}
    stale = {n: o for n, o in outcomes.items() if "[stale-xfail-example-" in n and n.startswith("test_lse")}
    assert "passed" in good.values() and "failed" not in good.values(), (good, done.stdout[-3000:])
    assert any(o == "failed" for o in broken.values()), (broken, done.stdout[-3000:])
    assert stale and all(o == "failed" for o in stale.values()), stale
    assert "stale expected failure" in done.stdout
