"""Liger Kernel's Triton rotary kernel (``liger_rotary_pos_emb``), as it is patched into Hugging Face models.

Liger replaces a model's ``apply_rotary_pos_emb``: it takes the model's q and k ([B, H, S, D] views of
[B, S, H, D] storage) and the cos and sin the model's rotary module made ([1, S, rotary_dim], the angles
duplicated ``cat(freqs, freqs)``, in the input dtype). The frequencies are therefore not Liger's: here cos
and sin come from the spec's float64 angles times the attention factor, rounded to the input dtype as a
model's rotary module rounds them, so what is tested is the kernel. It rotates half-split pairs, the
first ``rotary_dim`` dimensions of each head. Without a GPU it runs under the Triton interpreter.
"""

from __future__ import annotations

import torch

from impls.base import ExpectedFailure, Requirements
from impls.registry import register
from impls.rope.api import RopeCase, RopeImpl, case_of, validate
from impls.triton_runtime import TritonKernel, interpreting
from reference import rope as ref
from reference.rope import RopeConfig

LIGER_ROPE = "https://github.com/linkedin/Liger-Kernel/blob/v0.8.5/src/liger_kernel/ops/rope.py"


INTERPRETER_BF16 = ("bf16 is not checked under the Triton interpreter: its bf16 arithmetic is wrong (triton 3.9: a "
                    "two-line kernel's x*y is off by 1e34, see test_interpreter_bf16_arithmetic_is_still_broken), "
                    "and Liger computes in the dtype of cos and sin, which models pass in the input dtype")


class LigerRope(TritonKernel, RopeImpl):
    name = "liger-rope"
    description = "Liger Kernel liger_rotary_pos_emb (Triton), with the spec's cos/sin in the input dtype"
    requires = Requirements(modules=("liger_kernel", "triton", "torch"))
    lacks = {
        ref.INTERLEAVED: "Liger's rope kernel rotates half-split pairs (the Hugging Face Llama layout)",
        "in_place": "liger_rotary_pos_emb has no in-place switch (see the inputs_untouched finding)",
        "frequencies": "Liger takes cos and sin from the caller; it has no frequencies of its own",
    }

    example_budget = 4 if interpreting() else None  # about 0.1 s a call under the interpreter
    call_cost_s = 0.1 if interpreting() else 0.0

    def unsupported(self, case: RopeCase) -> list[str]:
        if case.dtype == "bfloat16" and interpreting():
            return [INTERPRETER_BF16]
        return []

    def embedding(self, config: RopeConfig, dtype: str, device: str) -> LigerEmbedding:
        return LigerEmbedding(self, config)


class LigerEmbedding:
    def __init__(self, impl: LigerRope, config: RopeConfig) -> None:
        self.impl, self.config = impl, config

    def cos_sin(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """[1, T, rotary_dim] cos and sin of the spec's angles, duplicated as a model's rotary module gives them."""
        phi = torch.from_numpy(ref.angles(positions.cpu().numpy(), self.config)).to(positions.device)
        a = ref.attention_factor(self.config)
        cos, sin = (torch.cat((f, f), dim=-1)[None] * a for f in (phi.cos(), phi.sin()))
        return cos.to(dtype), sin.to(dtype)

    def apply(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, *,
              in_place: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        from liger_kernel.transformers.rope import liger_rotary_pos_emb

        validate(q, k, positions, self.config)
        self.impl.refuse(case_of(q, k, positions, self.config, in_place))
        cos, sin = self.cos_sin(positions, q.dtype)
        q4, k4 = q.unsqueeze(0).transpose(1, 2), k.unsqueeze(0).transpose(1, 2)  # [1, H, T, D] as models pass them
        q_out, k_out = liger_rotary_pos_emb(q4, k4, cos, sin, rotary_dim=self.config.rotary_dim)
        return q_out.transpose(1, 2)[0], k_out.transpose(1, 2)[0]


OVERWRITES_INPUTS = ExpectedFailure(
    test="inputs_untouched",
    reason="liger_rotary_pos_emb writes its result into the storage of q and k when that storage is contiguous "
           "[B, S, H, D] (the layout Hugging Face models make q and k in: rope_forward transposes them back and "
           "calls .contiguous(), a no-op, before the kernel stores in place) and returns views of it, so the "
           "caller's q and k are overwritten although the function returns new tensors; documented nowhere in "
           "its docstring; measured with liger-kernel 0.8.5",
    link=f"{LIGER_ROPE}#L135-L199",
    when=lambda case: not case.fused_qkv,  # views of a fused qkv are copied by .contiguous() and survive
    example=RopeCase(3, 2, 1, "float32", ref.load_rope_config("llama-2-7b"), (0, 1, 2), "cpu"))

_liger = LigerRope()
_liger.expected_failures = (OVERWRITES_INPUTS,)
register(_liger)
