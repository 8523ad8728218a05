"""The speculative area, declared: cases, decision and law checks, pinned traps, bad calls, benchmarks.

Decision checks use float64 inputs and explicit uniforms (or greedy) over vocabularies of 2 to 50,000, batches
of 1 to 4 requests and draft lengths 1 to 4 (ragged: 0 to G in one batch). Law checks use small outcome
spaces (V ≤ 6, G ≤ 3; trees of ≤ 6 nodes, V ≤ 5) in float32, at the power ``suite.speculative.stats`` states.
"""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import strategies as st

from impls.speculative.api import FEATURES, ZERO_UNIFORM_SEED, SpecCase, SpeculativeImpl
from impls.tensors import default_device
from reference.speculative_tree import RULES
from suite.engine.area import Area, Benchmark, ErrorInput, Example, Property
from suite.engine.verdict import raises, verdict
from suite.speculative.cases import KINDS
from suite.speculative.check import check_decisions, check_zero_uniform, law_check, trade_check

DEVICE = default_device()
SEEDS = st.integers(0, 2**32 - 1)
VOCABS = st.one_of(st.integers(2, 8), st.sampled_from([50, 1000, 50_000]))
PRIMARY_BUDGET_S = 25.0  # the primary fixed case: what full power costs the slowest sampler held to it (transformers)
SECONDARY_BUDGET_S = 2.0  # the other fixed cases
PROPERTY_BUDGET_S = 0.5  # each drawn case of a law property
SMOKE_S = {"primary": 1.0, "secondary": 0.3, "property": 0.3}


@st.composite
def chain_cases(draw: st.DrawFn, *, greedy: bool | None = False, ngram: bool | None = False,
                ragged: bool | None = False, law: bool = False) -> SpecCase:
    """``None`` for a flag: drawn."""
    g = draw(st.booleans()) if greedy is None else greedy
    n = draw(st.booleans()) if ngram is None else ngram
    r = draw(st.booleans()) if ragged is None else ragged
    return SpecCase(vocab=draw(st.integers(2, 6) if law else VOCABS), max_draft=draw(st.integers(1, 3 if law else 4)),
                    kind=draw(st.sampled_from(KINDS)), draws=draw(SEEDS), batch=1 if law else draw(st.integers(1, 4)),
                    greedy=g, ngram=n, uniforms=not (g or law), ragged=r, dtype="float32" if law else "float64")


@st.composite
def tree_cases(draw: st.DrawFn, rule: str, *, greedy: bool = False, law: bool = False) -> SpecCase:
    size = draw(st.integers(2, 6 if law else 9))
    parents = (-1, *(draw(st.integers(0, n - 1)) for n in range(1, size)))
    siblings = max(parents.count(n) for n in range(size))
    low = max(2, siblings + 1)  # distinct children need as many tokens
    vocab = draw(st.integers(low, max(low, 5 if law else 12)))
    kind = draw(st.sampled_from([k for k in KINDS if k != "disjoint" or rule != "without_replacement"]))
    return SpecCase(vocab=vocab, max_draft=size - 1, kind=kind, draws=draw(SEEDS),
                    batch=1 if law else draw(st.integers(1, 4)), greedy=greedy, uniforms=not (greedy or law),
                    tree=parents, rule=rule, dtype="float32" if law else "float64")


def _pins(**fields: Any) -> tuple[SpecCase, ...]:
    """The traps of a decision property: p = q (residual 0/0), V = 50,000, a dominant target token."""
    base: dict[str, Any] = {"vocab": 5, "max_draft": 3, "batch": 4, "uniforms": True, "dtype": "float64"} | fields
    return (SpecCase(**{**base, "kind": "identical", "draws": 1}),
            SpecCase(**{**base, "kind": "random", "vocab": 50_000, "draws": 2}),
            SpecCase(**{**base, "kind": "tiny", "draws": 3}))


def _law(budget: str) -> Any:
    full = {"primary": PRIMARY_BUDGET_S, "secondary": SECONDARY_BUDGET_S, "property": PROPERTY_BUDGET_S}[budget]
    return law_check(full, SMOKE_S[budget])


