"""The speculative checks: one implementation on one case against the reference → a Verdict.

- :func:`check_decisions`: explicit uniforms (or greedy), every request's outcome equal to the reference's.
  Uniforms within 1e-9 of a decision boundary (an acceptance ratio or a CDF breakpoint) are redrawn, since
  there float rounding, not the rule, decides.
- :func:`law_check`: N requests of a fixed step; every output a valid outcome, no structural zero (an outcome
  the supports forbid: it fails at once, named), and Pearson's chi-square against the exact law at false-alarm
  rate 1e-6. N comes from ``suite.speculative.stats.plan`` (the declared cost per request and the check's
  budget); the verdict states the power kept.
- :func:`check_zero_uniform`: a draft token of target probability 0 is never accepted, not even by a uniform
  of exactly 0.0 (u < p/q, not u <= p/q).
- :func:`trade_check`: for declared-lossy methods (and, as a yardstick, the others): the TV between the law of
  the first G + 1 tokens (each step continued by the target) and the target's, and the tokens per step.

Every check runs torch on one intra-op thread: its tensors are small (at most 65,536 requests × G × V of a few
hundred thousand elements), and on a loaded 2-core machine OpenMP's spinning threads made them 10 times
slower (1.8 s against 0.2 s for 211,000 requests of the in-repo sampler). Results do not depend on it.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import torch
from hypothesis import settings

from impls.speculative.api import SpecCase, SpeculativeImpl
from reference import speculative as ref
from reference import speculative_tree as tree_ref
from suite.engine.verdict import Line, Verdict, equal, holds, verdict
from suite.speculative import cases as cs
from suite.speculative import stats

MARGIN = 1e-9
CHUNK = 65_536
REDRAWS = 50


F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def on_one_thread(fn: F) -> F:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        with one_thread():
            return fn(*args, **kwargs)

    return run  # type: ignore[return-value]


def thorough() -> bool:
    return settings.get_current_profile_name() == "thorough"


# ---- decisions ------------------------------------------------------------------------------------------------------

def _fragile(decide: Callable[[np.ndarray, np.ndarray], Any], u: np.ndarray, v: np.ndarray) -> bool:
    """Whether moving every uniform by ±MARGIN changes the reference's decision."""
    here = decide(u, v)
    return any(decide(np.clip(u + d, 0, 1 - 1e-16), np.clip(v + d, 0, 1 - 1e-16)) != here for d in (MARGIN, -MARGIN))


def _robust_uniforms(rng: np.random.Generator, shape_u: int, shape_v: int,
                     decide: Callable[[np.ndarray, np.ndarray], Any]) -> tuple[np.ndarray, np.ndarray]:
    for _ in range(REDRAWS):
        u, v = rng.random(shape_u), rng.random(shape_v)
        if not _fragile(decide, u, v):
            return u, v
    raise RuntimeError("no uniforms away from the decision boundaries in 50 draws")  # probability ~1e-400


@on_one_thread
def check_decisions(impl: SpeculativeImpl, case: SpecCase, seed: int) -> Verdict:
    return _tree_decisions(impl, case, seed) if case.tree else _chain_decisions(impl, case, seed)


def _chain_decisions(impl: SpeculativeImpl, case: SpecCase, seed: int) -> Verdict:
    steps = cs.decision_steps(case)
    p, q, d, lengths = cs.chain_tensors(steps, np.arange(len(steps)), case)
    rng = np.random.default_rng(seed)
    want: list[tuple[int, int]] = []
    us = np.zeros((len(steps), case.max_draft))
    vs = np.zeros(len(steps))
    for b, s in enumerate(steps):
        if case.greedy:
            want.append(ref.greedy(s.p, s.draft))
            continue

        def decide(u: np.ndarray, v: np.ndarray, s: cs.Step = s) -> ref.Outcome:
            return ref.decide(s.p, s.q, s.draft, u, float(v[0]))

        u, v = _robust_uniforms(rng, case.max_draft, 1, decide)
        us[b], vs[b] = u, v[0]
        want.append(decide(u, v))
    kwargs: dict[str, Any] = {"greedy": case.greedy}
    if not case.greedy:
        dtype = p.dtype
        kwargs |= {"accept_uniforms": torch.tensor(us, dtype=dtype), "emit_uniforms": torch.tensor(vs, dtype=dtype)}
    res = impl.verify(p, q, d, lengths, **kwargs)
    got = list(zip(res.accepted.tolist(), res.emitted.tolist(), strict=True))
    bad = _output_problems(res.accepted.cpu().numpy(), res.emitted.cpu().numpy(), lengths.numpy(), case.vocab,
                           "accepted")
    return verdict(case, *bad, equal("outcomes", got, want, f"(accepted, emitted) per request; draft lengths "
                                                            f"{lengths.tolist()}"))


