"""Routing replay on a tiny random Qwen3-MoE (transformers' own class)."""

import pytest
import torch
from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeExperts

from gspo_repro.models import build_tiny_model, tiny_config
from gspo_repro.routing_replay import ReplayMode, RoutingReplay


@pytest.fixture
def model():
    m = build_tiny_model(seed=0)
    m.eval()
    return m


@pytest.fixture
def inputs():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 64, (3, 12), generator=g)
    attn = torch.ones_like(ids)
    attn[2, :4] = 0  # left padding on one row
    return ids, attn


def experts_seen(model):
    """Capture the top-k indices each experts module receives, per layer, per call."""
    seen, handles = [], []
    for i, mod in enumerate(m for m in model.modules() if isinstance(m, Qwen3MoeExperts)):
        seen.append([])
        handles.append(mod.register_forward_pre_hook(
            lambda _m, args, i=i: seen[i].append(args[1].clone())))
    return seen, handles


def perturb_routers(rr, scale=1.0, seed=2):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for router, _ in rr.routers:
            router.weight.add_(scale * torch.randn(router.weight.shape, generator=g))


def test_finds_every_router(model):
    rr = RoutingReplay(model)
    assert rr.num_layers == model.config.num_hidden_layers
    assert rr.mode is ReplayMode.OFF


def test_replay_with_unchanged_weights_reproduces_logits(model, inputs):
    ids, attn = inputs
    rr = RoutingReplay(model)
    with torch.no_grad():
        with rr.record():
            recorded = model(ids, attention_mask=attn).logits
        with rr.replay():
            replayed = model(ids, attention_mask=attn).logits
    assert torch.equal(replayed, recorded)
    assert rr.stats()["changed"] == 0 and rr.stats()["total"] == 3 * 12 * rr.num_layers


def test_replay_forces_recorded_experts_after_router_change(model, inputs):
    ids, attn = inputs
    rr = RoutingReplay(model)
    seen, handles = experts_seen(model)
    with torch.no_grad():
        with rr.record():
            model(ids, attention_mask=attn)
        recorded = [calls[0] for calls in seen]
        perturb_routers(rr)
        for calls in seen:
            calls.clear()
        with rr.replay():
            model(ids, attention_mask=attn)
        replayed = [calls[0] for calls in seen]
        for calls in seen:
            calls.clear()
        model(ids, attention_mask=attn)  # free routing, mode OFF
        free = [calls[0] for calls in seen]
    for h in handles:
        h.remove()
    for layer in range(rr.num_layers):
        assert torch.equal(replayed[layer], recorded[layer]), f"layer {layer}"
    assert any(not torch.equal(f, r) for f, r in zip(free, recorded, strict=True))
    stats = rr.stats()
    assert 0 < stats["changed"] <= stats["total"]
    assert 0 < stats["volatility"] <= 1 and len(stats["per_layer"]) == rr.num_layers


def test_router_gets_gradient_under_replay(model, inputs):
    ids, attn = inputs
    rr = RoutingReplay(model)
    with torch.no_grad(), rr.record():
        model(ids, attention_mask=attn)
    perturb_routers(rr, scale=0.1)
    model.zero_grad()
    with rr.replay():
        out = model(ids, attention_mask=attn, labels=ids)
    out.loss.backward()
    for layer, (router, _) in enumerate(rr.routers):
        assert router.weight.grad is not None, f"layer {layer}"
        assert router.weight.grad.abs().sum() > 0, f"layer {layer}"


def test_compare_counts_only_masked_tokens(model, inputs):
    ids, attn = inputs
    rr = RoutingReplay(model)
    with torch.no_grad():
        with rr.record():
            model(ids, attention_mask=attn)
        perturb_routers(rr)
        rr.reset_stats()
        with rr.compare(token_mask=attn):
            model(ids, attention_mask=attn)
    stats = rr.stats()
    assert stats["total"] == int(attn.sum()) * rr.num_layers
    assert stats["changed"] > 0


def test_records_are_keyed_and_ordered(model, inputs):
    ids, attn = inputs
    rr = RoutingReplay(model)
    with torch.no_grad():
        with rr.record("mb0"):
            a = model(ids[:2], attention_mask=attn[:2]).logits
            b = model(ids[2:], attention_mask=attn[2:]).logits
        with rr.replay("mb0"):
            a2 = model(ids[:2], attention_mask=attn[:2]).logits
            b2 = model(ids[2:], attention_mask=attn[2:]).logits
    assert torch.equal(a, a2) and torch.equal(b, b2)


def test_errors_are_clear(model, inputs):
    ids, attn = inputs
    rr = RoutingReplay(model)
    with pytest.raises(KeyError, match="nothing was recorded"):
        with rr.replay("never"):
            pass
    with torch.no_grad():
        with rr.record():
            model(ids, attention_mask=attn)
        shapes = r"layer 0 call 0 routes \(24, 2\).*recorded \(36, 2\)"
        with pytest.raises(ValueError, match=shapes):
            with rr.replay():
                model(ids[:2], attention_mask=attn[:2])
        with pytest.raises(RuntimeError, match="not fully consumed"):
            with rr.replay():
                pass
        with pytest.raises(RuntimeError, match="called 2 times, only 1 recorded"):
            with rr.replay():
                model(ids, attention_mask=attn)
                model(ids, attention_mask=attn)
        with pytest.raises(RuntimeError, match="already in mode"):
            with rr.record(), rr.record():
                pass
    assert rr.mode is ReplayMode.OFF


def test_layers_out_of_line_are_refused(inputs):
    ids, attn = inputs
    deep = build_tiny_model(tiny_config(num_hidden_layers=4), seed=0)
    rr = RoutingReplay(deep)
    with torch.no_grad(), rr.record():
        deep(ids, attention_mask=attn)
    # Drop one layer's record: a replay must notice the layers no longer line up.
    rr._records[None][3].calls.clear()
    with pytest.raises(RuntimeError, match="layer 3 called 1 times, only 0 recorded"):
        with torch.no_grad(), rr.replay():
            deep(ids, attention_mask=attn)


def test_model_without_router_is_refused():
    with pytest.raises(ValueError, match="no router"):
        RoutingReplay(torch.nn.Linear(2, 2))


def test_offload_keeps_records_on_cpu(model, inputs):
    ids, attn = inputs
    rr = RoutingReplay(model, offload=True)
    with torch.no_grad(), rr.record():
        model(ids, attention_mask=attn)
    rec = rr._records[None][0].calls[0]
    assert rec.device.type == "cpu" and rec.dtype == torch.uint8
    rr.remove()
    with torch.no_grad():
        model(ids, attention_mask=attn)  # hooks gone: nothing recorded, nothing raised


def test_grouped_experts_match_the_per_expert_loop(model, inputs):
    """The factory picks transformers' grouped-GEMM experts for speed; the numbers must be
    those of the reference per-expert loop, forward and backward."""
    ids, attn = inputs
    assert model.config._experts_implementation == "grouped_mm"
    grads = []
    for impl in ("grouped_mm", "eager"):
        model.config._experts_implementation = impl
        model.zero_grad()
        logits = model(ids, attention_mask=attn).logits
        logits.square().mean().backward()
        grads.append((logits.detach(), model.model.layers[0].mlp.experts.gate_up_proj.grad))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-5)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-6)
