"""The RL loop every arm shares: rollout -> rewards -> old log-probs -> minibatch updates.

Arms differ only in ``cfg.rl.algorithms[name]`` (objective, clip range, routing replay).
For a given seed every arm draws the same queries in the same order, the same group size,
the same number of rollout batches and updates; ``run.json`` holds the compute ledger.

One rollout batch (step ``s``):

1. queries: ``rl.queries`` train problems drawn by a generator seeded on (seed, s);
2. rollout: ``rl.group_size`` samples each through the engine, with its log-probs;
3. rewards from the verifiers; advantages normalised within each group;
4. old log-probs by the training model (no grad); routing is recorded here per
   micro-batch, for replay and for the volatility measurement;
5. the samples are shuffled (seeded) into ``rl.minibatches`` minibatches, one optimizer
   step each, with the algorithm's objective; non-finite steps are skipped and logged;
6. volatility: a free-routing pass of the updated policy over the same rollout, counting
   (token, layer) expert sets that differ from pi_old's;
7. weight sync into the engine.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import os
import platform
import random
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from tqdm import tqdm

from gspo_repro.advantages import get_advantage
from gspo_repro.config import Config
from gspo_repro.eval.scoring import rewards as score
from gspo_repro.eval.scoring import sandbox_isolation
from gspo_repro.io import MetricsLog, atomic_dir, atomic_write_json, remove_paths
from gspo_repro.models.checkpoint import load_checkpoint, save_checkpoint
from gspo_repro.models.logprobs import gather_logprobs
from gspo_repro.objectives import Totals, get_aggregation, get_objective, takes_rollout_logp
from gspo_repro.rollout.engines import make_engine
from gspo_repro.routing_replay import RoutingReplay
from gspo_repro.shaping import FILTERS, SHAPING
from gspo_repro.tasks import Task, make_split
from gspo_repro.train.dist import Dist, autocast, check_device
from gspo_repro.train.identity import IDENTITY, make_identity, mismatch, write_identity
from gspo_repro.train.tracking import Tracker

SHARD_SEED = 1_000_033  # seed offset between rollout shards
ROUND_SEED = 7_919_993  # seed offset between a rollout filter's generation rounds
RL_POOL_SEED = 1_000_000
# What a run directory holds; a run found under another identity is discarded whole.
RUN_ARTIFACTS = (IDENTITY, "metrics.jsonl", "queries.jsonl", "state", "checkpoint",
                 "checkpoints", "run.json", "engine_start", "engine_weights", "tb", "wandb")
# Settings that change what is logged, not what is trained: not part of a run's identity.
LOGGING_ONLY = ("tensorboard", "wandb")


class NonFiniteError(RuntimeError):
    """Too many consecutive non-finite updates."""


@dataclass
class Micro:
    """One trainer forward pass: rows of [left-padded prompt | right-padded response]."""

    rows: list[int]  # sample indices
    ids: torch.Tensor  # [b, P + R]
    attn: torch.Tensor  # [b, P + R]
    pos: torch.Tensor  # [b, P + R]
    resp: torch.Tensor  # [b, R] bool, response tokens
    prompt_len: int  # P
    dummy: bool = False  # a pass that keeps FSDP's collectives in step; trains on nothing

    def to(self, device: torch.device) -> Micro:
        """The same micro-batch with its tensors on ``device``."""
        return dataclasses.replace(self, ids=self.ids.to(device), attn=self.attn.to(device),
                                   pos=self.pos.to(device), resp=self.resp.to(device))


def family_counts(families: tuple[str, ...], weights: tuple[float, ...], queries: int
                  ) -> dict[str, int]:
    """Queries per family in one batch: ``weights`` shares (empty: equal), largest remainder,
    ties to the earlier family."""
    w = weights or (1.0,) * len(families)
    exact = [queries * x / sum(w) for x in w]
    counts = [int(e) for e in exact]
    by_rest = sorted(range(len(w)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_rest[:queries - sum(counts)]:
        counts[i] += 1
    return dict(zip(families, counts, strict=True))


def query_batch(pools: dict[str, list[Task]], queries: int, seed: int, step: int,
                weights: tuple[float, ...] = (), round_: int = 0) -> list[Task]:
    """The queries of rollout batch ``step``: ``weights`` shares per family (empty: equal),
    a pure function; ``round_`` > 0 draws the extra queries a rollout filter asks for."""
    rng = random.Random(f"rl-queries/{seed}/{step}" + (f"/r{round_}" if round_ else ""))
    out = []
    for fam, k in family_counts(tuple(pools), weights, queries).items():
        out += rng.sample(pools[fam], k)
    return out


def active_params(model) -> int:
    """Parameters a token passes through: experts counted at top_k / num_experts, no embeddings."""
    cfg = model.config
    frac = cfg.num_experts_per_tok / cfg.num_experts
    n = 0
    for name, p in model.named_parameters():
        if "embed_tokens" in name:
            continue
        n += p.numel() * (frac if ".experts." in name else 1)
    return int(n)


def pack(prompts: list[list[int]], responses: list[tuple[int, ...]], rows: list[int],
         pad: int) -> Micro:
    """Tensors of one micro-batch; positions count real tokens only, as ``generate`` does."""
    P = max(len(prompts[r]) for r in rows)
    R = max(max(len(responses[r]) for r in rows), 1)
    ids = torch.full((len(rows), P + R), pad, dtype=torch.long)
    attn = torch.zeros((len(rows), P + R), dtype=torch.long)
    for j, r in enumerate(rows):
        p, y = prompts[r], responses[r]
        ids[j, P - len(p):P] = torch.tensor(p)
        attn[j, P - len(p):P] = 1
        if y:
            ids[j, P:P + len(y)] = torch.tensor(y)
            attn[j, P:P + len(y)] = 1
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    return Micro(rows, ids, attn, pos, attn[:, P:].bool(), P)


def micro_batches(rows: list[int], prompt_lens: list[int], resp_lens: list[int],
                  budget: int) -> list[list[int]]:
    """Split ``rows`` into length-sorted chunks whose packed tensors hold at most ``budget``
    tokens: ``pack`` pads every row to the longest prompt plus the longest response of its
    chunk (at least 1), so that is what counts. A row longer than ``budget`` goes alone."""
    rows = sorted(rows, key=lambda r: (prompt_lens[r] + resp_lens[r], r))
    out, cur, p_max, r_max = [], [], 0, 0
    for r in rows:
        p, y = max(p_max, prompt_lens[r]), max(r_max, resp_lens[r], 1)
        if cur and (p + y) * (len(cur) + 1) > budget:
            out.append(cur)
            cur, p, y = [], prompt_lens[r], max(resp_lens[r], 1)
        cur.append(r)
        p_max, r_max = p, y
    return out + [cur] if cur else out


def forward_logprobs(model, mb: Micro, temperature: float, entropy: bool = False):
    """log pi(response token) [b, R] at ``temperature`` and, optionally, token entropy [b, R]."""
    P, R = mb.prompt_len, mb.resp.shape[1]
    check_device(model, mb.ids, mb.attn, mb.pos)
    logits = model(input_ids=mb.ids, attention_mask=mb.attn, position_ids=mb.pos).logits
    logits = logits[:, P - 1:P + R - 1].float() / temperature
    lp = gather_logprobs(logits, mb.ids[:, P:])
    ent = None
    if entropy:
        ent = torch.logsumexp(logits, -1) - (torch.softmax(logits, -1) * logits).sum(-1)
    return lp, ent


def engine_logprobs(mb: Micro, samples) -> torch.Tensor:
    """The engine's sampling log-probs laid out like ``mb``'s responses [b, R] (0 elsewhere)."""
    out = torch.zeros(mb.resp.shape, dtype=torch.float32)
    for k, r in enumerate(mb.rows):
        y = samples[r].logprobs
        if y:
            out[k, :len(y)] = torch.tensor(y)
    return out.to(mb.resp.device)


def _gap(lp: torch.Tensor, eng: torch.Tensor, resp: torch.Tensor) -> tuple[float, float]:
    """(sum, max) of |trainer - engine| log-prob over response tokens."""
    if not resp.any():
        return 0.0, 0.0
    diff = (lp - eng).abs()[resp]
    return float(diff.sum()), float(diff.max())


def _flat_mask(mb: Micro) -> torch.Tensor:
    mask = mb.attn.reshape(-1).bool()
    return torch.zeros_like(mask) if mb.dummy else mask


class _Mean:
    """Weighted means of named values."""

    def __init__(self):
        self.num, self.den = defaultdict(float), defaultdict(float)

    def add(self, name: str, value: float, weight: float = 1.0) -> None:
        self.num[name] += value * weight
        self.den[name] += weight

    def get(self) -> dict[str, float]:
        return {k: self.num[k] / self.den[k] for k in self.num if self.den[k] > 0}


def _sha(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def _rng_state() -> dict:
    cuda = torch.cuda.get_rng_state() if torch.cuda.is_available() else None
    return {"torch": torch.get_rng_state(), "python": random.getstate(), "cuda": cuda}


class RLRun:
    """State of one RL run; ``run()`` trains to the end or raises, resumable from ``out``."""

    def __init__(self, cfg: Config, algo: str, init: str | Path, out: str | Path,
                 resume: bool | str = False, progress: bool = True):
        self.cfg, self.rl, self.algo_name = cfg, cfg.rl, algo
        self.algo = cfg.rl.algorithm(algo)
        self.objective = get_objective(self.algo.objective)
        self.aggregate = get_aggregation(self.algo.aggregation or getattr(
            self.objective, "aggregation", "seq_mean_token_mean"))
        self.advantage = get_advantage(self.algo.advantage)
        self.filter = FILTERS.lookup(self.algo.filter) if (
            self.algo.filter) else None
        self.shaping = SHAPING.lookup(self.algo.shaping) if (
            self.algo.shaping) else None
        # the engine's log-probs enter the loss: as pi_old, or as pi_rollout of a correction
        self.engine_old = self.algo.old_logprobs == "engine"
        self.r3 = self.algo.routing_replay and self.algo.replay_source == "engine"
        self.rollout_logp = takes_rollout_logp(self.objective)
        self.out, self.init, self.progress = Path(out), Path(init), progress
        self.state_dir = self.out / "state"
        self.identity = make_identity("rl", rl_identity_config(cfg, algo), init, cfg.plugins)
        self.dist = Dist()
        self.device = self.dist.device
        if self.filter is not None and self.dist.on:
            raise ValueError(f"rl.algorithms.{algo}.filter {self.algo.filter!r}: rollout "
                             f"filters run in one process only (not under torchrun) for now")
        self.complete = False
        start = self._claim(resume)
        if self.complete:
            return
        # code rewards need the sandbox: fail here, not after the first rollout
        self.isolation = sandbox_isolation(self.rl.families)
        try:
            self.model, self.tokenizer = load_checkpoint(init)
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot load --init checkpoint {init}: {e}") from None
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.model.to(self.device)
        self.model.train()
        self.model.config.output_router_logits = False
        self.n_active = active_params(self.model)
        world = self.dist.world
        self.shards = max(self.rl.rollout_shards, world)
        if self.shards % world or self.rl.queries % self.shards:
            raise ValueError(f"rl.rollout_shards {self.shards} must be a multiple of the world "
                             f"size {world} and divide rl.queries {self.rl.queries}")
        # Under torchrun the trainer's policy is sharded. The transformers engine generates
        # with a full copy on each rank, refreshed from the shards after every rollout batch's
        # updates; the vLLM engine is fed the shards one gathered parameter at a time.
        self.replica = None
        if self.dist.on:
            if self.rl.engine == "transformers":
                self.replica = copy.deepcopy(self.model)
            self.dist.shard(self.model)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=self.rl.lr,
                                     weight_decay=self.rl.weight_decay, betas=(0.9, 0.999))
        self.rr = RoutingReplay(self.model)
        # Train-split problems from a stream other than SFT's (seed offset), so RL mostly
        # meets problems whose worked solutions it was not fine-tuned on.
        self.pools = {f: make_split(f, "train", self.rl.pool, seed=RL_POOL_SEED + cfg.seed,
                                     steps=self.rl.difficulty or None)
                      for f in self.rl.families}
        self.log = MetricsLog(self.out / "metrics.jsonl")
        self.queries_log = MetricsLog(self.out / "queries.jsonl")
        self.step, self.bad_in_row = 0, 0
        self.ledger = defaultdict(float)
        if start == "resume":
            self._load_state()
        elif self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
            self.log.path.unlink(missing_ok=True)
            self.queries_log.path.unlink(missing_ok=True)
            write_identity(self.out, self.identity)
        self.dist.barrier()
        self.workdir = self.out / f"rank{self.dist.rank}" if self.dist.on else self.out
        engine_ckpt = self.init
        resumed_vllm = self.rl.engine == "vllm" and self.step > 0
        if resumed_vllm and not self.dist.on:
            engine_ckpt = self.workdir / "engine_start"
            save_checkpoint(self.policy, self.tokenizer, engine_ckpt)
        self.engine = make_engine(self.rl.engine, self.policy, self.tokenizer, engine_ckpt,
                                  self.workdir, rl=self.rl, dist=self.dist)
        if resumed_vllm and self.dist.on:  # colocated: start from --init, load the state
            self.engine.sync(self.model)

    def _claim(self, resume: bool | str) -> str:
        """Decide what to do with ``out``: "fresh" or "resume"; a finished run of the same
        identity sets ``complete`` (nothing to do). ``resume`` True continues only a run of
        this identity and refuses another, naming what differs; "restart" (the workflow's
        choice, made once it decided the output is stale) discards another and says so."""
        out = self.out
        if not any((out / name).exists() for name in RUN_ARTIFACTS):
            return "fresh"
        if not resume:
            raise FileExistsError(f"{out} already holds a run; pass --resume to continue "
                                  f"it or choose another --out")
        why = mismatch(out, self.identity)
        if why is not None:
            if resume != "restart":
                raise ValueError(f"{out} holds a different run ({why}); --resume continues "
                                 f"only the same run: choose another --out, or pass "
                                 f"--restart-if-changed to discard it")
            if self.dist.main:
                print(f"rl: {out} holds a different run ({why}); starting afresh", flush=True)
                discard_run(out)
            self.dist.barrier()
            return "fresh"
        saved = self.state_dir / "state.json"
        if not saved.exists():
            return "fresh"  # killed before its first checkpoint: nothing to continue
        step = json.loads(saved.read_text())["step"]
        if step >= self.rl.steps and (out / "run.json").exists():
            self.complete = True
            return "complete"
        return "resume"

    def _autocast(self):
        return autocast(self.device, self.rl.autocast)

    @property
    def policy(self):
        """The model the engine generates with: the full replica under torchrun with the
        transformers engine, else the trainer's model (sharded under torchrun)."""
        return self.replica if self.replica is not None else self.model

    def export(self, path: Path) -> None:
        """The policy as an HF checkpoint at ``path``, written by rank 0 (a collective)."""
        if self.replica is not None or not self.dist.on:
            if self.dist.main:
                save_checkpoint(self.policy, self.tokenizer, path)
            return
        state = self.dist.full_state_dict(self.model, rank0_cpu=True)
        if self.dist.main:
            save_checkpoint(self.model, self.tokenizer, path, state_dict=state)

    # ----- state -------------------------------------------------------------------------
    def _save_state(self) -> None:
        """Trainer state, atomically: one torch file in one process; under torchrun, DCP
        shards of model and optimizer plus each rank's RNG state."""
        lines = len(self.log.read()) if self.dist.main else 0
        meta = {"step": self.step, "bad_in_row": self.bad_in_row, "ledger": dict(self.ledger),
                "metrics_lines": lines,
                "queries_lines": len(self.queries_log.read()) if self.dist.main else 0}

        def fill(tmp: Path) -> None:
            if self.dist.on:
                self.dist.save_sharded(self.model, self.opt, tmp / "dcp")
            else:
                torch.save({"model": self.model.state_dict(), "opt": self.opt.state_dict()},
                           tmp / "state.pt")
            for r, rng in enumerate(self.dist.gather(_rng_state())):
                if self.dist.main:
                    torch.save(rng, tmp / f"rng{r}.pt")
            if self.dist.main:
                torch.save(meta, tmp / "meta.pt")
                atomic_write_json(tmp / "state.json", {"step": self.step, "metrics_lines": lines,
                                                       "world_size": self.dist.world})

        if not self.dist.on:
            atomic_dir(self.state_dir, fill)
            return
        tmp = self.state_dir.with_name(f".{self.state_dir.name}.tmp")
        if self.dist.main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        self.dist.barrier()
        fill(tmp)
        self.dist.barrier()
        def move_in(d: Path) -> None:  # the shards are written; swap them in atomically
            d.rmdir()
            os.replace(tmp, d)

        if self.dist.main:
            atomic_dir(self.state_dir, move_in)
        self.dist.barrier()

    def _load_state(self) -> None:
        saved = json.loads((self.state_dir / "state.json").read_text()).get("world_size", 1)
        if saved != self.dist.world:
            raise ValueError(f"{self.state_dir} was saved by {saved} rank(s); resume it with "
                             f"the same world size, not {self.dist.world}")
        if self.dist.on:
            self.dist.load_sharded(self.model, self.opt, self.state_dir / "dcp")
            if self.replica is not None:  # the transformers engine's full copy; a vLLM
                # engine is synced from the loaded shards once it has started
                self.replica.load_state_dict(self.dist.full_state_dict(self.model))
        else:
            st = torch.load(self.state_dir / "state.pt", weights_only=False,
                            map_location=self.device)
            self.model.load_state_dict(st["model"])
            self.opt.load_state_dict(st["opt"])
        rng = torch.load(self.state_dir / f"rng{self.dist.rank}.pt", weights_only=False)
        torch.set_rng_state(rng["torch"])
        random.setstate(rng["python"])
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        meta = torch.load(self.state_dir / "meta.pt", weights_only=False)
        self.step, self.bad_in_row = meta["step"], meta["bad_in_row"]
        self.ledger.update(meta["ledger"])
        if self.dist.main:  # drop what the killed run wrote after its last checkpoint
            self.log.truncate(meta["metrics_lines"])
            self.queries_log.truncate(meta["queries_lines"])

    # ----- one rollout batch ---------------------------------------------------------------
    def _rollout(self, tasks: list[Task], round_: int = 0
                 ) -> tuple[list, list[Task], list[tuple[int, int]]]:
        """This rank's samples (grouped per query, G in a row), the task each one answers,
        and the (start, end) of each rollout shard among them.

        The batch is generated as ``shards`` independently seeded shards of consecutive
        queries, one or more per rank, so a one-process run with ``rl.rollout_shards`` equal
        to a torchrun world size sees the same samples as that run.
        """
        rl, world, rank = self.rl, self.dist.world, self.dist.rank
        per = len(tasks) // self.shards
        samples, owners, bounds = [], [], []
        for k in range(rank * self.shards // world, (rank + 1) * self.shards // world):
            seed = self.cfg.seed * 100_003 + self.step + k * SHARD_SEED + round_ * ROUND_SEED
            start = len(samples)
            by_fam = defaultdict(list)
            for t in tasks[k * per:(k + 1) * per]:
                by_fam[t.family].append(t)
            for fam, ts in by_fam.items():  # one call per family: similar lengths batch well
                outs = self.engine.generate([t.prompt for t in ts], rl.group_size,
                                            rl.max_new_tokens, rl.temperature,
                                            seed * 7 + rl.families.index(fam))
                samples += outs
                owners += [ts[s.prompt_index] for s in outs]
            bounds.append((start, len(samples)))
        return samples, owners, bounds

    def _minibatches(self, bounds: list[tuple[int, int]]) -> list[list[int]]:
        """Each shard shuffled on its own, then cut into ``minibatches`` equal slices; slice i
        of every shard forms minibatch i (the same minibatches whatever the world size)."""
        rl, minis = self.rl, [[] for _ in range(self.rl.minibatches)]
        first = self.dist.rank * self.shards // self.dist.world
        for k, (a, b) in enumerate(bounds, start=first):
            key = f"rl-minibatch/{self.cfg.seed}/{self.step}" + (f"/{k}" if k else "")
            order = list(range(a, b))
            random.Random(key).shuffle(order)
            for i in range(rl.minibatches):
                minis[i] += order[i * (b - a) // rl.minibatches:(i + 1) * (b - a) // rl.minibatches]
        return minis

    def _score(self, samples, owners) -> tuple[list[tuple[float, str, int]], int]:
        """(reward, family, response length) of every rank's samples in rank order, and where
        this rank's own start: a group's advantages use all of it."""
        local = score(owners, [s.text for s in samples])
        every = self.dist.gather([(r, o.family, len(s.token_ids))
                                  for r, o, s in zip(local, owners, samples, strict=True)])
        return [x for part in every for x in part], sum(len(x) for x in every[:self.dist.rank])

    def _collect(self, tasks: list[Task]):
        """Rollout and rewards of one batch: (samples, owners, shard bounds, scored, offset,
        generated counts). With a rollout filter (one process), groups it drops are replaced
        by more rounds of fresh queries, up to ``rl.filter_max_rounds``; what was generated
        and not kept is counted, never hidden."""
        rl, G = self.rl, self.rl.group_size
        samples, owners, bounds = self._rollout(tasks)
        scored, offset = self._score(samples, owners)
        gen = {"samples": len(scored), "tokens": sum(n for *_, n in scored), "rounds": 1,
               "groups": len(scored) // G, "queries": len(tasks)}
        if self.filter is None:
            return samples, owners, bounds, scored, offset, gen
        kept_s, kept_o, kept_r = [], [], []
        round_ = 0
        while True:
            keep = self.filter(torch.tensor([r for r, *_ in scored]).view(-1, G))
            for q in keep.nonzero().flatten().tolist():
                if len(kept_s) < rl.queries * G:
                    kept_s += samples[q * G:(q + 1) * G]
                    kept_o += owners[q * G:(q + 1) * G]
                    kept_r += scored[q * G:(q + 1) * G]
            round_ += 1
            if len(kept_s) >= rl.queries * G or round_ >= rl.filter_max_rounds:
                break
            extra = query_batch(self.pools, rl.queries, self.cfg.seed, self.step, rl.weights,
                                round_)
            samples, owners, _ = self._rollout(extra, round_)
            scored, _ = self._score(samples, owners)
            gen["samples"] += len(scored)
            gen["tokens"] += sum(n for *_, n in scored)
            gen["groups"] += len(scored) // G
            gen["rounds"] += 1
            gen["queries"] += len(extra)
        return kept_s, kept_o, [(0, len(kept_s))], kept_r, 0, gen

    def _advantages(self, scored: list, offset: int, n: int):
        """(raw rewards of every rank, the same after the arm's reward shaping, this rank's
        advantages on the device)."""
        rew = torch.tensor([r for r, *_ in scored], dtype=torch.float32)
        shaped = rew
        if self.shaping is not None:
            lengths = torch.tensor([n_tok for *_, n_tok in scored])
            shaped = self.shaping(rew, lengths, self.rl.max_new_tokens,
                                  **self.algo.shaping_params)
        if not len(rew):
            return rew, shaped, torch.zeros(0, device=self.device)
        adv = self.advantage(shaped, self.rl.group_size)
        return rew, shaped, adv[offset:offset + n].to(self.device)

    def _plan(self, prompts, resps, minis) -> list[list[Micro]]:
        """The micro-batches of each minibatch, on the device; under torchrun every rank runs
        as many passes per minibatch (dummies), so FSDP's collectives pair up."""
        rl, d, pad = self.rl, self.dist, self.tokenizer.pad_token_id
        p_lens, r_lens = [len(p) for p in prompts], [len(r) for r in resps]
        plan = [[pack(prompts, resps, rows, pad).to(self.device)
                 for rows in micro_batches(mini, p_lens, r_lens, rl.micro_batch_tokens)]
                for mini in minis]
        if d.on:
            for mbs, mini in zip(plan, minis, strict=True):
                dummy = pack(prompts, resps, mini[:1], pad).to(self.device)
                dummy = dataclasses.replace(dummy, rows=[], resp=torch.zeros_like(dummy.resp),
                                            dummy=True)
                mbs += [dummy] * (d.max_int(len(mbs)) - len(mbs))
        return plan

    def _totals(self, mbs: list[Micro]) -> Totals:
        """The minibatch's response tokens and sequences over every micro-batch and rank."""
        resp = [mb.resp for mb in mbs if not mb.dummy]
        mine = (sum(int(r.sum()) for r in resp), sum(int((r.sum(-1) > 0).sum()) for r in resp))
        parts = self.dist.gather(mine)
        return Totals(float(sum(p[0] for p in parts)), float(sum(p[1] for p in parts)),
                      float(self.rl.max_new_tokens))

    def _old_logprobs(self, plan, eng, m: _Mean) -> tuple[dict, float, float]:
        """pi_old's log-probs per micro-batch, routing recorded for replay and volatility, and
        the engine/trainer gap (sum, max); from the engine (no pass) for old_logprobs: engine,
        whose gap the first minibatch's update pass measures instead."""
        if self.engine_old:
            return dict(eng), 0.0, 0.0
        old, gap_sum, gap_max = {}, 0.0, 0.0
        with torch.no_grad():
            for i, mbs in enumerate(plan):
                for j, mb in enumerate(mbs):
                    with self.rr.record((i, j)), self._autocast():
                        lp, ent = forward_logprobs(self.model, mb, self.rl.temperature,
                                                   entropy=True)
                    old[(i, j)] = lp
                    if mb.resp.any():
                        m.add("entropy", float(ent[mb.resp].mean()), int(mb.resp.sum()))
                    s, x = _gap(lp, eng[(i, j)], mb.resp)
                    gap_sum, gap_max = gap_sum + s, max(gap_max, x)
        return old, gap_sum, gap_max

    def _load_engine_routing(self, plan, prompts, routes, m: _Mean) -> None:
        """R3: the engine's routing of each sample laid out like each micro-batch (left-padded
        prompt, right-padded response) and stored for replay under ("r3", i, j). Padding
        keeps experts 0..k-1: its routing touches no real token. Where the trainer recorded
        pi_old's routing, the share of (token, layer) expert sets the two agree on is logged
        (1 when their weights and numerics agree)."""
        k = self.model.config.num_experts_per_tok
        for i, mbs in enumerate(plan):
            for j, mb in enumerate(mbs):
                b, width = mb.ids.shape
                P = mb.prompt_len
                layers = []
                for layer in range(self.rr.num_layers):
                    ids = torch.arange(k).repeat(b, width, 1)
                    for row, r in enumerate(mb.rows):
                        got, n_p = routes[r][layer], len(prompts[r])
                        ids[row, P - n_p:P - n_p + len(got)] = got
                    layers.append([ids.view(b * width, k).to(self.device)])
                self.rr.load(("r3", i, j), layers)
                if (i, j) in self.rr and not mb.dummy:
                    mask = _flat_mask(mb)
                    for eng_ids, ours in zip(layers, self.rr.recorded((i, j)), strict=True):
                        a = eng_ids[0].sort(-1).values
                        same = (a == ours[0].long().sort(-1).values).all(-1)[mask]
                        m.add("routing_engine_agreement", float(same.float().mean()),
                              int(mask.sum()))

    def _train_step(self) -> dict:
        rl, m, t, d = self.rl, _Mean(), {}, self.dist
        tasks = query_batch(self.pools, rl.queries, self.cfg.seed, self.step, rl.weights)

        t0 = time.time()
        samples, owners, bounds, scored, offset, gen = self._collect(tasks)
        prompts = [self.tokenizer(o.prompt)["input_ids"] for o in owners]
        resps = [s.token_ids for s in samples]
        routes = None
        if self.r3:  # R3: the experts the engine routes each token to, before it sleeps
            routes = self.engine.routing([p + list(r) for p, r in zip(prompts, resps,
                                                                       strict=True)])
        self.engine.release()  # colocated on CUDA: the trainer gets the engine's memory
        t["rollout"] = time.time() - t0

        t0 = time.time()
        rew, shaped, adv = self._advantages(scored, offset, len(samples))
        t["reward"] = time.time() - t0
        ids = [owners[q].id for q in range(0, len(owners), rl.group_size)] if (
            self.filter is not None) else [x.id for x in tasks]

        minis = self._minibatches(bounds)
        plan = self._plan(prompts, resps, minis)
        eng = {(i, j): engine_logprobs(mb, samples) for i, mbs in enumerate(plan)
               for j, mb in enumerate(mbs)}

        # old log-probs (pi_old = the policy that sampled), routing recorded per micro-batch
        t0 = time.time()
        self.rr.clear()
        old, gap_sum, gap_max = self._old_logprobs(plan, eng, m)
        if routes is not None:
            self._load_engine_routing(plan, prompts, routes, m)
        t["old_logprobs"] = time.time() - t0

        # one optimizer step per minibatch; the arm's aggregation over the whole minibatch
        t0 = time.time()
        skipped, empty, grad_norms, rmin, rmax = 0, 0, [], math.inf, -math.inf
        kw = {"eps_low": self.algo.eps_low, "eps_high": self.algo.eps_high, **self.algo.params}
        for i, mbs in enumerate(plan):
            totals = self._totals(mbs)
            if not totals.seqs:  # nothing to train on (a filter kept too little): no step
                empty += 1
                continue
            self.opt.zero_grad(set_to_none=True)
            finite, mb_loss = True, 0.0
            for j, mb in enumerate(mbs):
                key = ("r3", i, j) if self.r3 else (i, j)
                replay = (self.rr.replay(key, token_mask=_flat_mask(mb))
                          if self.algo.routing_replay else contextlib.nullcontext())
                with replay, self._autocast():
                    lp, _ = forward_logprobs(self.model, mb, rl.temperature)
                if mb.dummy:
                    (lp.sum() * 0.0).backward()
                    continue
                if self.engine_old and i == 0:  # pi_theta = the trainer's pi_old here
                    s, x = _gap(lp.detach(), eng[(i, j)], mb.resp)
                    gap_sum, gap_max = gap_sum + s, max(gap_max, x)
                extra = {"rollout_logp": eng[(i, j)]} if self.rollout_logp else {}
                terms, met = self.objective(lp, old[(i, j)], adv[mb.rows], mb.resp, **kw,
                                            **extra)
                loss = self.aggregate(terms, mb.resp, totals)
                finite &= bool(torch.isfinite(loss))
                # FSDP averages gradients over ranks; the totals already span them
                (loss * d.world if d.on else loss).backward()
                mb_loss += float(loss.detach())
                nt, nr = float(met["num_tokens"]), float(met["num_ratios"])
                for k in ("clip_frac", "clip_frac_low", "clip_frac_high", "approx_kl",
                          "mismatch_mean", "mismatch_truncated", "mismatch_masked"):
                    if k in met:
                        m.add(k, float(met[k]), nt)
                m.add("ratio_mean", float(met["ratio_mean"]), nr)
                rmin, rmax = min(rmin, float(met["ratio_min"])), max(rmax, float(met["ratio_max"]))
            # the minibatch's loss, weighted by its sequences once summed over ranks
            m.add("loss", mb_loss * d.world, totals.seqs / d.world)
            if i == 0:
                m.add("loss_first_update", mb_loss * d.world, totals.seqs / d.world)
            gn = torch.nn.utils.clip_grad_norm_(self.model.parameters(), rl.grad_clip)
            gn = gn.full_tensor() if hasattr(gn, "full_tensor") else gn
            if d.all_true(finite and bool(torch.isfinite(gn))):
                self.opt.step()
                grad_norms.append(float(gn))
                self.bad_in_row = 0
            else:
                skipped += 1
                self.bad_in_row += 1
                self.opt.zero_grad(set_to_none=True)
                if self.bad_in_row >= rl.max_nonfinite:
                    raise NonFiniteError(
                        f"{self.bad_in_row} consecutive non-finite updates at rollout batch "
                        f"{self.step} ({self.algo_name}); stopping. The last good checkpoint "
                        f"is {self.state_dir} (resume with --resume after fixing the cause)")
        self.opt.zero_grad(set_to_none=True)
        t["update"] = time.time() - t0

        # expert-activation volatility: free routing of the updated policy vs pi_old's record,
        # on the first minibatch: a random share 1/minibatches of the rollout (a shuffle)
        changed = compared = 0
        volatility = rl.volatility and not self.engine_old  # no record without the old pass
        t0 = time.time()
        if volatility:
            self.rr.reset_stats()
            with torch.no_grad():
                for j, mb in enumerate(plan[0]):
                    with self.rr.compare((0, j), token_mask=_flat_mask(mb)), self._autocast():
                        self.model(input_ids=mb.ids, attention_mask=mb.attn,
                                   position_ids=mb.pos)
            st = self.rr.stats()
            changed, compared = st["changed"], st["total"]
        self.rr.clear()
        t["volatility"] = time.time() - t0

        t0 = time.time()
        if self.replica is not None:
            self.replica.load_state_dict(d.full_state_dict(self.model))
        self.engine.sync(self.policy)
        t["sync"] = time.time() - t0

        # ---- metrics, summed over ranks
        mine = {"num": dict(m.num), "den": dict(m.den), "gap": gap_sum, "gap_max": gap_max,
                "rmin": rmin, "rmax": rmax, "changed": changed, "compared": compared,
                "n": len(samples),
                "trunc": sum(not s.finished for s in samples),
                "resp": sum(len(r) for r in resps),
                "all": sum(len(p) + len(r) for p, r in zip(prompts, resps, strict=True)),
                "vol_tokens": sum(len(prompts[r]) + len(resps[r]) for r in minis[0]),
                # tokens the engine/trainer gap was measured on: every response token, or
                # with old_logprobs: engine those of the first minibatch
                "gap_tokens": sum(len(resps[r]) for r in (minis[0] if self.engine_old
                                                          else range(len(resps))))}
        parts = d.gather(mine)
        total = {k: sum(p[k] for p in parts) for k in ("gap", "n", "trunc", "resp", "all",
                                                       "vol_tokens", "changed", "compared",
                                                       "gap_tokens")}
        m = _Mean()
        for p in parts:
            for k, v in p["num"].items():
                m.num[k] += v
                m.den[k] += p["den"][k]
        rmin, rmax = min(p["rmin"] for p in parts), max(p["rmax"] for p in parts)
        n, resp_tokens, all_tokens = total["n"], total["resp"], total["all"]
        fwd = 2 * self.n_active
        # rollout (every generated token), old log-probs (unless the engine's), update
        flops = fwd * gen["tokens"] + 3 * fwd * all_tokens
        if not self.engine_old:
            flops += fwd * all_tokens
        if volatility:
            flops += fwd * total["vol_tokens"]
        rec = {"step": self.step, "queries_sha": _sha(ids),
               "reward_mean": float(rew.mean()) if len(rew) else None,
               "response_len_mean": resp_tokens / n if n else None,
               "truncated_frac": total["trunc"] / n if n else None,
               "zero_adv_group_frac": float((rew.view(-1, rl.group_size).std(-1) == 0)
                                            .float().mean()) if len(rew) else None,
               "grad_norm": sum(grad_norms) / len(grad_norms) if grad_norms else None,
               "grad_norm_max": max(grad_norms) if grad_norms else None,
               "skipped_updates": skipped,
               "volatility": (total["changed"] / total["compared"]
                              if volatility and total["compared"] else None),
               "engine_gap_mean": total["gap"] / max(total["gap_tokens"], 1),
               "engine_gap_max": max(p["gap_max"] for p in parts),
               "tokens_generated": gen["tokens"], "tokens_trained": all_tokens,
               "flops": float(flops)}
        if self.filter is not None:
            rec.update(filter_rounds=gen["rounds"], samples_generated=gen["samples"],
                       filter_kept_frac=(n // rl.group_size) / max(gen["groups"], 1),
                       empty_updates=empty)
        if self.shaping is not None:
            rec["reward_shaped_mean"] = float(shaped.mean())
        for fam in self.rl.families:
            r = [x for x, f, _ in scored if f == fam]
            rec[f"accuracy/{fam}"] = sum(r) / len(r) if r else None
        rec.update(m.get())
        rec.update(ratio_min=rmin if plan and math.isfinite(rmin) else None,
                   ratio_max=rmax if plan and math.isfinite(rmax) else None)
        rec.update({f"time/{k}": round(v, 4) for k, v in t.items()})
        led = self.ledger
        led["queries"] += len(tasks)
        led["samples"] += n
        led["samples_generated"] += gen["samples"]
        led["queries_generated"] += gen["queries"]
        led["rollout_tokens"] += gen["tokens"]
        led["trained_tokens"] += all_tokens
        if self.engine_old:
            led["old_logprob_tokens_saved"] += all_tokens
        led["flops"] += flops
        led["updates"] += rl.minibatches - skipped - empty
        led["skipped_updates"] += skipped
        for k, v in t.items():
            led[f"time/{k}"] += v
        if d.main:
            self.queries_log.write({"step": self.step, "ids": ids})
        return rec

    # ----- the loop --------------------------------------------------------------------------
    def run(self) -> Path:
        rl, main = self.rl, self.dist.main
        if self.complete:  # the same run, finished: nothing is trained or rewritten
            if main:
                print(f"rl: {self.out} already holds this run, complete at {rl.steps} rollout "
                      f"batches; nothing to do", flush=True)
            self.dist.close()
            return self.out / "checkpoint"
        track = Tracker(self.out, f"{self.algo_name}-seed{self.cfg.seed}", self.cfg.to_dict(),
                        rl.tensorboard, rl.wandb, self.step) if main else None
        t_start = time.time()
        bar = tqdm(total=rl.steps, initial=self.step, desc=f"rl {self.algo_name}",
                   disable=not (self.progress and main), dynamic_ncols=True)
        try:
            while self.step < rl.steps:
                t0 = time.time()
                rec = self._train_step()
                rec["wall_s"] = round(time.time() - t0, 3)
                self.ledger["rollout_batches"] += 1
                if main:
                    self.log.write(rec)
                    track.log(self.step, rec)
                self.step += 1
                bar.update(1)
                bar.set_postfix(reward=f"{rec['reward_mean']:.3f}",
                                clip=f"{rec.get('clip_frac', 0):.4f}")
                if self.step in rl.kept_steps():
                    self.export(self.out / "checkpoints" / f"step{self.step}")
                if rl.checkpoint_every and self.step % rl.checkpoint_every == 0 \
                        and self.step < rl.steps:
                    self._save_state()
        finally:
            bar.close()
            if track is not None:
                track.close()
        self.ledger["wall_s"] += time.time() - t_start
        self.export(self.out / "checkpoint")
        self._save_state()
        engine_info = {"name": self.engine.name, "sync": self.engine.sync_mode,
                       "restarts": getattr(self.engine, "restarts", 0),
                       "tensor_parallel_size": getattr(self.engine, "tp", 1),
                       "sleep": getattr(self.engine, "sleep_mode", False)}
        if main:
            atomic_write_json(self.out / "run.json", {
                "stage": "rl", "algorithm": self.algo_name,
                "algorithm_config": self.cfg.to_dict()["rl"]["algorithms"][self.algo_name],
                "init": str(self.init), "seed": self.cfg.seed, "config": self.cfg.to_dict(),
                "identity": self.identity, "device": str(self.device),
                "sandbox": self.isolation,
                "engine": engine_info, "active_params": self.n_active,
                "world_size": self.dist.world,
                "versions": {"torch": torch.__version__,
                             "transformers": transformers.__version__,
                             "python": platform.python_version()},
                "ledger": {k: (round(v, 3) if isinstance(v, float) else v)
                           for k, v in sorted(self.ledger.items())},
            })
        self.dist.barrier()
        # last: a colocated vLLM engine tears down the process group it shares with us
        self.engine.close()
        shutil.rmtree(self.workdir / "engine_start", ignore_errors=True)
        self.dist.close()
        return self.out / "checkpoint"


def rl_identity_config(cfg: Config, algo: str) -> dict:
    """What an RL run depends on: its seed, plugins and the rl section with only its own arm
    (another arm's entry changing does not make this run a different one)."""
    full = cfg.to_dict()
    rl = {k: v for k, v in full["rl"].items() if k != "algorithms" and k not in LOGGING_ONLY}
    return {"seed": cfg.seed, "plugins": full["plugins"], "algorithm": algo,
            "algorithm_config": full["rl"]["algorithms"][algo], "rl": rl}


def discard_run(out: Path) -> None:
    """Remove what a run wrote under ``out`` (its artifacts, and each rank's work dir)."""
    # the identity goes last: a discard cut short still reads as a different run
    remove_paths([*(out / n for n in RUN_ARTIFACTS[1:]), *out.glob("rank[0-9]*"),
                  out / IDENTITY])


def run_rl(cfg: Config, algo: str, init: str | Path, out: str | Path,
           resume: bool | str = False, progress: bool = True) -> Path:
    """Train ``algo`` from ``init``; write identity.json, checkpoint/, metrics.jsonl,
    queries.jsonl, run.json. ``resume``: False (``out`` must hold no run), True (continue
    the run in ``out``, which must be this one) or "restart" (continue it if it is this run,
    else discard it and start afresh)."""
    return RLRun(cfg, algo, init, out, resume=resume, progress=progress).run()
