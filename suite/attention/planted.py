"""Deliberately broken attention implementations: the suite must reject every one, every run.

Each is the eager implementation with one classic mistake. They are not registered; the self-test
runs them through the same conformance check as the real implementations.
"""

from __future__ import annotations

import math

import torch

from impls.attention.eager import EagerAttention
from reference.attention import AttentionOptions


class WrongScale(EagerAttention):
    name = "planted-wrong-scale"

    def scores(self, q: torch.Tensor, k: torch.Tensor, opts: AttentionOptions) -> torch.Tensor:
        if opts.scale is None:  # 1/D instead of 1/sqrt(D)
            opts = AttentionOptions(**{**opts.__dict__, "scale": 1.0 / q.shape[-1]})
        return super().scores(q, k, opts)


class WrongCausalAlignment(EagerAttention):
    name = "planted-wrong-causal-alignment"

    def visible(self, sq: int, sk: int, opts: AttentionOptions, device: torch.device) -> torch.Tensor:
        return super().visible(sq, sk, AttentionOptions(**{**opts.__dict__, "alignment": "top_left"}), device)


class GqaWithRepeat(EagerAttention):
    """Query head h reads kv head h % Hkv (torch.repeat) instead of h // group (repeat_interleave)."""

    name = "planted-gqa-repeat"

    def forward(self, q, k, v, opts, out=None, **asked):  # type: ignore[no-untyped-def]
        group = q.shape[1] // k.shape[1]
        return super().forward(q, k.repeat(1, group, 1, 1), v.repeat(1, group, 1, 1), opts, out, **asked)


class NoMaxSubtraction(EagerAttention):
    name = "planted-no-max-subtraction"

    def forward(self, q, k, v, opts, out=None, **asked):  # type: ignore[no-untyped-def]
        group = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
        mask = self.visible(q.shape[-2], k.shape[-2], opts, q.device)
        e = torch.exp(self.scores(q, k, opts)) * mask
        p = e / e.sum(-1, keepdim=True).clamp_min(torch.finfo(e.dtype).tiny)
        result = p @ v
        if out is not None:
            out.copy_(result)
            result = out
        return result, torch.log(e.sum(-1))


class WindowOffByOne(EagerAttention):
    name = "planted-window-off-by-one"

    def visible(self, sq: int, sk: int, opts: AttentionOptions, device: torch.device) -> torch.Tensor:
        if opts.window_left is not None:
            opts = AttentionOptions(**{**opts.__dict__, "window_left": opts.window_left + 1})
        return super().visible(sq, sk, opts, device)


class SoftcapAfterMask(EagerAttention):
    name = "planted-softcap-after-mask"

    def forward(self, q, k, v, opts, out=None, **asked):  # type: ignore[no-untyped-def]
        group = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
        mask = self.visible(q.shape[-2], k.shape[-2], opts, q.device)
        plain = AttentionOptions(**{**opts.__dict__, "softcap": None})
        s = self.scores(q, k, plain).masked_fill(~mask, float("-inf"))
        if opts.softcap is not None:  # the cap turns −inf into −softcap: masked keys come back
            s = opts.softcap * torch.tanh(s / opts.softcap)
        p = torch.softmax(s, -1)
        result = p @ v
        if out is not None:
            out.copy_(result)
            result = out
        return result, torch.logsumexp(s, -1)


class LastPartialBlockDropped(EagerAttention):
    """Keys processed in blocks of 16, and the last, partial block forgotten."""

    name = "planted-last-partial-block-dropped"

    def visible(self, sq: int, sk: int, opts: AttentionOptions, device: torch.device) -> torch.Tensor:
        mask = super().visible(sq, sk, opts, device)
        full = (sk // 16) * 16
        if full:
            mask[:, full:] = False
        return mask


class LseInBaseTwo(EagerAttention):
    name = "planted-lse-base-2"

    def forward(self, q, k, v, opts, out=None, **asked):  # type: ignore[no-untyped-def]
        result, lse = super().forward(q, k, v, opts, out, **asked)
        return result, None if lse is None else lse / math.log(2.0)


PLANTED = [WrongScale(), WrongCausalAlignment(), GqaWithRepeat(), NoMaxSubtraction(), WindowOffByOne(),
           SoftcapAfterMask(), LastPartialBlockDropped(), LseInBaseTwo()]
