"""The KV-cache area's checks: ``check(impl, case, seed) -> Verdict``.

- :func:`check_held`: after the prefill and after every decode step, each layer kind holds exactly the bytes the
  reference says an implementation of its declared kind must hold (exact tokens, whole blocks of
  ``impl.block_size``, a preallocated ``max_cache_len``, or only what the next step needs), and the tensors it exposes cover at least what the
  next step needs and no more than what is held.
- :func:`check_plan_pages`, :func:`check_plan_blocks`, :func:`check_plan_concurrency`: a planner's page per layer
  (before and after page-size unification), its groups and pool, and the requests it says fit, against
  :func:`reference.kv_plan.plan` on the same explicit inputs. A planner that refuses the budget must do so
  exactly when not one request fits.
"""

from __future__ import annotations

from typing import Any

from impls.kv_cache.api import CannotPlan, KvCacheImpl, KvCase, NoRoom, PlanCase, PlanResult
from reference import kv_cache as ref
from reference.kv_plan import Plan, PlanInputs, Unplannable, layer_plans, plan
from reference.model_config import ATTENTION_KINDS, MAMBA, ModelShape
from suite.engine.verdict import Line, Verdict, close, equal, holds, verdict


def reference_held(impl: KvCacheImpl, case: KvCase, tokens: int) -> dict[str, int]:
    """What ``impl`` must hold per layer kind after ``tokens`` tokens, by what it declares itself to be."""
    shape = case.shape
    if impl.block_size is not None:
        tokens_of = {k: ref.paged_tokens(shape, k, tokens, impl.block_size) for k in shape.kinds}
    elif impl.preallocates:
        tokens_of = {k: ref.static_tokens(shape, k, case.max_cache_len) for k in shape.kinds}
    elif impl.window_minimum:
        tokens_of = {k: ref.next_step_tokens(shape, k, tokens) for k in shape.kinds}
    else:
        tokens_of = {k: ref.kept_tokens(shape, k, tokens) for k in shape.kinds}
    out = ref.bytes_by_kind(shape, case.batch, tokens_of, case.dtype)
    if MAMBA in shape.kinds:
        assert shape.mamba is not None
        out[MAMBA] = ref.mamba_state_bytes(shape, case.batch, case.dtype, impl.mamba_ssm_dtype or case.dtype,
                                           shape.mamba.conv_kernel)
    return out


def _needed(shape: ModelShape, case: KvCase, tokens: int) -> dict[str, int]:
    return ref.bytes_by_kind(shape, case.batch, {k: ref.next_step_tokens(shape, k, tokens) for k in shape.kinds},
                             case.dtype)


def check_held(impl: KvCacheImpl, case: KvCase, seed: int) -> Verdict:
    snapshots = impl.measure(case)
    shape = case.shape
    lines: list[Line] = [equal("steps", [s.tokens for s in snapshots],
                               [case.prompt + k for k in range(case.decode_steps + 1)], "prefill, then each step")]
    for snap in snapshots:
        t, label = snap.tokens, "prefill" if snap.tokens == case.prompt else f"step {snap.tokens - case.prompt}"
        want, need = reference_held(impl, case, t), _needed(shape, case, t)
        for kind in shape.kinds:
            got = snap.by_kind.get(kind)
            if got is None:
                lines.append(holds(f"{label}.{kind}", False, f"no figure for the {kind} layers at {t} tokens"))
                continue
            peak = ref.bytes_by_kind(shape, case.batch, {k: ref.prefill_peak_tokens(k, t) for k in shape.kinds},
                                     case.dtype).get(kind)
            context = (f"{label} at {t} tokens: {shape.count(kind)} {kind} layer(s) hold {got.held:,} B of storage "
                       f"behind {got.logical:,} B of tensors; the reference keeps {want[kind]:,} B"
                       + (f" (a prefill-then-trim peak is {peak:,} B)" if peak is not None and peak != want[kind]
                          else "") + (f"; {snap.note}" if snap.note else ""))
            lines.append(equal(f"held.{label}.{kind}", got.held, want[kind], context))
            if kind in ATTENTION_KINDS:
                lines.append(holds(f"logical.{label}.{kind}", need[kind] <= got.logical <= got.held,
                                   f"tensors {got.logical:,} B: at least the {need[kind]:,} B the next step needs, "
                                   f"at most the {got.held:,} B held"))
        extra = sorted(set(snap.by_kind) - set(shape.kinds))
        if extra:
            lines.append(holds(f"{label}.kinds", False, f"figures for layer kinds the model lacks: {extra}"))
    return verdict(case, lines)


# ---- planners -----------------------------------------------------------------------------------------------------

