"""Model factories: the embedded tiny Qwen3-MoE and loading of any HF causal LM."""

from gspo_repro.models.tiny import build_tiny_model, tiny_config

__all__ = ["build_tiny_model", "tiny_config"]
