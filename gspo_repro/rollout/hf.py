"""The transformers engine: batched ``generate`` with a KV cache; exact and CPU-friendly."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gspo_repro.models.logprobs import gather_logprobs


@dataclass(frozen=True)
class Sample:
    """One response to one prompt, with the engine's log-prob of each sampled token."""

    prompt_index: int
    text: str
    token_ids: tuple[int, ...]
    finished: bool  # ended with EOS inside the budget
    logprobs: tuple[float, ...] = ()  # log pi(token) at the sampling temperature


def batch_seed(seed: int, batch: int) -> int:
    """The torch seed of one generate call: a function of the run seed and the call index."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + batch)
    return int(torch.randint(0, 2**62, (1,), generator=gen))


@torch.no_grad()
def sample(model, tokenizer, prompts: list[str], n: int = 1, max_new_tokens: int = 256,
           temperature: float = 1.0, seed: int = 0, batch_size: int = 128,
           logprobs: bool = False) -> list[Sample]:
    """``n`` samples for each prompt (prompt-major order), seeded per batch.

    With ``logprobs`` each sample carries log pi(token | prefix) of its tokens, computed from
    the logits ``generate`` sampled from, scaled by ``temperature``.
    """
    was_training, experts = model.training, getattr(model.config, "_experts_implementation", None)
    model.eval()
    if experts is not None:  # decoding one token per sequence: the per-expert loop is faster
        model.config._experts_implementation = "eager"
    expanded = [i for i in range(len(prompts)) for _ in range(n)]
    gpu = [model.device] if model.device.type == "cuda" else []  # RNGs seeded per call
    out: list[Sample] = []
    eos = tokenizer.eos_token_id
    for b, start in enumerate(range(0, len(expanded), batch_size)):
        idx = expanded[start:start + batch_size]
        enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True,
                        padding_side="left").to(model.device)
        with torch.random.fork_rng(devices=gpu):
            torch.manual_seed(batch_seed(seed, b))
            gen = model.generate(**enc, do_sample=True, temperature=temperature, top_p=1.0,
                                 top_k=0, max_new_tokens=max_new_tokens, pad_token_id=
                                 tokenizer.pad_token_id, eos_token_id=eos,
                                 return_dict_in_generate=True, output_logits=logprobs)
        new = gen.sequences[:, enc["input_ids"].shape[1]:]
        lps = None
        if logprobs:
            logits = torch.stack(gen.logits, dim=1).float() / temperature  # [B, T, V]
            lps = gather_logprobs(logits, new).tolist()
        for r, (row, i) in enumerate(zip(new.tolist(), idx, strict=True)):
            finished = eos in row
            length = row.index(eos) + 1 if finished else len(row)
            row = row[:length]
            text = tokenizer.decode(row, skip_special_tokens=True)
            out.append(Sample(i, text, tuple(row), finished,
                              tuple(lps[r][:length]) if lps is not None else ()))
    model.train(was_training)
    if experts is not None:
        model.config._experts_implementation = experts
    return out