def reference_plan(case: PlanCase) -> Plan:
    return plan(case.shape, plan_inputs(case))


def plan_inputs(case: PlanCase) -> PlanInputs:
    return PlanInputs(max_model_len=case.max_model_len, kv_budget=case.kv_budget, kv_dtype=case.dtype,
                      block_size=case.block_size, in_flight_tokens=case.in_flight_tokens,
                      hybrid_groups=case.hybrid_groups, prefix_tokens=case.prefix_tokens,
                      state_dtypes=(case.model_dtype, case.model_dtype), draft=case.draft_shape)


def _plan_or_refusal(impl: KvCacheImpl, case: PlanCase) -> tuple[PlanResult | None, Plan | None, list[Line]]:
    """The planner's answer and the reference's, or (None, ...) with the line that judges a refusal."""
    try:
        want: Plan | None = reference_plan(case)
        unplannable = ""
    except Unplannable as why:
        want, unplannable = None, str(why)
    try:
        got = impl.plan(case)
    except CannotPlan as err:
        told = "the reference refuses too" if want is None else f"the reference plans {len(want.groups)} groups"
        return None, want, [holds("refuses_layers", want is None, f"refused the layers ({str(err)[:160]}); {told}")]
    except NoRoom as err:
        if want is None:
            return None, want, [holds("refuses_layers", False, f"refused the budget ({str(err)[:120]}); the "
                                                               f"reference refuses the layers: {unplannable}")]
        return None, want, [holds("refuses", want.max_requests == 0,
                                  f"refused ({str(err)[:160]}); the reference fits {want.max_requests} request(s) "
                                  f"needing {want.blocks_per_request} of {want.usable_blocks} usable blocks")]
    if want is None:
        return None, want, [holds("refuses_layers", False, f"planned {got.num_blocks} blocks; the reference "
                                                           f"refuses: {unplannable}")]
    if want.max_requests == 0:
        return got, want, [holds("refuses", False, f"planned {got.num_blocks} blocks although not one request "
                                 f"fits: it needs {want.blocks_per_request} blocks, {want.usable_blocks} usable")]
    return got, want, []


def check_plan_pages(impl: KvCacheImpl, case: PlanCase, seed: int) -> Verdict:
    got, want, lines = _plan_or_refusal(impl, case)
    first = layer_plans(case.shape, plan_inputs(case))
    if case.draft_shape is not None:
        first += layer_plans(case.draft_shape, plan_inputs(case))
    if got is not None and want is not None:
        lines += [equal("layer_pages", got.layer_pages, tuple(layer.page_bytes for layer in first),
                        "one page of each layer as the layer reports it"),
                  equal("unified_pages", got.unified_pages, tuple(layer.page_bytes for layer in want.layers),
                        f"after page-size unification to {want.page_bytes}")]
    return verdict(case, lines)


def check_plan_blocks(impl: KvCacheImpl, case: PlanCase, seed: int) -> Verdict:
    got, want, lines = _plan_or_refusal(impl, case)
    if got is not None and want is not None:
        kinds = [want.layers[g[0]].kind for g in want.groups]
        lines += [equal("groups", got.num_groups, len(want.groups), f"groups of kinds {kinds}"),
                  equal("bytes_per_block", got.bytes_per_block, want.bytes_per_block),
                  equal("num_blocks", got.num_blocks, want.num_blocks, f"{case.kv_budget:,} B // "
                                                                         f"{want.bytes_per_block:,} B per block"),
                  equal("blocks_per_request", got.blocks_per_request, want.blocks_per_request,
                        "per group: " + ", ".join(f"{want.layers[g[0]].kind} {want.layers[g[0]].blocks_per_request}"
                                                  f" (reserve {want.layers[g[0]].reserve_tokens} tokens, block "
                                                  f"{want.layers[g[0]].block_size})" for g in want.groups))]
    return verdict(case, lines)


def check_plan_concurrency(impl: KvCacheImpl, case: PlanCase, seed: int) -> Verdict:
    got, want, lines = _plan_or_refusal(impl, case)
    if got is not None and want is not None:
        exact = want.max_concurrency
        lines.append(close("max_concurrency", float(got.max_concurrency), float(exact), 1e-12,
                           f"{want.usable_blocks} usable blocks ({want.num_blocks} less {want.num_blocks - want.usable_blocks}"
                           f" held back) / {want.blocks_per_request} per request = {exact} = {float(exact):.6f}"))
    return verdict(case, lines)


def describe_plan(case: PlanCase) -> dict[str, Any]:
    return {"model": case.model, "dtype": case.dtype, "block_size": case.block_size,
            "max_model_len": case.max_model_len}
