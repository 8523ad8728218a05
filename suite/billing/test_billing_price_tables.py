"""Informational tables: each library's prices next to the dated cards. Printed and saved; never pass/fail on
prices (stale prices are data, not logic)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from impls.billing._price_tables import price_table
from reference.billing import BillingOptions, PriceCard


def _libraries() -> dict[str, Callable[[str, BillingOptions], PriceCard]]:
    """The installed libraries (found, not imported here: litellm must be imported by its adapter, which
    first sets LITELLM_LOCAL_MODEL_COST_MAP so that it never fetches prices)."""
    from impls.billing import _genai_prices_card, litellm_cost

    libs: dict[str, Callable[[str, BillingOptions], PriceCard]] = {}
    if importlib.util.find_spec("genai_prices"):
        libs["genai-prices"] = _genai_prices_card.card
    if importlib.util.find_spec("litellm"):
        libs["litellm"] = litellm_cost.card
    return libs


@pytest.mark.parametrize("batch", [False, True], ids=["standard", "batch"])
def test_billing_price_table(batch: bool, tmp_path: Path) -> None:
    libs = _libraries()
    if not libs:
        pytest.skip("neither genai-prices nor litellm is installed")
    table = price_table(libs, BillingOptions(batch=batch))
    assert set(table["library"]) == set(libs) and len(table) > 0
    out = Path(os.environ.get("TOKENSPEC_PRICE_TABLE_DIR", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / f"billing_price_table_{'batch' if batch else 'standard'}.csv", index=False)
    differ = table[~table["agrees"]]
    print(f"\n{len(differ)} of {len(table)} price fields differ from the dated cards ({'batch' if batch else 'standard'}):")
    print(differ[["model", "field", "library", "card", "library_value", "note"]].to_string(max_rows=200))
