"""The transformers engine: batched ``generate`` with a KV cache; exact and CPU-friendly."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Sample:
    """One response to one prompt."""

    prompt_index: int
    text: str
    token_ids: tuple[int, ...]
    finished: bool  # ended with EOS inside the budget


@torch.no_grad()
def sample(model, tokenizer, prompts: list[str], n: int = 1, max_new_tokens: int = 256,
           temperature: float = 1.0, seed: int = 0, batch_size: int = 128) -> list[Sample]:
    """``n`` samples for each prompt (prompt-major order), seeded per batch."""
    was_training = model.training
    model.eval()
    expanded = [i for i in range(len(prompts)) for _ in range(n)]
    out: list[Sample] = []
    eos = tokenizer.eos_token_id
    for b, start in enumerate(range(0, len(expanded), batch_size)):
        idx = expanded[start:start + batch_size]
        enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True,
                        padding_side="left")
        gen = torch.Generator().manual_seed(seed * 1_000_003 + b)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen)))
            ids = model.generate(**enc, do_sample=True, temperature=temperature, top_p=1.0,
                                 top_k=0, max_new_tokens=max_new_tokens, pad_token_id=
                                 tokenizer.pad_token_id, eos_token_id=eos)
        for row, i in zip(ids[:, enc["input_ids"].shape[1]:].tolist(), idx, strict=True):
            finished = eos in row
            row = row[:row.index(eos) + 1] if finished else row
            text = tokenizer.decode(row, skip_special_tokens=True)
            out.append(Sample(i, text, tuple(row), finished))
    model.train(was_training)
    return out
