"""vLLM's v1 rejection sampler (``vllm.v1.sample.rejection_sampler.rejection_sample``), its own code unedited.

Called as vLLM's ``RejectionSampler.forward`` calls it: flattened ``draft_token_ids`` [num_tokens], the
``num_draft_tokens`` list, ``max_spec_len``, ``cu_num_draft_tokens`` [B], ``draft_probs`` [num_tokens, V] or
None (n-gram), ``target_logits`` [num_tokens, V] (the adapter passes log p: vLLM takes the softmax in float32),
``bonus_token_ids`` [B, 1] and a sampling-metadata object (``all_greedy``, ``all_random``, ``temperature``,
``generators``: every request gets the caller's generator). Output [B, max_spec_len + 1] with -1 placeholders.
vLLM samples the bonus token outside this function (its ``Sampler``); the adapter draws it from
p[length] with the caller's generator (argmax when greedy) and passes it in, as ``forward`` does.

On a machine without a GPU (what the adapter does, and nothing more):
vLLM decides at import whether Triton is usable (``vllm.triton_utils.importing.HAS_TRITON``: exactly one
active GPU driver). Here there is none, so it replaces ``triton.jit`` by a placeholder that leaves every
kernel a plain Python function, and its kernel dispatcher (``triton_kernel_dispatcher_with_warmup``) then
fails with ``TypeError: Cannot inspect kernel parameters for function``. The same check accepts zero drivers
when ``CUDA_VISIBLE_DEVICES`` is set and empty (its "distributed environment" branch). So, when
TRITON_INTERPRET=1, no CUDA device is visible, ``CUDA_VISIBLE_DEVICES`` is unset and vLLM's Triton module is
not yet imported, importing this adapter sets ``CUDA_VISIBLE_DEVICES=""`` (which hides no device on such a
machine). vLLM then imports Triton itself, ``triton.jit`` returns Triton's interpreter function, vLLM's own
dispatcher launches it, and Triton's interpreter runs vLLM's kernel source. Nothing of vLLM is replaced or
patched: not the dispatcher, not the kernels, not their Python preparation (uniforms, exponentials,
softmax). If vLLM's Triton module was imported earlier without this, the adapter reports itself unavailable
and says why.
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace
from typing import Any

import torch

from impls.base import Requirements
from impls.registry import register
from impls.speculative.api import SpecCase, SpecResult, SpeculativeImpl, validate

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1" and not torch.cuda.is_available()
if INTERPRETED and "CUDA_VISIBLE_DEVICES" not in os.environ and "vllm.triton_utils" not in sys.modules:
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # vLLM's own condition for Triton without a live GPU driver; see above



def _module() -> Any:
    from vllm.v1.sample import rejection_sampler

    return rejection_sampler


def _not_triton(module: Any) -> str | None:
    """Why vLLM's kernels are not Triton kernels in this process, or None."""
    import triton

    kernel = module.rejection_random_sample_kernel
    kinds: tuple[type, ...] = (triton.runtime.JITFunction,)
    if INTERPRETED:
        from triton.runtime.interpreter import InterpretedFunction

        kinds = (InterpretedFunction,)
    if isinstance(kernel, kinds):
        return None
    return (f"vLLM's kernels are {type(kernel).__name__} objects, not Triton kernels: vllm.triton_utils was imported "
            f"with HAS_TRITON=False (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}) before this "
            "adapter could let it use the interpreter")


