"""HF-format checkpoints, written atomically, loadable by vLLM and lm-eval unchanged."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gspo_repro.io import atomic_dir
from gspo_repro.models.tiny import FAST_EXPERTS


def save_checkpoint(model, tokenizer, path: str | Path, state_dict: dict | None = None) -> None:
    """``save_pretrained`` of model and tokenizer into ``path``, swapped in whole; with
    ``state_dict``, those weights (e.g. gathered from FSDP2 shards) instead of the model's."""

    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp, state_dict=state_dict)
        tokenizer.save_pretrained(tmp)

    atomic_dir(path, fill)


def load_checkpoint(path: str | Path, dtype: torch.dtype = torch.float32):
    """(model, tokenizer) from a local HF directory or a hub id (when online)."""
    p = Path(path)
    if not p.exists() and (str(path).startswith((".", "/")) or p.suffix):
        raise ValueError(f"checkpoint {path} does not exist")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    if getattr(model.config, "num_experts", None):  # an MoE: grouped experts are faster
        model.config._experts_implementation = FAST_EXPERTS
    return model, tokenizer