def _properties() -> list[Property]:
    law = _law("property")
    chain, sampled = ("chain", "exact"), ("chain", "exact", "random", "uniforms")
    props = [
        Property("decisions", chain_cases(), check_decisions, variant="random", pinned=_pins(), needs=sampled),
        Property("decisions", chain_cases(ngram=True), check_decisions, variant="ngram", pinned=_pins(ngram=True),
                 needs=(*sampled, "ngram")),
        Property("decisions", chain_cases(ngram=None, ragged=True), check_decisions, variant="ragged",
                 pinned=_pins(ragged=True, max_draft=4), needs=(*sampled, "ragged")),
        # greedy and sampled draws mixed: a sampler without one of them still has the other checked
        Property("decisions", chain_cases(greedy=None, ngram=None, ragged=None), check_decisions, variant="mixed",
                 needs=chain),
        Property("greedy", chain_cases(greedy=True, ragged=None), check_decisions, variant="chain",
                 needs=(*chain, "greedy")),
        Property("outcome_law", chain_cases(law=True), law, variant="random", needs=(*chain, "random")),
        Property("outcome_law", chain_cases(ngram=True, law=True), law, variant="ngram",
                 needs=(*chain, "random", "ngram")),
        Property("outcome_law", chain_cases(ngram=None, ragged=True, law=True), law, variant="ragged",
                 needs=(*chain, "random", "ragged")),
        Property("greedy", tree_cases("target_only", greedy=True), check_decisions, variant="tree",
                 needs=("tree", "exact", "greedy")),
    ]
    for rule in RULES:
        props.append(Property("tree_decisions", tree_cases(rule), check_decisions, variant=rule,
                              needs=("tree", "exact", "random", "uniforms", rule)))
        props.append(Property("tree_law", tree_cases(rule, law=True), law, variant=rule,
                              needs=("tree", "exact", "random", rule)))
    return props


FIXED = {  # small outcome spaces, so that full power stays near N = 170,000
    "random": SpecCase(2, 1, "random", draws=11),
    "ngram": SpecCase(3, 2, "random", draws=12, ngram=True),
    "ragged": SpecCase(2, 2, "peaked", draws=13, ragged=True),
    "disjoint": SpecCase(4, 1, "disjoint", draws=14),
}
TREES = {  # a root with three children, one of which has two
    rule: SpecCase(3, 5, "random", draws=21, tree=(-1, 0, 0, 0, 1, 1), rule=rule) for rule in RULES
}
TRADE = {"random": SpecCase(4, 2, "random", draws=31, measure=True)}


def _examples() -> list[Example]:
    out = [Example("law_fixed", case, _law("primary" if name == "random" else "secondary"), variant=name, seed=2026)
           for name, case in FIXED.items()]
    out += [Example("tree_law_fixed", case, _law("secondary"), variant=rule, seed=2027) for rule, case in TREES.items()]
    out.append(Example("zero_uniform", SpecCase(2, 1, "hand:zero_target_draft"), check_zero_uniform,
                       seed=ZERO_UNIFORM_SEED))
    out += [Example("trade", case, trade_check(), variant=name, seed=41) for name, case in TRADE.items()]
    return out


# ---- bad calls ------------------------------------------------------------------------------------------------------

def _chain_call(name: str, p: tuple[int, ...], q: tuple[int, ...] | None, d: tuple[int, ...], lengths: list[int],
                fragments: tuple[str, ...], token: int | None = None) -> ErrorInput:
    def run(impl: SpeculativeImpl) -> Any:
        target = torch.full(p, 1.0 / p[-1])
        draft = None if q is None else torch.full(q, 1.0 / q[-1])
        tokens = torch.zeros(d, dtype=torch.int64)
        if token is not None:
            tokens[1, 0] = token
        return verdict(f"target {p}, draft {q}, tokens {d}, lengths {lengths}", raises(
            "error", lambda: impl.verify(target, draft, tokens, torch.tensor(lengths)), (ValueError, TypeError),
            fragments))

    return ErrorInput(name, run, lambda impl: [impl.lacks["chain"]] if "chain" in impl.lacks else [])


def _tree_call(name: str, parents: list[int], fragments: tuple[str, ...]) -> ErrorInput:
    def run(impl: SpeculativeImpl) -> Any:
        n = len(parents)
        p = torch.full((1, n, 4), 0.25)
        return verdict(f"parents {parents}", raises(
            "error", lambda: impl.verify_tree(p, p, torch.zeros(1, n, dtype=torch.int64), torch.tensor([parents]),
                                              rule="with_replacement"), (ValueError,), fragments))

    return ErrorInput(name, run, lambda impl: [impl.lacks["tree"]] if "tree" in impl.lacks else [])


ERRORS = (
    _chain_call("bad_shapes.draft_tokens", (2, 3, 4), None, (2, 3), [2, 2], ("(2, 3)", "(2, 2)")),
    _chain_call("bad_shapes.draft_probs", (2, 3, 4), (2, 2, 5), (2, 2), [2, 2], ("(2, 2, 5)", "(2, 2, 4)")),
    _chain_call("bad_shapes.draft_lengths", (2, 3, 4), None, (2, 2), [3, 0], ("0..2", "3")),
    _chain_call("draft_token_outside_vocabulary", (2, 3, 4), None, (2, 2), [2, 2], ("7", "4"), token=7),
    _tree_call("bad_tree.parent_after_child", [-1, 2, 0], ("parents[0, 1] = 2",)),
    _tree_call("bad_tree.root_has_parent", [0, 0, 0], ("-1",)),
)


