"""Advantage estimators from a query's group of G rewards, registered by name: ``group``
(GRPO and GSPO, paper eq. 6), ``group_mean`` (Dr.GRPO) and ``rloo`` (leave-one-out)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from gspo_repro.registry import Registry


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


Estimator = Callable[[torch.Tensor, int], torch.Tensor]
ADVANTAGES = Registry("advantage estimator")
ADVANTAGES["group"] = group_advantages
register_advantage = ADVANTAGES.register
get_advantage = ADVANTAGES.lookup


def _groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    if rewards.dim() != 1 or rewards.numel() % group_size or group_size < 2:
        raise ValueError(f"rewards must be flat [N] with N divisible by a group size >= 2, got "
                         f"shape {tuple(rewards.shape)} and group size {group_size}")
    return rewards.to(torch.float64).view(-1, group_size)


@register_advantage("group_mean")
def group_mean_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Dr.GRPO (arXiv 2503.20783): A_i = r_i - mean(r), no division by the group's std (which
    up-weights groups that are nearly all right or all wrong)."""
    r = _groups(rewards, group_size)
    return (r - r.mean(-1, keepdim=True)).view(-1).to(torch.float32)


@register_advantage("rloo")
def rloo_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """RLOO: A_i = r_i - mean_{j != i} r_j, the leave-one-out baseline (unbiased);
    = G/(G-1) (r_i - mean(r))."""
    r = _groups(rewards, group_size)
    others = (r.sum(-1, keepdim=True) - r) / (group_size - 1)
    return (r - others).view(-1).to(torch.float32)
