"""The embedded default model: a tiny Qwen3-MoE built from transformers' own class.

Using ``Qwen3MoeForCausalLM`` itself (not a look-alike) means vLLM, lm-eval and FSDP2 load
the saved checkpoint unchanged, and routing replay sees the real router.
"""

from __future__ import annotations

import dataclasses

import torch
from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

from gspo_repro.config import ModelConfig

# Architecture choices fixed for the tiny model; its sizes come from ModelConfig, the one
# place the embedded default's shape is set.
FIXED = dict(
    norm_topk_prob=True,
    decoder_sparse_step=1,
    mlp_only_layers=[],
    intermediate_size=256,
    rope_theta=10000.0,
    tie_word_embeddings=True,
    router_aux_loss_coef=0.001,
)


# transformers' grouped-GEMM experts: the same numbers as its per-expert loop (checked in
# tests) and ~20% faster per training step on CPU; not saved into config.json.
FAST_EXPERTS = "grouped_mm"


def tiny_config(**overrides) -> Qwen3MoeConfig:
    """A Qwen3MoeConfig of ModelConfig's default sizes, any field overridable by keyword."""
    defaults = {**FIXED, **dataclasses.asdict(ModelConfig())}
    unknown = set(overrides) - set(Qwen3MoeConfig().to_dict()) - set(defaults)
    if unknown:
        raise ValueError(f"unknown Qwen3MoeConfig field(s): {', '.join(sorted(unknown))}")
    return Qwen3MoeConfig(**{**defaults, **overrides})


def build_tiny_model(config: Qwen3MoeConfig | None = None, seed: int = 0) -> Qwen3MoeForCausalLM:
    """A randomly initialised fp32 tiny Qwen3-MoE; the same seed gives the same weights."""
    config = config or tiny_config()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3MoeForCausalLM(config)
    model.config._experts_implementation = FAST_EXPERTS
    return model.float()
