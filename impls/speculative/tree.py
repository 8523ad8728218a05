"""The in-repo batched token-tree verifier (PyTorch): one step for B requests, each with its own tree.

The rules of ``reference.speculative_tree`` (with and without replacement, target-only, greedy), vectorised
over requests: every request walks its tree from the root, trying the children of its current node in index
order (first-child / next-sibling links built from ``parents``); each loop round either tests one child or
emits, so 2·N rounds end every walk. A chain is the tree in which node i + 1 is the only child of node i, so
the same code verifies chains (``verify``), with ragged lengths as padding nodes.
"""

from __future__ import annotations

import torch

from impls.registry import register
from impls.speculative.api import SpecResult, SpeculativeImpl, TreeResult, validate
from impls.speculative.batched import inverse_cdf


def sibling_links(parents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(first_child, next_sibling) [B, N]: -1 where there is none; children in index order."""
    b, n = parents.shape
    first = torch.full((b, n), -1, dtype=torch.int64, device=parents.device)
    nxt = torch.full((b, n), -1, dtype=torch.int64, device=parents.device)
    rows = torch.arange(b, device=parents.device)
    for node in range(n - 1, 0, -1):
        par = parents[:, node]
        real = par >= 0
        r, p = rows[real], par[real]
        nxt[r, node] = first[r, p]
        first[r, p] = node
    return first, nxt


class TreeWalk:
    """One verification step over a batch of trees. The steps of the rule are methods, so that each can be
    read on its own (and, in the suite's planted-bug self-tests, replaced one at a time)."""

    def links(self, parents: torch.Tensor, tokens: torch.Tensor, target_probs: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """The order children are tried in: index order, whatever was drawn."""
        return sibling_links(parents)

    def residual(self, r: torch.Tensor, q_used: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """After a sibling with token x is rejected: norm(max(0, r − q))."""
        res = (r - q_used).clamp_min(0)
        total = res.sum(-1, keepdim=True)
        return torch.where(total > 0, res / torch.where(total > 0, total, 1), r)

    def draft_after(self, q_used: torch.Tensor, x: torch.Tensor, rule: str) -> torch.Tensor:
        """The draft law of the next sibling: the same q with replacement; q without x, renormalised, without."""
        if rule != "without_replacement":
            return q_used
        q = q_used.clone()
        q[torch.arange(len(x), device=q.device), x] = 0
        total = q.sum(-1, keepdim=True)
        return q / torch.where(total > 0, total, 1)

    def emission_row(self, target_probs: torch.Tensor, parents: torch.Tensor, rows: torch.Tensor,
                     node: torch.Tensor) -> torch.Tensor:
        """The target row a request arriving at ``node`` starts from (and draws a leaf's bonus from)."""
        return target_probs[rows, node]

    def __call__(self, target_probs: torch.Tensor, draft_probs: torch.Tensor | None, tokens: torch.Tensor,
                 parents: torch.Tensor, *, rule: str, greedy: bool = False, generator: torch.Generator | None = None,
                 accept_uniforms: torch.Tensor | None = None, emit_uniforms: torch.Tensor | None = None
                 ) -> TreeResult:
        b, n, _ = validate(target_probs, draft_probs if not greedy else None, tokens, parents=parents,
                           rule="target_only" if greedy else rule)
        dev, dtype = target_probs.device, target_probs.dtype
        tokens, parents = tokens.to(torch.int64), parents.to(torch.int64)
        if emit_uniforms is None and not greedy:
            emit_uniforms = torch.rand((b, n), device=dev, generator=generator, dtype=torch.float64)
        if accept_uniforms is None and not greedy and rule != "target_only":
            accept_uniforms = torch.rand((b, n), device=dev, generator=generator, dtype=dtype)
        node = torch.zeros(b, dtype=torch.int64, device=dev)
        emitted = torch.full((b,), -1, dtype=torch.int64, device=dev)
        if greedy or rule == "target_only":
            _walk_target_only(target_probs, tokens, parents, node, emitted, greedy, emit_uniforms)
            return TreeResult(node, emitted)
        assert draft_probs is not None and accept_uniforms is not None and emit_uniforms is not None
        first, nxt = self.links(parents, tokens, target_probs)
        rows = torch.arange(b, device=dev)
        r = self.emission_row(target_probs, parents, rows, node).clone()  # the running residual of each request
        q_used = draft_probs[:, 0].clone()
        trying = first[:, 0].clone()
        live = torch.ones(b, dtype=torch.bool, device=dev)
        for _ in range(2 * n + 1):
            if not bool(live.any()):
                break
            done = live & (trying < 0)  # every child rejected, or none: emit from the residual
            if bool(done.any()):
                i = rows[done]
                emitted[i] = inverse_cdf(r[i], emit_uniforms[i, node[i]])
                live &= ~done
            test = live & (trying >= 0)
            if not bool(test.any()):
                continue
            i = rows[test]
            c = trying[i]
            x = tokens[i, c]
            r_x, q_x = r[i, x], q_used[i, x]
            ratio = torch.where(q_x > 0, r_x / q_x, torch.zeros_like(r_x))
            ok = accept_uniforms[i, c].to(ratio.dtype) < ratio
            a, c_a = i[ok], c[ok]  # accepted: descend
            node[a] = c_a
            r[a] = self.emission_row(target_probs, parents, a, c_a)
            q_used[a] = draft_probs[a, c_a]
            trying[a] = first[a, c_a]
            j, c_j, x_j = i[~ok], c[~ok], x[~ok]  # rejected: residual update, next sibling
            r[j] = self.residual(r[j], q_used[j], x_j)
            q_used[j] = self.draft_after(q_used[j], x_j, rule)
            trying[j] = nxt[j, c_j]
        return TreeResult(node, emitted)


verify_tree = TreeWalk()


def _walk_target_only(target_probs: torch.Tensor, tokens: torch.Tensor, parents: torch.Tensor, node: torch.Tensor,
                      emitted: torch.Tensor, greedy: bool, emit_uniforms: torch.Tensor | None) -> None:
    """Draw y from p[node] (argmax when greedy); descend into the first child with token y, else emit y."""
    b, n, _ = target_probs.shape
    rows = torch.arange(b, device=target_probs.device)
    index = torch.arange(n, device=target_probs.device)
    live = torch.ones(b, dtype=torch.bool, device=target_probs.device)
    for _ in range(n + 1):
        if not bool(live.any()):
            break
        i = rows[live]
        p = target_probs[i, node[i]]
        if greedy:
            y = p.argmax(-1)
        else:
            assert emit_uniforms is not None
            y = inverse_cdf(p, emit_uniforms[i, node[i]])
        match = (parents[i] == node[i].unsqueeze(1)) & (tokens[i] == y.unsqueeze(1)) & (index > 0)
        found = match.any(-1)
        child = torch.where(match, index, n).min(-1).values
        node[i[found]] = child[found]
        stop = i[~found]
        emitted[stop] = y[~found]
        live[stop] = False


class TreeVerifier(SpeculativeImpl):
    name = "tokenspec-tree"
    description = ("in-repo batched token-tree verifier (PyTorch): with/without replacement, target-only, greedy; "
                   "chains as one-child trees")
    lacks = {}
    call_cost_s = 1e-6  # per request, at batch 65,536 (8 nodes, V 6) on an idle 2-core CPU

    walk = verify_tree

    def verify_tree(self, target_probs, draft_probs, tokens, parents, *, rule, greedy=False, generator=None,
                    accept_uniforms=None, emit_uniforms=None):  # type: ignore[no-untyped-def]
        return self.walk(target_probs, draft_probs, tokens, parents, rule=rule, greedy=greedy, generator=generator,
                           accept_uniforms=accept_uniforms, emit_uniforms=emit_uniforms)

    def verify(self, target_probs, draft_probs, draft_tokens, draft_lengths, *, greedy=False, generator=None,
               accept_uniforms=None, emit_uniforms=None):  # type: ignore[no-untyped-def]
        b, g, v = validate(target_probs, draft_probs, draft_tokens, draft_lengths)
        dev = target_probs.device
        index = torch.arange(g + 1, device=dev)
        in_tree = index.unsqueeze(0) <= draft_lengths.unsqueeze(1)  # node k + 1 follows draft position k
        parents = torch.where(in_tree, index - 1, -1).expand(b, -1).clone()
        tokens = torch.zeros((b, g + 1), dtype=torch.int64, device=dev)
        tokens[:, 1:] = draft_tokens
        if draft_probs is None:  # n-gram: node i's child was "drawn" from the one-hot on the drafted token
            q = torch.zeros_like(target_probs)
            if g:
                q[:, :g].scatter_(-1, draft_tokens.to(torch.int64).clamp(0, v - 1).unsqueeze(-1), 1.0)
        else:
            q = torch.cat([draft_probs, target_probs[:, :1]], dim=1)  # the leaf's row is never used
        tree_accept = tree_emit = None
        if accept_uniforms is not None:
            tree_accept = torch.zeros((b, g + 1), dtype=accept_uniforms.dtype, device=dev)
            tree_accept[:, 1:] = accept_uniforms
        if emit_uniforms is not None:
            tree_emit = emit_uniforms.unsqueeze(1).expand(b, g + 1)
        res = self.walk(target_probs, q, tokens, parents, rule="with_replacement", greedy=greedy,
                          generator=generator, accept_uniforms=tree_accept, emit_uniforms=tree_emit)
        return SpecResult(res.node, res.emitted)


register(TreeVerifier())
