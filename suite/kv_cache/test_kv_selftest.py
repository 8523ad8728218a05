"""Planted bugs: the area's checks must reject each deliberately wrong cache and planner, every run."""

from __future__ import annotations

from typing import Any

import pytest

from impls import registry
from impls.kv_cache.api import KvCacheImpl
from suite.kv_cache.cases import held_case, pinned_plans
from suite.kv_cache.check import check_held, check_plan_blocks, check_plan_concurrency, check_plan_pages
from suite.kv_cache.planted import PLANTED_CACHES, PLANTED_PLANNERS, _ReferencePlanner

PLAN_CHECKS = (check_plan_pages, check_plan_blocks, check_plan_concurrency)
# cases the real dynamic cache passes: the windows are crossed by decode steps, not by the prefill
HELD_CASES = (held_case("mistral-7b-v0.1", 2, 5, 3, "bfloat16"), held_case("llama-3-8b", 2, 13, 2, "bfloat16"),
              held_case("gemma-2-9b", 1, 5, 3, "float32"))


def _real(name: str) -> KvCacheImpl:
    impl = next((i for i in registry.all_implementations("kv_cache") if i.name == name), None)
    if impl is None or impl.unavailable():
        pytest.skip(f"{name} is not available here: {impl.unavailable() if impl else 'not registered'}")
    assert isinstance(impl, KvCacheImpl)
    return impl


@pytest.mark.parametrize("planted", PLANTED_CACHES, ids=lambda c: c.__name__)
def test_planted_cache_is_caught(planted: Any) -> None:
    impl = planted(_real("transformers-dynamic"), f"planted-{planted.__name__}")
    caught = [c for c in HELD_CASES if not check_held(impl, c, 0).ok]
    assert caught, f"{impl.name} passed {[str(c) for c in HELD_CASES]}"


def test_the_views_bug_is_caught_on_the_issues_case() -> None:
    """Counting views on the dynamic cache is the issue's 81,920 B against 98,304 B, after every step."""
    from suite.kv_cache.planted import ViewsAsHeld

    issue = held_case("mistral-7b-v0.1", 2, 13, 2, "bfloat16")
    result = check_held(ViewsAsHeld(_real("transformers-dynamic"), "views"), issue, 0)
    failed = [c.name for c in result.failures()]
    assert "held.prefill.sliding" in failed and "held.step 1.sliding" in failed, result.describe()


def test_the_real_caches_pass_where_no_failure_is_declared() -> None:
    for case in HELD_CASES:
        assert check_held(_real("transformers-dynamic"), case, 0).ok
        assert check_held(_real("transformers-static"), case, 0).ok
    assert check_held(_real("block-allocator"), HELD_CASES[1], 0).ok


@pytest.mark.parametrize("planted", PLANTED_PLANNERS, ids=lambda p: p[0])
def test_planted_planner_is_caught(planted: Any) -> None:
    name, bend, inputs = planted
    impl = _ReferencePlanner(f"planted-{name}", bend, inputs)
    caught = [(check.__name__, str(case)) for case in pinned_plans() for check in PLAN_CHECKS
              if not check(impl, case, 0).ok]
    assert caught, f"{name} passed every pinned plan"


def test_the_reference_planner_passes_itself() -> None:
    honest = _ReferencePlanner("reference", lambda r, p, case: r)
    assert all(check(honest, case, 0).ok for case in pinned_plans() for check in PLAN_CHECKS)
