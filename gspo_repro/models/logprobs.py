"""Per-token log-probabilities of given tokens under a causal LM."""

from __future__ import annotations

import torch


def gather_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[target] per position: [..., V] logits, [...] ids -> [...] floats.

    Computed as logit - logsumexp(logits), without materialising a log-softmax copy.
    """
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, -1)


def token_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                   temperature: float = 1.0) -> torch.Tensor:
    """log pi(x_t | x_<t) for t = 1..T-1: [B, T] ids -> [B, T-1] float32 log-probs.

    Computed as logit - logsumexp(logits) in fp32, without materialising a [B, T, V]
    log-softmax copy. Position t of the result scores token t+1 of ``input_ids``.
    """
    logits = model(input_ids, attention_mask=attention_mask).logits[:, :-1].float()
    if temperature != 1.0:
        logits = logits / temperature
    return gather_logprobs(logits, input_ids[:, 1:])