def _tree_decisions(impl: SpeculativeImpl, case: SpecCase, seed: int) -> Verdict:
    steps = cs.decision_trees(case)
    p, q, toks, pars = cs.tree_tensors(steps, np.arange(len(steps)), case)
    size = len(case.tree)
    rng = np.random.default_rng(seed)
    want: list[tuple[int, int]] = []
    us, vs = np.zeros((len(steps), size)), np.zeros((len(steps), size))
    for b, s in enumerate(steps):
        if case.greedy:
            want.append(tree_ref.greedy(s.tree, s.p))
            continue

        def decide(u: np.ndarray, v: np.ndarray, s: cs.TreeStep = s) -> tree_ref.TreeOutcome:
            return tree_ref.decide(s.tree, s.p, s.q, case.rule, u, v)

        us[b], vs[b] = _robust_uniforms(rng, size, size, decide)
        want.append(decide(us[b], vs[b]))
    kwargs: dict[str, Any] = {"greedy": case.greedy, "rule": case.rule}
    if not case.greedy:
        kwargs |= {"accept_uniforms": torch.tensor(us, dtype=p.dtype), "emit_uniforms": torch.tensor(vs)}
    res = impl.verify_tree(p, q, toks, pars, **kwargs)
    got = list(zip(res.node.tolist(), res.emitted.tolist(), strict=True))
    bad = _output_problems(res.node.cpu().numpy(), res.emitted.cpu().numpy(), np.full(len(steps), size - 1),
                           case.vocab, "node")
    return verdict(case, *bad, equal("outcomes", got, want, "(deepest accepted node, emitted) per request"))


# ---- the outcome law ------------------------------------------------------------------------------------------------

THOROUGH_BUDGETS_S = (300.0, 30.0)  # (full, smoke) per law check in the thorough profile


def law_check(full_budget_s: float = stats.FULL_BUDGET_S, smoke_budget_s: float = stats.SMOKE_BUDGET_S
              ) -> Callable[[SpeculativeImpl, SpecCase, int], Verdict]:
    def check(impl: SpeculativeImpl, case: SpecCase, seed: int) -> Verdict:
        full, smoke = THOROUGH_BUDGETS_S if thorough() else (full_budget_s, smoke_budget_s)
        return check_law(impl, case, seed, full, smoke)

    check.__name__ = "check_law"
    return check


@on_one_thread
def check_law(impl: SpeculativeImpl, case: SpecCase, seed: int, full_budget_s: float = stats.FULL_BUDGET_S,
              smoke_budget_s: float = stats.SMOKE_BUDGET_S) -> Verdict:
    if case.tree:
        step = cs.law_tree(case)
        exact = {0: tree_ref.outcome_distribution(step.tree, step.p, step.q, case.rule)}

        def why_impossible(group: int, outcome: tuple[int, int]) -> str | None:
            return tree_ref.impossible(step.tree, step.p, outcome)
    else:
        steps = cs.law_steps(case)
        exact = {g: ref.outcome_distribution(s.p, s.q, s.draft) for g, s in enumerate(steps)}

        def why_impossible(group: int, outcome: tuple[int, int]) -> str | None:
            s = steps[group]
            return ref.impossible(s.p, s.draft, outcome)

    df = max(sum(len(e) - 1 for e in exact.values()), 1)
    planned = stats.plan(df, impl.call_cost_s, full_budget_s, smoke_budget_s)
    counts, invalid = sample(impl, case, planned.n, seed)
    lines: list[Line] = list(invalid)
    zeros = [f"{outcome} of group {g} emitted {n} times: {reason}"
             for g, got in counts.items() for outcome, n in sorted(got.items())
             if outcome not in exact[g] and (reason := why_impossible(g, outcome))]
    lines.append(holds("structural_zeros", not zeros, "; ".join(zeros[:5]) + (" ..." if len(zeros) > 5 else "")
                       if zeros else "no outcome of exact probability 0 by the supports"))
    notes = [planned.statement()]
    if not invalid and not zeros:
        test = stats.chi_square(counts, exact)
        lines.append(holds("law", not test.rejects, test.describe() + (" -- departs from the exact outcome law"
                                                                      if test.rejects else "")))
        notes = [planned.statement(test.df)]
    return verdict(case, lines, notes=notes)


