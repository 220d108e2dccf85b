"""Shared bits of the benchmark scripts: the machine description and the JSON output."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def machine() -> dict:
    """What the numbers were measured on."""
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "platform": platform.platform()}


def write(name: str, result: dict) -> Path:
    """results/bench/<name>.json, written atomically."""
    from gspo_repro.io import atomic_write_json

    path = ROOT / "results" / "bench" / f"{name}.json"
    atomic_write_json(path, {**result, "machine": machine()})
    print(f"wrote {path}")
    return path
