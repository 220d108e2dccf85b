"""One update of the tiny Qwen3-MoE, measured the way the paper measures its arms.

The smallest end-to-end use of the foundation: record pi_old's routing, take one optimizer
step, then report how many (token, layer) expert sets moved (paper section 5.3, ~10% on
Qwen3-30B-A3B) and what fraction of tokens each objective clips on that update.
"""

from __future__ import annotations

import torch

from gspo_repro.models import build_tiny_model
from gspo_repro.models.logprobs import token_logprobs
from gspo_repro.objectives import OBJECTIVES
from gspo_repro.routing_replay import RoutingReplay


def run_probe(seed: int = 0, batch: int = 16, length: int = 64, lr: float = 1e-3) -> dict:
    """Return volatility and clip fractions after one Adam step on random-token LM loss."""
    torch.manual_seed(seed)
    model = build_tiny_model(seed=seed)
    rr = RoutingReplay(model)
    ids = torch.randint(0, model.config.vocab_size, (batch, length))
    mask = torch.ones(batch, length - 1)
    with torch.no_grad(), rr.record():
        old = token_logprobs(model, ids)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model(ids, labels=ids).loss.backward()
    opt.step()
    with torch.no_grad():
        with rr.compare():
            new = token_logprobs(model, ids)
        with rr.replay():
            new_replayed = token_logprobs(model, ids)
    adv = torch.randn(batch)
    out = {"expert_volatility": rr.stats()["volatility"]}
    for name in ("grpo", "gspo", "gspo_token"):  # the paper's objectives
        fn = OBJECTIVES[name]
        _, m = fn(new, old, adv, mask) if name != "gspo_token" else fn(
            new, old, adv[:, None].expand_as(mask), mask)
        out[f"{name}_clip_frac"] = m["clip_frac"].item()
    _, m = OBJECTIVES["grpo"](new_replayed, old, adv, mask)
    out["grpo_routing_replay_clip_frac"] = m["clip_frac"].item()
    return out