def _output_problems(accepted: np.ndarray, emitted: np.ndarray, limit: np.ndarray, vocab: int,
                     what: str) -> list[Line]:
    lines = []
    bad_id = (emitted < 0) | (emitted >= vocab)
    if bad_id.any():
        i = int(np.flatnonzero(bad_id)[0])
        lines.append(holds("emitted_ids", False, f"emitted token id {int(emitted[i])} (request {i}, and "
                                                 f"{int(bad_id.sum()) - 1} more) is outside the vocabulary of {vocab}"))
    bad_k = (accepted < 0) | (accepted > limit)
    if bad_k.any():
        i = int(np.flatnonzero(bad_k)[0])
        lines.append(holds(what, False, f"{what} {int(accepted[i])} for request {i}, which allows 0..{int(limit[i])} "
                                        f"({int(bad_k.sum())} such requests)"))
    return lines


def sample(impl: SpeculativeImpl, case: SpecCase, n: int, seed: int
           ) -> tuple[dict[int, Counter[tuple[int, int]]], list[Line]]:
    """Counts of outcomes per group over n requests (group of request b: b mod groups), and invalid outputs."""
    gen = torch.Generator().manual_seed(seed)
    if case.tree:
        tsteps = [cs.law_tree(case)]
        groups = 1
    else:
        csteps = cs.law_steps(case)
        groups = len(csteps)
    counts: dict[int, Counter[tuple[int, int]]] = {g: Counter() for g in range(groups)}
    invalid: list[Line] = []
    base = len(case.tree) if case.tree else case.max_draft + 1  # > any valid node or accepted count
    for start in range(0, n, CHUNK):
        order = np.arange(start, min(n, start + CHUNK)) % groups
        if case.tree:
            tp, tq, toks, pars = cs.tree_tensors(tsteps, order, case)
            tres = impl.verify_tree(tp, None if case.rule == "target_only" else tq, toks, pars, rule=case.rule,
                                    generator=gen)
            first, emitted, limit, what = tres.node, tres.emitted, np.full(len(order), len(case.tree) - 1), "node"
        else:
            cp, cq, d, lengths = cs.chain_tensors(csteps, order, case)
            cres = impl.verify(cp, cq, d, lengths, generator=gen)
            first, emitted, limit, what = cres.accepted, cres.emitted, lengths.numpy(), "accepted"
        a = np.asarray(first.cpu().numpy(), dtype=np.int64).reshape(-1)
        e = np.asarray(emitted.cpu().numpy(), dtype=np.int64).reshape(-1)
        if a.shape != order.shape or e.shape != order.shape:
            invalid.append(holds("shape", False, f"results of shape {a.shape} and {e.shape} for {len(order)} requests"))
            break
        problems = _output_problems(a, e, limit, case.vocab, what)
        if problems:
            invalid += problems
            break
        code = (order * base + a) * case.vocab + e
        keys, freq = np.unique(code, return_counts=True)
        for key, f in zip(keys.tolist(), freq.tolist(), strict=True):
            rest, t = divmod(key, case.vocab)
            g, k = divmod(rest, base)
            counts[g][(k, t)] += f
    return counts, invalid


# ---- one trap: the zero uniform -------------------------------------------------------------------------------------

ZERO_UNIFORM_REQUESTS = 64


