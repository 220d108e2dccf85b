"""The embedded default model: a tiny Qwen3-MoE built from transformers' own class.

Using ``Qwen3MoeForCausalLM`` itself (not a look-alike) means vLLM, lm-eval and FSDP2 load
the saved checkpoint unchanged, and routing replay sees the real router.
"""

from __future__ import annotations

import torch
from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

TINY_DEFAULTS = dict(
    vocab_size=64,
    hidden_size=128,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=32,
    intermediate_size=256,
    moe_intermediate_size=64,
    num_experts=8,
    num_experts_per_tok=2,
    norm_topk_prob=True,
    decoder_sparse_step=1,
    mlp_only_layers=[],
    max_position_embeddings=512,
    rope_theta=10000.0,
    tie_word_embeddings=True,
    router_aux_loss_coef=0.001,
)


def tiny_config(**overrides) -> Qwen3MoeConfig:
    """A Qwen3MoeConfig with the tiny defaults, any field overridable by keyword."""
    unknown = set(overrides) - set(Qwen3MoeConfig().to_dict()) - set(TINY_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown Qwen3MoeConfig field(s): {', '.join(sorted(unknown))}")
    return Qwen3MoeConfig(**{**TINY_DEFAULTS, **overrides})


def build_tiny_model(config: Qwen3MoeConfig | None = None, seed: int = 0) -> Qwen3MoeForCausalLM:
    """A randomly initialised fp32 tiny Qwen3-MoE; the same seed gives the same weights."""
    config = config or tiny_config()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3MoeForCausalLM(config)
    return model.float()
