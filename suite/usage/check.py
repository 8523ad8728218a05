"""The usage checks: one implementation on one case → a Verdict.

- :func:`check`: a payload (golden or rendered) must parse to its record, field by field (the service tier
  only where the implementation reports it);
- :func:`check_fuzz`: mutated payloads may only parse or raise ``UsageError``; the definitely malformed ones
  must raise it. How many is sized from the implementation's declared ``call_cost_s``;
- :func:`check_malformed`: one bad payload must raise ``UsageError`` naming the field.
"""

from __future__ import annotations

import dataclasses
import json
import time

from hypothesis import settings

from impls.usage.api import FuzzCase, MalformedCase, UsageCase, UsageImpl
from reference.usage import Usage, UsageError
from suite.engine.verdict import Line, Verdict, equal, holds, raises, verdict
from suite.usage.fuzz import malformed

FIELDS = ("input_uncached", "cache_read", "cache_write_5m", "cache_write_1h", "output", "reasoning", "web_searches",
          "service_tier")
FUZZ_SECONDS = {"quick": 0.15, "dev": 1.0}  # per format and implementation; other profiles: FUZZ_MAX payloads
FUZZ_MIN, FUZZ_MAX = 200, 10_000


def usage_lines(got: Usage | None, want: Usage | None, context: str) -> list[Line]:
    """One line per field (or one for an unknown usage): ``output=120, but should be 500 [...]``."""
    if got is None or want is None or not isinstance(got, Usage):
        return [equal("usage", got, want, context)]
    return [equal(name, getattr(got, name), getattr(want, name), context) for name in FIELDS]


def check(impl: UsageImpl, case: UsageCase, seed: int) -> Verdict:
    want = case.expected
    notes = []
    if want is not None and not impl.reports_service_tier and want.service_tier is not None:
        want = dataclasses.replace(want, service_tier=None)
        notes.append(f"{impl.name} does not report the service tier: counts compared only")
    try:
        got = impl.parse(case.fmt, case.payload)
    except Exception as err:  # an error on a valid payload is the finding, not a crash of the suite
        return verdict(case, holds("parse", False, f"raised {type(err).__name__}: {str(err)[:300]}"), notes=notes)
    return verdict(case, usage_lines(got, want, f"{impl.name} on {case.fmt}"), notes=notes)


def check_malformed(impl: UsageImpl, case: MalformedCase) -> Verdict:
    return verdict(case, raises("error", lambda: impl.parse(case.fmt, case.payload), (UsageError,),
                                (case.field,) if case.field else ()))


def fuzz_count(impl: UsageImpl) -> int:
    """Payloads to fuzz for ``impl``: FUZZ_SECONDS of its declared call cost, between FUZZ_MIN and FUZZ_MAX."""
    seconds = FUZZ_SECONDS.get(settings.get_current_profile_name())
    if seconds is None:
        return FUZZ_MAX
    per_call = max(impl.call_cost_s, 1e-5)
    return max(FUZZ_MIN, min(FUZZ_MAX, int(seconds / per_call)))


def check_fuzz(impl: UsageImpl, case: FuzzCase, seed: int) -> Verdict:
    count = fuzz_count(impl)
    accepted: list[str] = []
    crashed: list[str] = []
    definite = 0
    started = time.perf_counter()
    for payload, must_fail in malformed(case.fmt, count, seed):
        definite += must_fail
        try:
            impl.parse(case.fmt, payload)
        except UsageError:
            continue
        except Exception as err:  # anything but UsageError escaping is what this check looks for
            crashed.append(f"{type(err).__name__}: {str(err)[:120]} on {json.dumps(payload)}")
            continue
        if must_fail:
            accepted.append(json.dumps(payload))
    took = time.perf_counter() - started
    smallest = min(accepted, key=len) if accepted else ""
    lines = [holds("only_usage_error", not crashed, f"{len(crashed)} of {count} payloads raised another error"
                                                     + (f"; e.g. {min(crashed, key=len)[:400]}" if crashed else "")),
             holds("malformed_rejected", not accepted,
                   f"{len(accepted)} of {definite} definitely malformed payloads accepted"
                   + (f"; smallest: {smallest[:400]}" if accepted else ""))]
    note = (f"fuzzed {count} payloads ({definite} definitely malformed) in {took:.2f} s; sized from "
            f"call_cost_s={impl.call_cost_s:g} (the thorough profile fuzzes {FUZZ_MAX})")
    return verdict(case, lines, notes=[note])
