"""Routing Replay for top-k MoE routers (GSPO paper, section 5.3).

The paper stabilises GRPO on MoE models by caching the experts each token activated under
pi_old and forcing the same experts when pi_theta's token ratios are computed::

    rr = RoutingReplay(model)
    with rr.record():  model(input_ids, attention_mask=...)  # pi_old: store top-k per layer/token
    with rr.replay():  model(input_ids, attention_mask=...)  # pi_theta: force the stored experts

Replayed gate weights are gathered from the current router's dense probabilities at the
recorded indices (renormalised like the router does), so the router keeps its gradient.
``ReplayMode.COMPARE`` routes freely and only counts how many (token, layer) expert sets
differ from the record: the paper's expert-activation volatility, measured without replay.

A router class is supported through one small ``RouterAdapter``; hooks are plain forward
hooks on the router modules, so the model's own code is not patched.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn


class ReplayMode(enum.Enum):
    """What the router hooks do on a forward pass."""

    OFF = "off"  # route freely, touch nothing
    RECORD = "record"  # route freely, store the chosen experts
    REPLAY = "replay"  # force the stored experts, count how many free routing would change
    COMPARE = "compare"  # route freely, count how many differ from the stored experts


class RouterAdapter:
    """How to read and force the top-k choice of one router class.

    Subclass it for another router: ``matches`` picks the modules, ``indices`` reads the
    chosen experts from the router's output, ``free_indices`` recomputes the free choice and
    ``force`` returns the router output with the given experts imposed.
    """

    def matches(self, module: nn.Module) -> bool:
        raise NotImplementedError

    def indices(self, module: nn.Module, output) -> torch.Tensor:
        raise NotImplementedError

    def free_indices(self, module: nn.Module, output) -> torch.Tensor:
        return self.indices(module, output)

    def force(self, module: nn.Module, output, indices: torch.Tensor):
        raise NotImplementedError


class Qwen3MoeRouterAdapter(RouterAdapter):
    """transformers 5.x ``Qwen3MoeTopKRouter``: (logits [N, E], weights [N, k], idx [N, k])."""

    def matches(self, module):
        from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeTopKRouter

        return isinstance(module, Qwen3MoeTopKRouter)

    def indices(self, module, output):
        return output[2]

    def force(self, module, output, indices):
        logits = output[0]
        probs = torch.softmax(logits, dim=-1, dtype=torch.float)
        weights = probs.gather(-1, indices)
        if module.norm_topk_prob:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        return logits, weights.to(logits.dtype), indices


ADAPTERS: list[RouterAdapter] = [Qwen3MoeRouterAdapter()]


@dataclass
class _LayerRecord:
    calls: list[torch.Tensor] = field(default_factory=list)


@dataclass
class VolatilityCounter:
    """(token, layer) expert sets compared and changed, per layer."""

    changed: list[int | torch.Tensor]
    total: list[int | torch.Tensor]

    def as_dict(self) -> dict:
        changed = [int(c) for c in self.changed]
        total = [int(t) for t in self.total]
        return {
            "changed": sum(changed),
            "total": sum(total),
            "volatility": sum(changed) / sum(total) if sum(total) else 0.0,
            "per_layer": [c / t if t else 0.0 for c, t in zip(changed, total, strict=True)],
        }


class RoutingReplay:
    """Record the top-k experts of every router in ``model`` and replay them later.

    Records are kept per key (default ``None``), one entry per router call in call order,
    so several forward passes (micro-batches) can be recorded under one key and replayed in
    the same order. A replay or compare context must consume every call recorded under its
    key, once each; anything else raises on exit. ``offload`` keeps records on the CPU.
    """

    def __init__(self, model: nn.Module, adapters: list[RouterAdapter] | None = None,
                 offload: bool = False):
        adapters = ADAPTERS if adapters is None else adapters
        self.routers: list[tuple[nn.Module, RouterAdapter]] = []
        for module in model.modules():
            adapter = next((a for a in adapters if a.matches(module)), None)
            if adapter is not None:
                self.routers.append((module, adapter))
        if not self.routers:
            raise ValueError(
                f"{type(model).__name__} has no router that an adapter supports "
                f"(adapters: {', '.join(type(a).__name__ for a in adapters)})"
            )
        self.offload = offload
        self.mode = ReplayMode.OFF
        self._key: Hashable = None
        self._records: dict[Hashable, list[_LayerRecord]] = {}
        self._cursor: list[int] = []
        self._token_mask: torch.Tensor | None = None
        self.reset_stats()
        self._handles = [
            module.register_forward_hook(self._make_hook(i))
            for i, (module, _) in enumerate(self.routers)
        ]

    @property
    def num_layers(self) -> int:
        return len(self.routers)

    def remove(self) -> None:
        """Detach the hooks from the model."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def clear(self, key: Hashable = ...) -> None:
        """Drop the record under ``key``, or every record when no key is given."""
        if key is ...:
            self._records.clear()
        else:
            self._records.pop(key, None)

    def reset_stats(self) -> None:
        """Zero the volatility counters."""
        self._stats = VolatilityCounter([0] * self.num_layers, [0] * self.num_layers)

    def stats(self) -> dict:
        """Expert-set changes counted in REPLAY/COMPARE passes since the last reset.

        ``changed`` / ``total`` count (token, layer) pairs whose free top-k set differs from
        the recorded one (order ignored); ``volatility`` is their ratio; ``per_layer`` the
        same per router. Only tokens under the context's ``token_mask`` are counted.
        """
        return self._stats.as_dict()

    def load(self, key: Hashable, calls: list[list[torch.Tensor]]) -> None:
        """Store routing chosen elsewhere (e.g. by the inference engine, for R3) under ``key``:
        ``calls[layer]`` holds that layer's [tokens, top-k] expert ids, one per forward pass,
        as ``record`` would have stored them."""
        if len(calls) != self.num_layers:
            raise ValueError(f"routing replay: {len(calls)} layers given, the model routes "
                             f"{self.num_layers}")
        self._records[key] = [
            _LayerRecord([self._store(c, module) for c in layer_calls])
            for layer_calls, (module, _) in zip(calls, self.routers, strict=True)]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._records

    def recorded(self, key: Hashable = None) -> list[list[torch.Tensor]]:
        """The expert ids stored under ``key``: per layer, per forward pass [tokens, top-k]."""
        return [list(rec.calls) for rec in self._records[key]]

    @contextlib.contextmanager
    def record(self, key: Hashable = None) -> Iterator[RoutingReplay]:
        """Route freely and store every router's choice under ``key`` (replacing it)."""
        self._records[key] = [_LayerRecord() for _ in self.routers]
        with self._mode(ReplayMode.RECORD, key, None):
            yield self

    @contextlib.contextmanager
    def replay(self, key: Hashable = None, token_mask: torch.Tensor | None = None):
        """Force the experts recorded under ``key``; count what free routing would change."""
        with self._consuming(ReplayMode.REPLAY, key, token_mask):
            yield self

    @contextlib.contextmanager
    def compare(self, key: Hashable = None, token_mask: torch.Tensor | None = None):
        """Route freely; count (token, layer) sets that differ from the record under ``key``."""
        with self._consuming(ReplayMode.COMPARE, key, token_mask):
            yield self

    @contextlib.contextmanager
    def _consuming(self, mode: ReplayMode, key: Hashable, token_mask):
        if key not in self._records:
            raise KeyError(f"routing replay: nothing was recorded under key {key!r}")
        self._cursor = [0] * self.num_layers
        with self._mode(mode, key, token_mask):
            yield self
            left = [
                f"layer {i}: {len(rec.calls) - c} of {len(rec.calls)} recorded calls"
                for i, (rec, c) in enumerate(zip(self._records[key], self._cursor, strict=True))
                if c != len(rec.calls)
            ]
            if left:
                raise RuntimeError(f"routing {mode.value}: record {key!r} not fully consumed: "
                                   + "; ".join(left))

    @contextlib.contextmanager
    def _mode(self, mode: ReplayMode, key: Hashable, token_mask):
        if self.mode is not ReplayMode.OFF:
            raise RuntimeError(f"routing replay: already in mode {self.mode.value}")
        self.mode, self._key = mode, key
        self._token_mask = None if token_mask is None else token_mask.reshape(-1).bool()
        try:
            yield
        finally:
            self.mode, self._key, self._token_mask = ReplayMode.OFF, None, None

    def _make_hook(self, layer: int):
        def hook(module, args, output):
            if self.mode is ReplayMode.OFF:
                return None
            adapter = self.routers[layer][1]
            rec = self._records[self._key][layer]
            if self.mode is ReplayMode.RECORD:
                rec.calls.append(self._store(adapter.indices(module, output), module))
                return None
            cursor = self._cursor[layer]
            if cursor >= len(rec.calls):
                raise RuntimeError(
                    f"routing {self.mode.value}: layer {layer} called {cursor + 1} times, "
                    f"only {len(rec.calls)} recorded under key {self._key!r}"
                )
            free = adapter.free_indices(module, output)
            recorded = rec.calls[cursor].to(device=free.device, dtype=torch.long)
            if recorded.shape != free.shape:
                raise ValueError(
                    f"routing {self.mode.value}: layer {layer} call {cursor} routes "
                    f"{tuple(free.shape)} (tokens, top-k), recorded {tuple(recorded.shape)}"
                )
            self._cursor[layer] = cursor + 1
            self._count(layer, free, recorded)
            if self.mode is ReplayMode.REPLAY:
                return adapter.force(module, output, recorded)
            return None

        return hook

    def _store(self, idx: torch.Tensor, module: nn.Module) -> torch.Tensor:
        # Expert ids fit a byte for up to 256 experts (Qwen3-30B-A3B has 128): 8x less memory.
        small = torch.uint8 if getattr(module, "num_experts", 1 << 16) <= 256 else torch.int32
        out = idx.detach().to(small)
        return out.to("cpu") if self.offload else out

    def _count(self, layer: int, free: torch.Tensor, recorded: torch.Tensor) -> None:
        changed = (free.sort(-1).values != recorded.sort(-1).values).any(-1)
        if self._token_mask is not None:
            if self._token_mask.numel() != changed.numel():
                raise ValueError(
                    f"routing {self.mode.value}: token_mask has {self._token_mask.numel()} "
                    f"tokens, layer {layer} routed {changed.numel()}"
                )
            mask = self._token_mask.to(changed.device)
            changed = changed & mask
            n = mask.sum()
        else:
            n = changed.numel()
        # Tensors, not ints: no device sync per router call; stats() converts once.
        self._stats.changed[layer] = self._stats.changed[layer] + changed.sum()
        self._stats.total[layer] = self._stats.total[layer] + n