@on_one_thread
def check_zero_uniform(impl: SpeculativeImpl, case: SpecCase, seed: int) -> Verdict:
    """The draft token has target probability 0; uniforms of exactly 0.0 must still reject it.

    An implementation that takes uniforms is given zeros; one that draws its own gets a generator seeded with
    ``seed``, whose first float32 uniform is exactly 0.0 (torch.Generator().manual_seed(5528393)).
    """
    step = cs.law_steps(case)[0]
    n = ZERO_UNIFORM_REQUESTS
    p, q, d, lengths = cs.chain_tensors([step], np.zeros(n, dtype=np.int64), case)
    if "uniforms" not in impl.lacks:
        res = impl.verify(p, q, d, lengths, accept_uniforms=torch.zeros(n, step.gamma, dtype=p.dtype),
                          emit_uniforms=torch.full((n,), 0.5, dtype=p.dtype))
        how = "accept uniforms 0.0"
    else:
        res = impl.verify(p, q, d, lengths, generator=torch.Generator().manual_seed(seed))
        how = f"a generator whose first float32 uniform is 0.0 (seed {seed})"
    got = Counter(zip(res.accepted.tolist(), res.emitted.tolist(), strict=True))
    bad = {o: c for o, c in got.items() if ref.impossible(step.p, step.draft, o)}
    text = ("; ".join(f"{o} {c} times: {ref.impossible(step.p, step.draft, o)}" for o, c in bad.items()) if bad else
            f"all {n} requests rejected the draft ({how})")
    return verdict(case, holds("structural_zeros", not bad, text + (f" [{how}]" if bad else "")))


# ---- declared-lossy methods: the trade --------------------------------------------------------------------------------

def trade_check(budget_s: float = 1.0, most: int = 200_000) -> Callable[[SpeculativeImpl, SpecCase, int], Verdict]:
    def check(impl: SpeculativeImpl, case: SpecCase, seed: int) -> Verdict:
        budget = THOROUGH_BUDGETS_S[1] if thorough() else budget_s
        n = int(min(most, max(200, budget / max(impl.call_cost_s, 1e-9))))
        return check_trade(impl, case, seed, n)

    check.__name__ = "check_trade"
    return check


@on_one_thread
def check_trade(impl: SpeculativeImpl, case: SpecCase, seed: int, n: int) -> Verdict:
    """Drafts drawn from q per request; the law of the emitted sequences, measured against the target's."""
    step = cs.law_steps(case)[0]
    g, vocab = step.gamma, step.vocab
    rng = np.random.default_rng(seed)
    drafts = np.stack([rng.choice(vocab, size=n, p=step.q[i]) for i in range(g)], axis=1).reshape(n, g)
    dtype = torch.float32 if case.dtype == "float32" else torch.float64
    p = torch.tensor(step.p, dtype=dtype).expand(n, -1, -1)
    q = torch.tensor(step.q, dtype=dtype).expand(n, -1, -1)
    res = impl.verify(p, q, torch.from_numpy(drafts), torch.full((n,), g), generator=torch.Generator().manual_seed(seed))
    a, e = res.accepted.cpu().numpy().astype(np.int64), res.emitted.cpu().numpy().astype(np.int64)
    problems = _output_problems(a, e, np.full(n, g), vocab, "accepted")
    if problems:
        return verdict(case, problems)
    seqs: Counter[tuple[int, ...]] = Counter((*drafts[i, : a[i]].tolist(), int(e[i])) for i in range(n))
    law = {s: c / n for s, c in seqs.items()}
    target = ref.product_law(step.p, g + 1)
    tv = ref.total_variation(ref.continued(law, step.p, g + 1), target)
    noise = 0.5 * sum(math.sqrt(w / n) for w in law.values())
    outside = sum(w for s, w in ref.continued(law, step.p, g + 1).items() if s not in target)
    tokens = a + 1
    mean, se = float(tokens.mean()), float(tokens.std() / math.sqrt(n))
    exact_rule = sum(len(s) * w for s, w in ref.marginal_over_drafts(step.p, step.q).items())
    kind = "declared lossy" if not impl.lossless else "lossless (a yardstick: its TV is sampling noise)"
    text = (f"{kind}: TV from the target {tv:.4f} (sampling noise up to ~{noise:.4f}, N = {n:,}); "
            f"{mean:.3f} ± {2 * se:.3f} tokens per step (the exact rule: {exact_rule:.3f}); "
            f"{outside:.2%} of the continued mass on sequences the target forbids")
    return verdict(case, holds("trade", True, text), notes=[f"{impl.name} on {case}: {text}"])