class VllmRejectionSampler(SpeculativeImpl):
    name = "vllm-rejection-sampler"
    description = ("vllm.v1.sample.rejection_sampler.rejection_sample (Triton kernels; Triton's interpreter on a "
                   "machine without a GPU)")
    requires = Requirements(modules=("vllm", "triton"))
    lacks = {**SpeculativeImpl.lacks,
             "uniforms": "rejection_sample draws its own randomness (generate_uniform_probs; an exponential race in "
                         "sample_recovered_tokens); it takes no uniforms"}
    # per request: ~3 ms in Triton's interpreter (one interpreted program per request and kernel), µs on a GPU
    call_cost_s = 3e-3 if INTERPRETED else 2e-6
    example_budget = 1 if INTERPRETED else None  # its full-power test is the replay (suite/speculative/test_speculative_vllm.py)
    synthetic_rates: tuple[float, ...] = ()

    def unavailable(self) -> list[str]:
        reasons = self.requires.unmet()
        if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
            reasons.append("needs a CUDA device, or TRITON_INTERPRET=1 to run its kernels in Triton's interpreter")
        elif INTERPRETED and os.environ.get("CUDA_VISIBLE_DEVICES", "") != "":
            reasons.append("without a GPU, vLLM enables Triton only when CUDA_VISIBLE_DEVICES is unset or empty; it is "
                           f"{os.environ['CUDA_VISIBLE_DEVICES']!r}")
        elif "vllm.triton_utils" in sys.modules and not sys.modules["vllm.triton_utils"].HAS_TRITON:
            reasons.append(_not_triton(_module()) or "vllm.triton_utils has HAS_TRITON=False")
        return reasons

    def not_a_timing_target(self) -> str | None:
        return "its kernels run in Triton's interpreter here (no GPU)" if INTERPRETED else None

    def unsupported(self, case: SpecCase) -> list[str]:
        reasons = super().unsupported(case)
        if self.synthetic_rates and case.max_draft > len(self.synthetic_rates):
            reasons.append(f"synthetic acceptance rates are declared for {len(self.synthetic_rates)} positions, not "
                           f"{case.max_draft}")
        return reasons

    def run(self, target_probs: torch.Tensor, draft_probs: torch.Tensor | None, draft_tokens: torch.Tensor,
            draft_lengths: torch.Tensor, bonus: torch.Tensor, *, greedy: bool = False,
            generator: torch.Generator | None = None) -> torch.Tensor:
        """vLLM's output [B, G+1] (-1 placeholders) for the given bonus tokens [B]; the generator serves every request."""
        module = _module()
        why = _not_triton(module)
        if why:
            raise RuntimeError(why)
        b, g, _ = validate(target_probs, draft_probs, draft_tokens, draft_lengths)
        dev = target_probs.device
        keep = torch.arange(g, device=dev).unsqueeze(0) < draft_lengths.unsqueeze(1)
        lengths = [int(x) for x in draft_lengths]
        flat_ids = draft_tokens[keep].to(torch.int32).contiguous()
        flat_logits = target_probs[:, :g][keep].float().log().contiguous()
        flat_q = None if draft_probs is None else draft_probs[keep].float().contiguous()
        cu = torch.tensor(lengths, device=dev, dtype=torch.int64).cumsum(0).to(torch.int32)
        meta = SimpleNamespace(all_greedy=greedy, all_random=not greedy,
                               temperature=torch.full((b,), 0.0 if greedy else 1.0, device=dev),
                               generators={i: generator for i in range(b)} if generator is not None else {})
        synthetic = {}
        if self.synthetic_rates:
            from vllm.v1.spec_decode.utils import unconditional_to_conditional_rates

            rates = unconditional_to_conditional_rates(list(self.synthetic_rates))
            synthetic = {"synthetic_mode": True,
                         "synthetic_conditional_rates": torch.tensor(rates, dtype=torch.float32, device=dev)}
        with torch.inference_mode():
            return module.rejection_sample(flat_ids, lengths, g, cu, flat_q, flat_logits,
                                           bonus.to(torch.int64).reshape(b, 1).contiguous(), meta, **synthetic)

    def verify(self, target_probs, draft_probs, draft_tokens, draft_lengths, *, greedy=False, generator=None,
               accept_uniforms=None, emit_uniforms=None):  # type: ignore[no-untyped-def]
        if accept_uniforms is not None or emit_uniforms is not None:
            raise NotImplementedError(f"{self.name}: {self.lacks['uniforms']}")
        b, _, _ = validate(target_probs, draft_probs, draft_tokens, draft_lengths)
        bonus_p = target_probs[torch.arange(b, device=target_probs.device), draft_lengths].float()
        bonus = bonus_p.argmax(-1) if greedy else torch.multinomial(bonus_p, 1, generator=generator).squeeze(-1)
        return outcome_of(self.run(target_probs, draft_probs, draft_tokens, draft_lengths, bonus, greedy=greedy,
                                   generator=generator))


def outcome_of(out: torch.Tensor) -> SpecResult:
    """(accepted, emitted) from vLLM's [B, G+1] output: the valid entries are the accepted drafts, then one token."""
    valid = (out != -1).sum(-1)
    emitted = out.gather(1, (valid - 1).clamp_min(0).unsqueeze(1).long()).squeeze(1)
    return SpecResult((valid - 1).long(), emitted.long())


class VllmSyntheticSampler(VllmRejectionSampler):
    name = "vllm-rejection-sampler-synthetic"
    description = "rejection_sample in synthetic mode (acceptance at fixed rates 0.7, 0.5, 0.3, 0.2; lossy by design)"
    synthetic_rates = (0.7, 0.5, 0.3, 0.2)
    lacks = {**VllmRejectionSampler.lacks,
             "exact": "declared lossy: synthetic mode accepts position i with a fixed rate whatever p and q (vLLM's "
                      "benchmarking mode, SpeculativeConfig.rejection_sample_method = 'synthetic')",
             "greedy": "the synthetic rates are measured on the random path here"}


register(VllmRejectionSampler())
register(VllmSyntheticSampler())
