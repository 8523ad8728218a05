"""Every planted bug is caught by the deterministic checks, every run."""

from __future__ import annotations

import pytest

from reference.usage import FORMATS
from suite.billing.checks import price_failures, usage_failures
from suite.billing.planted import PLANTED_PARSERS, PLANTED_PRICERS


@pytest.mark.parametrize("bug", sorted(PLANTED_PARSERS))
def test_billing_planted_parser_is_caught(bug: str) -> None:
    assert usage_failures(PLANTED_PARSERS[bug], FORMATS), f"planted bug {bug!r} passed the usage checks"


@pytest.mark.parametrize("bug", sorted(PLANTED_PRICERS))
def test_billing_planted_pricer_is_caught(bug: str) -> None:
    assert price_failures(PLANTED_PRICERS[bug]), f"planted bug {bug!r} passed the price checks"
