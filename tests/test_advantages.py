import math

import pytest
import torch

from gspo_repro.advantages import group_advantages


def test_hand_worked_groups():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    adv = group_advantages(rewards, group_size=4)
    # group 0: mean 0.5, unbiased std = sqrt(4 * 0.25 / 3) = 0.57735 -> +-0.5 / 0.57735 = +-0.866
    a = 0.5 / math.sqrt(1 / 3)
    assert adv[:4].tolist() == pytest.approx([a, -a, -a, a], abs=1e-5)
    # group 1: all rewards equal -> zeros, not nan
    assert adv[4:].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_groups_are_independent_and_normalised():
    g = torch.Generator().manual_seed(0)
    rewards = torch.rand(6 * 8, generator=g)
    adv = group_advantages(rewards, 8).view(6, 8)
    assert torch.allclose(adv.mean(-1), torch.zeros(6), atol=1e-6)
    assert torch.allclose(adv.std(-1), torch.ones(6), atol=1e-4)
    shifted = group_advantages(rewards.view(6, 8).add(torch.arange(6.0)[:, None]).view(-1), 8)
    assert torch.allclose(shifted.view(6, 8), adv, atol=1e-5)


def test_bad_shapes():
    with pytest.raises(ValueError, match="not divisible by group size 8"):
        group_advantages(torch.zeros(60), 8)
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        group_advantages(torch.zeros(4), 1)
    with pytest.raises(ValueError, match="flat"):
        group_advantages(torch.zeros(2, 4), 4)
