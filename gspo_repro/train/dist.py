"""Data parallelism for the RL trainer: torch.distributed under torchrun, FSDP2, DCP.

One process (no torchrun) is the degenerate case: every collective here is then a no-op, so
the trainer has one code path. Under ``torchrun --nproc_per_node N`` each rank holds a shard of
the policy (``fully_shard`` per decoder layer, then the root; bf16 compute with fp32 master
weights and reductions on GPUs, fp32 on CPU), generates its share of the rollout, and trains
on it; gradients are averaged across ranks by FSDP's reduce-scatter. Trainer state is saved
and resumed with torch.distributed.checkpoint (DCP), one shard file per rank.
"""

from __future__ import annotations

import contextlib
import os

import torch
import torch.distributed as dist

AUTOCAST_DTYPES = ("", "bfloat16", "float16")


def train_device() -> torch.device:
    """The one place the training device is decided: this rank's GPU (``LOCAL_RANK``) where
    CUDA is available, else the CPU. SFT, the RL trainer and its batches all go there."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def autocast(device: torch.device, dtype: str):
    """Mixed-precision forward passes where the config asks for them (``dtype`` of
    AUTOCAST_DTYPES) and the device is a GPU; a no-op elsewhere: the CPU trains in fp32."""
    if not dtype or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=getattr(torch, dtype))


def model_device(model) -> torch.device:
    """Where ``model``'s parameters live (an FSDP2 shard: its local device)."""
    return next(model.parameters()).device


def check_device(model, *tensors: torch.Tensor) -> None:
    """Fail fast, naming both devices, when an input is not where the model is: on a GPU a
    batch left on the CPU would otherwise fail deep inside the forward, or silently copy."""
    want = model_device(model)
    for t in tensors:
        if t.device != want:
            raise RuntimeError(f"input on {t.device} but the model is on {want}: every tensor "
                               f"the trainer makes must be placed on train_device()")


class Dist:
    """Rank, world size and the few collectives the trainer needs."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.cuda = torch.cuda.is_available()
        self.device = train_device()
        if self.cuda:
            torch.cuda.set_device(self.device)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.cuda else "gloo")

    @property
    def on(self) -> bool:
        """Whether more than one rank trains."""
        return self.world > 1

    @property
    def main(self) -> bool:
        """Whether this rank writes logs, checkpoints and run.json."""
        return self.rank == 0

    def gather(self, obj) -> list:
        """``obj`` of every rank, in rank order (picklable objects)."""
        if not self.on:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def all_true(self, flag: bool) -> bool:
        """Whether ``flag`` holds on every rank."""
        return all(self.gather(bool(flag)))

    def max_int(self, x: int) -> int:
        """The largest ``x`` over ranks."""
        return max(self.gather(int(x)))

    def tp_group(self, size: int):
        """This rank's group of ``size`` consecutive ranks (a collective: every rank makes
        every group, as torch.distributed requires)."""
        groups = [dist.new_group(list(range(g, g + size))) for g in range(0, self.world, size)]
        return groups[self.rank // size]

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.on:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group."""
        if self.on and dist.is_initialized():
            dist.destroy_process_group()

    def shard(self, model) -> None:
        """FSDP2: shard each decoder layer, then the root (embeddings, norm, head)."""
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        kw = {}
        if self.cuda:
            kw["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16,
                                                   reduce_dtype=torch.float32)
        for layer in model.model.layers:
            fully_shard(layer, **kw)
        fully_shard(model, **kw)

    def full_state_dict(self, model, rank0_cpu: bool = False) -> dict:
        """The unsharded weights (a collective): on every rank, or with ``rank0_cpu`` on
        rank 0 only, in host memory (the others get an empty dict)."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        if not self.on:
            return model.state_dict()
        opts = StateDictOptions(full_state_dict=True, cpu_offload=rank0_cpu)
        return get_model_state_dict(model, options=opts)

    def save_sharded(self, model, opt, path) -> None:
        """Model and optimizer shards to ``path`` through DCP (a collective)."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        msd, osd = get_state_dict(model, opt)
        dcp.save({"model": msd, "opt": osd}, checkpoint_id=str(path))

    def load_sharded(self, model, opt, path) -> None:
        """Inverse of ``save_sharded``: each rank reads its shards back."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        msd, osd = get_state_dict(model, opt)
        state = {"model": msd, "opt": osd}
        dcp.load(state, checkpoint_id=str(path))
        set_state_dict(model, opt, model_state_dict=state["model"],
                       optim_state_dict=state["opt"])