# ---- benchmarks -----------------------------------------------------------------------------------------------------

CUDA = DEVICE == "cuda"
CHAIN_SIZES = ([(b, v, g) for b in (1, 16, 256) for v in (32_768, 131_072, 262_144) for g in (1, 4, 8)] if CUDA else
               [(16, 32_768, 1), (16, 131_072, 4)])
TREE_SIZES = ([(b, 32_768, n) for b in (1, 16, 256) for n in (8, 32, 64)] if CUDA else
              [(2, 32_768, n) for n in (8, 32, 64)])


def _bench_chain(impl: SpeculativeImpl, case: SpecCase) -> tuple[Any, Any, dict[str, int]]:
    b, v, g = case.batch, case.vocab, case.max_draft
    gen = torch.Generator(device=DEVICE).manual_seed(0)

    def make_inputs() -> tuple[torch.Tensor, ...]:
        p = torch.softmax(torch.randn(b, g + 1, v, device=DEVICE, generator=gen), -1)
        q = torch.softmax(torch.randn(b, g, v, device=DEVICE, generator=gen), -1)
        d = torch.multinomial(q.reshape(-1, v), 1, generator=gen).reshape(b, g)
        return p, q, d, torch.full((b,), g, device=DEVICE)

    def run(p: torch.Tensor, q: torch.Tensor, d: torch.Tensor, lengths: torch.Tensor) -> None:
        impl.verify(p, q, d, lengths, generator=gen)

    return make_inputs, run, {"items": b}


def bench_parents(nodes: int) -> tuple[int, ...]:
    """A tree of ``nodes`` nodes: every node has up to three children, breadth first."""
    return (-1, *((n - 1) // 3 for n in range(1, nodes)))


def _bench_tree(impl: SpeculativeImpl, case: SpecCase) -> tuple[Any, Any, dict[str, int]]:
    b, v, n = case.batch, case.vocab, len(case.tree)
    gen = torch.Generator(device=DEVICE).manual_seed(0)
    parents = torch.tensor(case.tree, device=DEVICE).expand(b, -1)

    def make_inputs() -> tuple[torch.Tensor, ...]:
        p = torch.softmax(torch.randn(b, n, v, device=DEVICE, generator=gen), -1)
        q = torch.softmax(torch.randn(b, n, v, device=DEVICE, generator=gen), -1)
        drawn = torch.multinomial(q.reshape(-1, v), 1, generator=gen).reshape(b, n)
        tokens = drawn.gather(1, parents.clamp_min(0))  # node n's token drawn from its parent's q
        return p, q, tokens

    def run(p: torch.Tensor, q: torch.Tensor, tokens: torch.Tensor) -> None:
        impl.verify_tree(p, q, tokens, parents, rule=case.rule, generator=gen)

    return make_inputs, run, {"items": b}


def _describe_chain(case: SpecCase) -> dict[str, Any]:
    return {"vocab_x_draft": case.vocab * case.max_draft, "vocab": case.vocab, "draft": case.max_draft,
            "batch": case.batch, "dtype": case.dtype}


def _describe_tree(case: SpecCase) -> dict[str, Any]:
    return {"nodes": len(case.tree), "vocab": case.vocab, "batch": case.batch, "rule": case.rule, "dtype": case.dtype}


BENCHMARKS = (
    Benchmark("verify_chain", [SpecCase(v, g, batch=b) for b, v, g in CHAIN_SIZES], _bench_chain, x="vocab_x_draft",
              metrics=("per_second", "speedup"), baseline={"cpu": "tokenspec-batched", "cuda": "tokenspec-batched"},
              series=("draft", "batch"), describe=_describe_chain),
    Benchmark("verify_tree", [SpecCase(v, n - 1, batch=b, tree=bench_parents(n), rule="with_replacement")
                              for b, v, n in TREE_SIZES], _bench_tree, x="nodes", metrics=("per_second",),
              baseline={"cpu": "tokenspec-tree", "cuda": "tokenspec-tree"}, series=("vocab", "batch"),
              describe=_describe_tree),
)

AREA = Area(id="speculative", impl_type=SpeculativeImpl, features=FEATURES, properties=tuple(_properties()),
            examples=tuple(_examples()), errors=ERRORS, benchmarks=BENCHMARKS)
