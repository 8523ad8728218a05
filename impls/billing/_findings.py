"""Writing down a library's billing non-conformances: which requests each covers, hand-listed from measurement.

``where(...)`` builds the ``when`` of an ExpectedFailure from what a request is (its card's model, the date,
long context, batch, tier, the parts it uses, the id it names); it takes a single request or a pair (either side).
Nothing here reads the library's data: the lists are the measured findings, so one that stops failing is stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from impls.base import ExpectedFailure
from impls.billing.api import BillingCase, PairCase
from reference import billing as ref


def where(models: Iterable[str] = (), *, ids: Iterable[str] = (), since: date | None = None,
          until: date | None = None, prompt_over: int | None = None,
          prompt_at_most: int | None = None, batch: bool | None = None,
          tiers: Iterable[str] = (), parts: Iterable[str] = (), reported: Iterable[str] = (),
          provider: str | None = None) -> Callable[[Any], bool]:
    """Requests on these cards' models (or naming these ids), in [since, until), with these traits.

    ``prompt_over`` / ``prompt_at_most``: the prompt (input + cache reads + writes) is above / at most this many
    tokens;
    ``parts``: any of the usage counts is non-zero; ``tiers``: the resolved service tier is one of them;
    ``reported``: the usage reports one of these tiers.
    """
    models, ids, tiers, parts, reported = set(models), set(ids), set(tiers), tuple(parts), set(reported)

    def one(case: BillingCase) -> bool:
        try:
            card, options = case.card, case.resolved
        except ref.PriceError:
            return False
        checks = (
            not models or card.model in models,
            not ids or case.model in ids,
            provider is None or card.provider == provider,
            since is None or case.day >= since,
            until is None or case.day < until,
            prompt_over is None or case.usage.prompt > prompt_over,
            prompt_at_most is None or case.usage.prompt <= prompt_at_most,
            batch is None or options.batch == batch,
            not tiers or options.service_tier in tiers,
            not parts or any(getattr(case.usage, p) for p in parts),
            not reported or case.usage.service_tier in reported,
        )
        return all(checks)

    def when(case: Any) -> bool:
        if isinstance(case, PairCase):
            return one(case.first) or one(case.second)
        return isinstance(case, BillingCase) and one(case)

    return when


def finding(tests: str | Iterable[str], reason: str, link: str, when: Callable[[Any], bool],
            example: BillingCase) -> tuple[ExpectedFailure, ...]:
    """One finding on each of ``tests`` (``price.invoice`` for price data; ``price.*`` or ``*`` for logic)."""
    names = (tests,) if isinstance(tests, str) else tuple(tests)
    return tuple(ExpectedFailure(test=t, reason=reason, link=link, when=when, example=example) for t in names)
