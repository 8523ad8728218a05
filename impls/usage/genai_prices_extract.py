"""genai-prices ``extract_usage``: a provider response body → genai-prices Usage → canonical record."""

from __future__ import annotations

from typing import Any

from impls.base import ExpectedFailure, Requirements
from impls.registry import register
from impls.usage.api import UsageImpl
from reference.usage import Usage, UsageError

FLAVORS = {"openai.chat": ("openai", "chat"), "openai.responses": ("openai", "responses"),
           "anthropic.messages": ("anthropic", "default"), "gemini": ("google", "default")}


class GenaiPricesExtract(UsageImpl):
    name = "genai-prices-extract"
    description = "genai_prices.extract_usage (bundled extractors)"
    requires = Requirements(modules=("genai_prices",))
    formats = tuple(FLAVORS)
    reports_service_tier = False
    expected_failures = (
        ExpectedFailure(
            test="test_usage_rejects_malformed",
            reason="extract_usage names its own keys in errors (input_tokens for a bad prompt_tokens or "
                   "cache_read_input_tokens), and a cached / reasoning count larger than its parent only surfaces "
                   "downstream as a negative remainder",
            link="https://github.com/pydantic/genai-prices"),
        ExpectedFailure(
            test="test_usage_fuzz_only_documented_error",
            when=lambda case: case.fmt in FLAVORS,
            reason="extract_usage ignores fields it does not use (a negative or non-integer total_tokens) and "
                   "treats a non-numeric cached_tokens or reasoning_tokens ('12', [1], {...}) as absent, i.e. 0",
            link="https://github.com/pydantic/genai-prices"),
    )

    def parse(self, fmt: str, payload: Any) -> Usage | None:
        from genai_prices import extract_usage

        provider, flavor = FLAVORS[fmt]
        root = "usageMetadata" if fmt == "gemini" else "usage"
        if not isinstance(payload, dict):
            raise UsageError("body", f"must be an object; got {type(payload).__name__}")
        if payload.get(root) is None:
            return None
        try:
            u = extract_usage(payload, provider_id=provider, api_flavor=flavor).usage
        except ValueError as err:  # genai-prices reports bad shapes as ValueError subclasses
            raise UsageError(root, f"genai-prices: {err}") from None
        values = {k: getattr(u, k, None) or 0 for k in (
            "input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens", "output_tokens",
            "output_reasoning_tokens", "web_searches")}
        for key, value in values.items():
            if type(value) is not int or value < 0:
                raise UsageError(f"{root}.{key}", f"genai-prices extracted {value!r}")
        uncached = values["input_tokens"] - values["cache_read_tokens"] - values["cache_write_tokens"]
        return Usage(input_uncached=uncached, cache_read=values["cache_read_tokens"],
                     cache_write_5m=values["cache_write_tokens"] - values["cache_write_1h_tokens"],
                     cache_write_1h=values["cache_write_1h_tokens"], output=values["output_tokens"],
                     reasoning=values["output_reasoning_tokens"], web_searches=values["web_searches"])


register(GenaiPricesExtract())
