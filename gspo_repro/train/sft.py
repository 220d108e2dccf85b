"""Cold-start SFT: next-token loss on the worked solutions of the train split."""

from __future__ import annotations

import dataclasses
import math
import platform
import random
import time
from pathlib import Path

import torch
import transformers
from tqdm import tqdm

from gspo_repro.config import Config
from gspo_repro.io import MetricsLog, atomic_write_json, remove_paths
from gspo_repro.models import build_tiny_model, tiny_config
from gspo_repro.models.checkpoint import load_checkpoint, save_checkpoint
from gspo_repro.models.tokenizer import build_tokenizer
from gspo_repro.tasks import make_split
from gspo_repro.train.dist import autocast, check_device, train_device
from gspo_repro.train.identity import IDENTITY, make_identity, mismatch, write_identity

IGNORE = -100


def _encode(tokenizer, prompt: str, solution: str, max_len: int) -> tuple[list[int], list[int]]:
    p = tokenizer(prompt)["input_ids"]
    s = tokenizer(solution)["input_ids"] + [tokenizer.eos_token_id]
    ids = (p + s)[:max_len]
    labels = ([IGNORE] * len(p) + s)[:max_len]
    return ids, labels


def _batches(examples: list, batch_size: int, steps: int, rng: random.Random):
    """``steps`` batches; examples of similar length are batched together to cut padding."""
    order: list[int] = []
    while len(order) < steps * batch_size:
        epoch = list(range(len(examples)))
        rng.shuffle(epoch)
        order += epoch
    batches = []
    chunk = 32 * batch_size
    for c in range(0, steps * batch_size, chunk):
        part = sorted(order[c:c + chunk], key=lambda i: len(examples[i][0]))
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches[:steps]


def _collate(examples, idx, pad_id: int):
    width = max(len(examples[i][0]) for i in idx)
    ids = torch.full((len(idx), width), pad_id)
    labels = torch.full((len(idx), width), IGNORE)
    attn = torch.zeros((len(idx), width), dtype=torch.long)
    for r, i in enumerate(idx):
        x, y = examples[i]
        ids[r, :len(x)], labels[r, :len(y)], attn[r, :len(x)] = torch.tensor(x), torch.tensor(y), 1
    return ids, labels, attn


def _lr(step: int, cfg) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def sft_identity(cfg: Config) -> dict:
    """What an SFT run depends on: seed, model and sft sections, the pretrained start."""
    full = cfg.to_dict()
    return make_identity("sft", {k: full[k] for k in ("seed", "model", "sft")},
                         cfg.model.pretrained or None)


def _claim(out: Path, identity: dict, overwrite: bool) -> bool:
    """Whether ``out`` already holds this run, finished (then nothing is done). A finished
    run of another identity is refused, naming what differs, unless ``overwrite``; whatever
    else is there (an unfinished run) is discarded before training starts."""
    if (out / "run.json").exists() and (out / "checkpoint").is_dir():
        why = mismatch(out, identity)
        if why is None:
            return True
        if not overwrite:
            raise FileExistsError(f"{out} holds a finished SFT run of another identity "
                                  f"({why}); choose another --out or pass --overwrite")
    # the completion marker first: a discard cut short never leaves an old run.json beside
    # new metrics
    remove_paths(out / name for name in ("run.json", "checkpoint", "metrics.jsonl", IDENTITY))
    return False


def run_sft(cfg: Config, out: str | Path, progress: bool = True,
            overwrite: bool = False) -> Path:
    """Train the tiny model from random init (or ``model.pretrained``); write identity.json,
    checkpoint/, metrics.jsonl, run.json. Where ``out`` holds this run finished, nothing is
    done; another finished run there is refused unless ``overwrite``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    identity = sft_identity(cfg)
    if _claim(out, identity, overwrite):
        print(f"sft: {out} already holds this run, finished; nothing to do", flush=True)
        return out / "checkpoint"
    write_identity(out, identity)
    sft = cfg.sft
    device = train_device()
    torch.manual_seed(cfg.seed)
    if cfg.model.pretrained:
        model, tokenizer = load_checkpoint(cfg.model.pretrained)
        max_len = model.config.max_position_embeddings
    else:
        tokenizer = build_tokenizer()
        tiny = {k: v for k, v in dataclasses.asdict(cfg.model).items() if k != "pretrained"}
        model = build_tiny_model(tiny_config(**tiny), seed=cfg.seed)
        max_len = cfg.model.max_position_embeddings
    model.config.output_router_logits = True  # the load-balancing loss keeps experts in use
    model.to(device)
    model.train()

    weights = sft.weights or (1.0,) * len(sft.families)
    total, share = sft.steps * sft.batch_size, sum(weights)
    tasks = [t for f, w in zip(sft.families, weights, strict=True)
             for t in make_split(f, "train", math.ceil(total * w / share), seed=cfg.seed,
                                steps=sft.difficulty or None)]
    examples = [_encode(tokenizer, t.prompt, t.solution, max_len) for t in tasks]
    batches = _batches(examples, sft.batch_size, sft.steps, random.Random(cfg.seed))

    opt = torch.optim.AdamW(model.parameters(), lr=sft.lr, weight_decay=sft.weight_decay,
                            betas=(0.9, 0.95))
    log = MetricsLog(out / "metrics.jsonl")
    t0, tokens = time.time(), 0
    bar = tqdm(range(sft.steps), desc="sft", disable=not progress, dynamic_ncols=True)
    for step in bar:
        ids, labels, attn = (t.to(device) for t in
                             _collate(examples, batches[step], tokenizer.pad_token_id))
        for g in opt.param_groups:
            g["lr"] = _lr(step, sft)
        check_device(model, ids, labels, attn)
        with autocast(device, sft.autocast):
            loss = model(ids, attention_mask=attn, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), sft.grad_clip)
        opt.step()
        tokens += int(attn.sum())
        if step % sft.log_every == 0 or step == sft.steps - 1:
            rec = {"step": step, "loss": loss.item(), "lr": opt.param_groups[0]["lr"],
                   "grad_norm": grad_norm.item(), "tokens": tokens,
                   "wall_s": round(time.time() - t0, 3)}
            log.write(rec)
            bar.set_postfix(loss=f"{rec['loss']:.3f}")
    model.config.output_router_logits = False
    save_checkpoint(model, tokenizer, out / "checkpoint")
    atomic_write_json(out / "run.json", {
        "stage": "sft", "config": cfg.to_dict(), "seed": cfg.seed, "identity": identity,
        "device": str(device),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "python": platform.python_version()},
        "ledger": {"steps": sft.steps, "sequences": sft.steps * sft.batch_size,
                   "trained_tokens": tokens, "wall_s": round(time.time() - t0, 1)},
    })
    return out / "checkpoint"
