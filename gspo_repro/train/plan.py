"""`gspo-repro rl --dry-run`: the resolved plan of an RL run, without loading weights.

The model is built on PyTorch's meta device from its config (the checkpoint's, the hub's,
or for Qwen3-30B-A3B-Base offline the copy of its architecture in ``models/configs``), so
parameter counts are exact and nothing is allocated. Memory is an estimate per training rank
under FSDP2 full sharding with a bf16 compute / fp32 master mixed-precision policy:

    sharded states  = P * (4 fp32 param + 4 fp32 grad + 8 Adam m and v) / world
    gathered layers = 2 decoder layers' parameters in bf16 (the one computing, the one
                      prefetched)
    activations     = T * h * 34 bytes per layer (bf16, the dense-transformer estimate of
                      Korthikanti et al. 2022 with flash attention), T = micro-batch tokens
    logits          = T * vocab * 4 bytes * 2 (fp32 logits and their gradient)

and, for the vLLM engine colocated on the same GPUs (``rl.vllm_tensor_parallel_size`` ranks
per engine), its weights in bf16 over its tensor-parallel ranks. During a rollout the
trainer keeps its sharded weights and Adam states (12 B per parameter / world; gradients are
freed) beside the engine; the engine's share ``rl.vllm_memory`` of the GPU holds its weights
and the KV cache takes the rest of that share. With ``rl.vllm_sleep`` the engine frees its
share while the trainer runs, so the training peak above does not include it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from gspo_repro.config import Config, vllm_memory_share

GIB = 1024 ** 3
KNOWN = Path(__file__).resolve().parents[1] / "models" / "configs"


def model_config(cfg: Config):
    """(HF config, where it came from) of the policy, without weights."""
    from transformers import AutoConfig

    from gspo_repro.models import tiny_config

    name = cfg.model.pretrained
    if not name:
        tiny = {k: v for k, v in cfg.model.__dict__.items() if k != "pretrained"}
        return tiny_config(**tiny), "tiny Qwen3-MoE (config.model)"
    try:
        return AutoConfig.from_pretrained(name), name
    except (OSError, ValueError) as e:
        known = KNOWN / f"{Path(name).name}.json"
        if not known.is_file():
            raise ValueError(f"model.pretrained {name!r}: no config reachable ({e}) and no "
                             f"offline copy in {KNOWN}") from None
        data = {k: v for k, v in json.loads(known.read_text()).items() if not k.startswith("_")}
        return AutoConfig.for_model(data.pop("model_type"), **data), f"{known} (offline copy)"


def count_params(hf_config) -> tuple[int, int, int]:
    """(total, active per token, one decoder layer) parameter counts, on the meta device."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config)
    total = sum(p.numel() for p in model.parameters())
    layer = sum(p.numel() for p in model.model.layers[0].parameters())
    n_exp = getattr(hf_config, "num_experts", 0) or 0
    active = total
    if n_exp:
        experts = [m for n, m in model.model.layers[0].named_modules() if n.endswith("experts")]
        per_expert = sum(p.numel() for p in experts[0].parameters()) // n_exp
        idle = n_exp - hf_config.num_experts_per_tok
        active = total - idle * per_expert * hf_config.num_hidden_layers
    return total, active, layer


def rl_plan(cfg: Config, algo: str, world_size: int | None = None,
            gpu_mem_gib: float = 80.0) -> dict:
    """The plan of ``gspo-repro rl``: sizes, batches per rank, memory per rank, engine."""
    rl = cfg.rl
    algo_cfg = rl.algorithm(algo)
    hf, source = model_config(cfg)
    total, active, layer = count_params(hf)
    world = world_size or int(os.environ.get("WORLD_SIZE", 0)) or max(1, cfg.resources["rl"].gpu)
    samples = rl.queries * rl.group_size
    if rl.queries % world:
        raise ValueError(f"rl.queries {rl.queries} is not divisible by world size {world}")
    per_rank_mini = samples // world // rl.minibatches
    t, h, v, n_layers = rl.micro_batch_tokens, hf.hidden_size, hf.vocab_size, hf.num_hidden_layers
    mem = {
        "sharded_states": total * 16 / world,
        "gathered_layers_bf16": 2 * layer * 2,
        "activations": t * h * 34 * n_layers,
        "logits": t * v * 4 * 2,
    }
    train_gib = sum(mem.values()) / GIB
    tp = rl.vllm_tensor_parallel_size
    if world % tp:
        raise ValueError(f"rl.vllm_tensor_parallel_size {tp} does not divide world size {world}")
    vllm_weights = total * 2 / tp / GIB
    share = vllm_memory_share(rl.vllm_memory, cuda=True) * gpu_mem_gib
    resident = total * 12 / world / GIB  # trainer weights + Adam, kept during rollouts
    engine_mem = {"engine_share": round(share, 2), "engine_weights": round(vllm_weights, 2),
                  "kv_cache": round(share - vllm_weights, 2),
                  "trainer_resident_during_rollout": round(resident, 2),
                  "rollout_total": round(resident + share, 2),
                  "training_total_with_engine_awake": round(
                      train_gib + (0 if rl.vllm_sleep else share), 2)}
    return {
        "model": source, "algorithm": algo, "objective": algo_cfg.objective,
        "clip": [algo_cfg.eps_low, algo_cfg.eps_high], "routing_replay": algo_cfg.routing_replay,
        "params_total": total, "params_active": active, "params_per_layer": layer,
        "world_size": world, "rollout_batch": {"queries": rl.queries, "group_size": rl.group_size,
                                               "samples": samples},
        "per_rank": {"queries": rl.queries // world, "samples": samples // world,
                     "samples_per_minibatch": per_rank_mini, "minibatches": rl.minibatches,
                     "micro_batch_tokens": t},
        "memory_per_rank_gib": {**{k: round(b / GIB, 2) for k, b in mem.items()},
                                "training_total": round(train_gib, 2),
                                "vllm": engine_mem,
                                "gpu": gpu_mem_gib,
                                "fits": (engine_mem["training_total_with_engine_awake"]
                                         < gpu_mem_gib and engine_mem["kv_cache"] > 0
                                         and engine_mem["rollout_total"] < gpu_mem_gib)},
        "engine": {"name": rl.engine, "sync": "inplace" if world > 1 else rl.vllm_sync,
                   "colocated": world > 1, "tensor_parallel_size": tp,
                   "engines": world // tp, "sleep": rl.vllm_sleep,
                   "memory_share": vllm_memory_share(rl.vllm_memory, cuda=True),
                   "max_new_tokens": rl.max_new_tokens, "temperature": rl.temperature},
        "steps": rl.steps, "updates": rl.steps * rl.minibatches, "lr": rl.lr,
    }
