import json

import pytest

from gspo_repro.cli import main


def test_probe_reports_volatility_and_clip_fractions(capsys):
    assert main(["probe", "--seed", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"expert_volatility", "grpo_clip_frac", "gspo_clip_frac",
                        "gspo_token_clip_frac", "grpo_routing_replay_clip_frac"}
    assert all(0.0 <= v <= 1.0 for v in out.values())
    # with sequence-constant advantages GSPO-token clips exactly what GSPO clips
    assert out["gspo_token_clip_frac"] == out["gspo_clip_frac"]


def test_unknown_verb_fails():
    with pytest.raises(SystemExit):
        main(["no-such-verb"])


def test_gpu_smoke_script_refuses_a_machine_without_a_gpu():
    """scripts/gpu_smoke.sh needs CUDA; without it, one line says so and it exits non-zero
    before training anything."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: run scripts/gpu_smoke.sh itself")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(["bash", str(root / "scripts" / "gpu_smoke.sh")], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "PY": sys.executable,
                               "GPU_SMOKE_OUT": "/nonexistent/gpu_smoke"})
    assert proc.returncode != 0
    assert "gpu_smoke: torch sees no CUDA device" in proc.stderr


def test_the_manifest_records_the_cpu_and_its_instruction_sets(tmp_path):
    """Results may move with the CPU's kernels: the manifest says which CPU made them."""
    from gspo_repro.manifest import ISA_FLAGS, machine, write_manifest

    m = machine()
    assert m["cpu_model"] and set(m["isa"]) <= set(ISA_FLAGS) and m["cpus"] >= 1
    flags = open("/proc/cpuinfo").read()
    assert ("avx2" in m["isa"]) == (" avx2" in flags)
    (tmp_path / "a.txt").write_text("x")
    written = json.loads(write_manifest(tmp_path, {"seeds": [0]}).read_text())
    assert written["machine"]["isa"] == m["isa"]


def test_atomic_writes_get_a_plain_files_mode_and_keep_the_old_file_on_failure(tmp_path):
    """Results are shared (a cluster's project space, a laptop's other users): mkstemp's
    0600 (and mkdtemp's 0700, for checkpoints) would hide them from everyone else."""
    import os

    from gspo_repro.io import atomic_dir, atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "t.md", "first\n")
        atomic_dir(tmp_path / "ckpt", lambda d: (d / "w").write_text("x"))
    finally:
        os.umask(old)
    assert (tmp_path / "t.md").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "ckpt").stat().st_mode & 0o777 == 0o755
    (tmp_path / "ckpt" / "w").unlink()
    (tmp_path / "ckpt").rmdir()
    with pytest.raises(TypeError):
        atomic_write_text(tmp_path / "t.md", None)  # fails mid-write
    assert (tmp_path / "t.md").read_text() == "first\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.md"]  # no temporary left behind
