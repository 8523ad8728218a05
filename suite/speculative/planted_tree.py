"""Broken tree verifiers, each the in-repo ``TreeWalk`` with one step of the rule replaced by a classic mistake.

Each comes with a tree case (``PLANTED_TREE_CASES``) on which its bug moves the outcome law by more than the
law check can miss (TV ≥ 0.04, measured by the self-test before it asserts the rejection).
"""

from __future__ import annotations

import torch

from impls.speculative.api import SpecCase
from impls.speculative.tree import TreeVerifier, TreeWalk

TREE_BUGS = (
    "residual_not_updated",  # every sibling tested against p[node], not the residual left by the earlier ones
    "order_depends_on_sample",  # siblings tried most-probable-first under p, an order that depends on the drafts
    "rejected_mass_left",  # the residual keeps the rejected sibling's own mass: r' = norm(max(0, r − q) + r(x)·δₓ)
    "bonus_from_wrong_node",  # a leaf's bonus drawn from its parent's target row
    "q_not_renormalised",  # without-replacement siblings tested as if drawn with replacement
)


class _ResidualNotUpdated(TreeWalk):
    def residual(self, r: torch.Tensor, q_used: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return r


class _OrderDependsOnSample(TreeWalk):
    def links(self, parents: torch.Tensor, tokens: torch.Tensor, target_probs: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        b, n = parents.shape
        rows = torch.arange(b)
        score = target_probs[rows.unsqueeze(1), parents.clamp_min(0), tokens]  # p[parent](token) of every node
        order = torch.argsort(score, dim=1, stable=True)  # ascending: prepending in this order puts the largest first
        first = torch.full((b, n), -1, dtype=torch.int64)
        nxt = torch.full((b, n), -1, dtype=torch.int64)
        for k in range(n):
            node = order[:, k]
            par = parents[rows, node]
            real = (par >= 0) & (node > 0)
            r, nd, p = rows[real], node[real], par[real]
            nxt[r, nd] = first[r, p]
            first[r, p] = nd
        return first, nxt


class _RejectedMassLeft(TreeWalk):
    def residual(self, r: torch.Tensor, q_used: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        res = (r - q_used).clamp_min(0)
        res[torch.arange(len(x)), x] += r[torch.arange(len(x)), x]
        return res / res.sum(-1, keepdim=True)


class _BonusFromWrongNode(TreeWalk):
    def emission_row(self, target_probs: torch.Tensor, parents: torch.Tensor, rows: torch.Tensor,
                     node: torch.Tensor) -> torch.Tensor:
        leaf = ~(parents[rows] == node.unsqueeze(1)).any(-1)
        parent = parents[rows, node].clamp_min(0)
        return torch.where(leaf.unsqueeze(1), target_probs[rows, parent], target_probs[rows, node])


class _QNotRenormalised(TreeWalk):
    def draft_after(self, q_used: torch.Tensor, x: torch.Tensor, rule: str) -> torch.Tensor:
        return q_used


WALKS: dict[str, type[TreeWalk]] = {
    "residual_not_updated": _ResidualNotUpdated, "order_depends_on_sample": _OrderDependsOnSample,
    "rejected_mass_left": _RejectedMassLeft, "bonus_from_wrong_node": _BonusFromWrongNode,
    "q_not_renormalised": _QNotRenormalised,
}


class PlantedTreeVerifier(TreeVerifier):
    def __init__(self, bug: str) -> None:
        if bug not in WALKS:
            raise ValueError(f"unknown planted tree bug {bug!r}; known: {TREE_BUGS}")
        self.bug = bug
        self.name = f"planted-tree-{bug}"
        self.walk = WALKS[bug]()


# A root with three children (one with two of its own): wide enough for every sibling bug to show.
WIDE = (-1, 0, 0, 0, 1, 1)
PLANTED_TREE_CASES: dict[str, SpecCase] = {
    "residual_not_updated": SpecCase(3, 5, "random", draws=102, tree=WIDE, rule="with_replacement"),
    "order_depends_on_sample": SpecCase(3, 5, "random", draws=102, tree=WIDE, rule="with_replacement"),
    "rejected_mass_left": SpecCase(3, 5, "random", draws=103, tree=WIDE, rule="with_replacement"),
    "bonus_from_wrong_node": SpecCase(3, 5, "peaked", draws=104, tree=WIDE, rule="with_replacement"),
    "q_not_renormalised": SpecCase(4, 5, "random", draws=108, tree=WIDE, rule="without_replacement"),
}
