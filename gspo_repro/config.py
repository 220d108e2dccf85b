"""Run configuration as frozen dataclasses; YAML sections map onto them one to one.

Each field has a docstring; ``__post_init__`` raises a ValueError naming the broken field.
Unknown keys are refused by name, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class ModelConfig:
    """The embedded tiny Qwen3-MoE (fields are Qwen3MoeConfig's)."""

    num_hidden_layers: int = 4
    """Decoder layers, each with an MoE block."""
    hidden_size: int = 128
    """Residual width."""
    num_attention_heads: int = 4
    """Query heads."""
    num_key_value_heads: int = 2
    """Key/value heads (grouped-query attention)."""
    head_dim: int = 32
    """Width of one head."""
    num_experts: int = 8
    """Routed experts per MoE block."""
    num_experts_per_tok: int = 2
    """Top-k experts each token activates."""
    moe_intermediate_size: int = 128
    """Hidden width of one expert's MLP."""
    vocab_size: int = 128
    """Embedding rows; at least the tokenizer's 99 tokens."""
    max_position_embeddings: int = 1024
    """Longest prompt + response, in tokens (characters)."""

    def __post_init__(self):
        if self.num_experts_per_tok > self.num_experts:
            raise ValueError(f"model.num_experts_per_tok {self.num_experts_per_tok} exceeds "
                             f"model.num_experts {self.num_experts}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"model.num_attention_heads {self.num_attention_heads} is not "
                             f"divisible by model.num_key_value_heads {self.num_key_value_heads}")


@dataclass(frozen=True)
class SFTConfig:
    """Cold-start supervised fine-tuning on worked solutions of the train split."""

    families: tuple[str, ...] = ("math", "code")
    """Task families whose worked solutions are trained on."""
    steps: int = 1000
    """Optimizer steps."""
    batch_size: int = 32
    """Sequences per step."""
    lr: float = 2e-3
    """Peak AdamW learning rate."""
    warmup_steps: int = 30
    """Linear warm-up steps; cosine decay to 10% of ``lr`` afterwards."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Global gradient-norm clip."""
    log_every: int = 10
    """Steps between metrics records."""

    def __post_init__(self):
        for name in ("steps", "batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"sft.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"sft.lr must be > 0, got {self.lr}")


@dataclass(frozen=True)
class EvalConfig:
    """Held-out sampling evaluation of a checkpoint on the synthetic families."""

    n_problems: int = 200
    """Held-out problems per family."""
    samples: int = 1
    """Samples per problem (avg@k)."""
    temperature: float = 1.0
    """Sampling temperature."""
    max_new_tokens: int = 320
    """Response token budget."""
    batch_size: int = 128
    """Prompts per generate call."""


@dataclass(frozen=True)
class Config:
    """A whole run."""

    seed: int = 0
    """Seed of model init, data order and sampling."""
    model: ModelConfig = field(default_factory=ModelConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples as lists), as written into run.json."""
        return _plain(dataclasses.asdict(self))


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ValueError(f"{where or 'config'} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"unknown key {where + '.' if where else ''}{unknown[0]}; "
                         f"known: {', '.join(fields)}")
    kwargs = {}
    for name, value in data.items():
        f, key = fields[name], f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(f.default_factory):
            kwargs[name] = _build(f.default_factory, value, key)
        else:
            kwargs[name] = _coerce(value, f.default, key)
    return cls(**kwargs)


def _coerce(value, default, key: str):
    if isinstance(default, bool) or default is None:
        ok = isinstance(value, type(default)) if default is not None else True
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, tuple):
        ok = isinstance(value, list | tuple)
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ValueError(f"{key} must be {type(default).__name__}, got {value!r}")
    return value


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> Config:
    """Read a YAML config (defaults where absent) and apply ``overrides`` on top."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ValueError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"config file {path} is not valid YAML: {e}") from None
    for key, value in (overrides or {}).items():
        data = _merge(data, key.split("."), value)
    try:
        return _build(Config, data, "")
    except ValueError as e:
        raise ValueError(f"{path or 'config'}: {e}") from None


def _merge(data: dict, keys: list[str], value) -> dict:
    out = dict(data)
    if len(keys) == 1:
        out[keys[0]] = value
    else:
        out[keys[0]] = _merge(out.get(keys[0], {}) or {}, keys[1:], value)
    return out
