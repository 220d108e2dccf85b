"""Group-relative advantages shared by GRPO and GSPO (paper eq. 6)."""

from __future__ import annotations

import torch


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """A_i = (r_i - mean(r)) / (std(r) + eps) over each query's group of G samples.

    ``rewards`` is flat [N] with the G samples of a query next to each other (N = Q * G).
    std is the unbiased sample std, as in TRL and verl. A group whose rewards are all equal
    gets zeros: its numerator is exactly zero.
    """
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 for a group std, got {group_size}")
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be flat [N], got shape {tuple(rewards.shape)}")
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards are not divisible by group size {group_size}")
    r = rewards.to(torch.float64).view(-1, group_size)
    adv = (r - r.mean(-1, keepdim=True)) / (r.std(-1, keepdim=True) + eps)
    return adv.view(-1).to(rewards.dtype if rewards.is_floating_point() else torch.float32)
