"""Rollout filters and reward shaping, registered by name, applied between rewards and
advantages. Nothing here hides what it did: filters return which groups they keep (the
trainer counts the rest in its ledger) and shaping returns new rewards beside the old.

- ``dynamic_sampling`` (DAPO, arXiv 2503.14476 section 3.2): keep only groups whose rewards
  are not all equal, since a group of equal rewards has zero advantage and no gradient; the
  trainer samples more queries until the batch is full (``rl.filter_max_rounds`` at most).
- ``overlong`` (DAPO's soft overlong punishment, eq. 13): a penalty that grows linearly from 0
  to -1 over the last ``cache`` tokens of the response budget.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gspo_repro.registry import Registry

Filter = Callable[[torch.Tensor], torch.Tensor]
Shaping = Callable[..., torch.Tensor]
FILTERS = Registry("rollout filter")
SHAPING = Registry("reward shaping")
register_filter = FILTERS.register
register_shaping = SHAPING.register


@register_filter("dynamic_sampling")
def dynamic_sampling(rewards: torch.Tensor) -> torch.Tensor:
    """[Q, G] rewards -> [Q] bool: the groups whose rewards are not all equal."""
    return rewards.max(-1).values != rewards.min(-1).values


@register_shaping("overlong")
def overlong(rewards: torch.Tensor, lengths: torch.Tensor, max_len: int,
             cache: int = 64) -> torch.Tensor:
    """DAPO's soft overlong punishment added to the rewards::

        R_len(y) = 0                              |y| <= L_max - L_cache
                 = ((L_max - L_cache) - |y|) / L_cache   L_max - L_cache < |y| <= L_max
                 = -1                             |y| > L_max

    with L_max the response budget (``rl.max_new_tokens``) and L_cache = ``cache``.
    """
    if not 0 < cache <= max_len:
        raise ValueError(f"overlong: cache must be in (0, {max_len}], got {cache}")
    start = max_len - cache
    pen = ((start - lengths.to(rewards.dtype)) / cache).clamp(min=-1.0, max=0.0)
    return rewards + pen
