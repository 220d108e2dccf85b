"""What a run is: the hash of its resolved stage config, of the checkpoint it starts from and
of the code that trains it. A run directory records its identity in ``identity.json`` before
it trains; a resume continues only a run of the same identity, so no published number comes
from state trained under one config and finished under another.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
from pathlib import Path

from gspo_repro.io import atomic_write_json, read_json

IDENTITY = "identity.json"
_PACKAGE = Path(__file__).resolve().parents[1]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _files_sha(files: list[tuple[str, Path]]) -> str:
    """One hash over (name, content) pairs, in name order."""
    h = hashlib.sha256()
    for name, path in sorted(files):
        h.update(name.encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()[:16]


def content_hash(path: str | Path) -> str:
    """The hash of a checkpoint's files (names and bytes); a hub id, which cannot be read
    offline, is named instead (``hub:<id>``)."""
    p = Path(path)
    if not p.exists():
        return f"hub:{path}"
    if p.is_file():
        return _files_sha([(p.name, p)])
    return _files_sha([(str(f.relative_to(p)), f) for f in p.rglob("*")
                       if f.is_file() and not any(part.startswith(".") for part in
                                                  f.relative_to(p).parts)])


def code_version(plugins: tuple[str, ...] = ()) -> dict:
    """The package's source hash (and the plugin modules'), with the git commit where the
    package sits in a checkout; only the hashes decide whether two runs' code is the same."""
    files = [(str(f.relative_to(_PACKAGE)), f) for f in _PACKAGE.rglob("*.py")]
    for name in plugins:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin and Path(spec.origin).is_file():
            files.append((f"plugin:{name}", Path(spec.origin)))
    try:
        commit = subprocess.run(["git", "-C", str(_PACKAGE), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"source_sha": _files_sha(files), "git_commit": commit or None}


def make_identity(stage: str, config: dict, init: str | Path | None,
                  plugins: tuple[str, ...] = ()) -> dict:
    """The identity of a ``stage`` run with resolved ``config`` (the sections it depends
    on), started from ``init`` (None: random init)."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return {"stage": stage, "config_sha": _sha(blob), "config": config,
            "init": None if init is None else str(init),
            "init_sha": None if init is None else content_hash(init),
            "code": code_version(plugins)}


def _flat(d, prefix: str = "") -> dict:
    if not isinstance(d, dict):
        return {prefix: d}
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def differences(saved: dict, now: dict) -> list[str]:
    """What differs between two identities, one short phrase each (empty: the same run)."""
    out = []
    a, b = _flat(saved.get("config", {})), _flat(now.get("config", {}))
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<unset>") != b.get(key, "<unset>"):
            out.append(f"{key} {a.get(key, '<unset>')!r} -> {b.get(key, '<unset>')!r}")
    if saved.get("config_sha") != now.get("config_sha") and not out:
        out.append("config hash")
    if saved.get("init_sha") != now.get("init_sha"):
        out.append(f"init checkpoint content {saved.get('init_sha')} -> {now.get('init_sha')}")
    if saved.get("code", {}).get("source_sha") != now.get("code", {}).get("source_sha"):
        out.append(f"code version {saved.get('code', {}).get('source_sha')} -> "
                   f"{now['code']['source_sha']}")
    return out


def saved_identity(run_dir: str | Path) -> dict | None:
    """The identity a run directory recorded, or None where it holds none (no run, or one
    from before identities were recorded)."""
    path = Path(run_dir) / IDENTITY
    return read_json(path, "run identity") if path.is_file() else None


def write_identity(run_dir: str | Path, identity: dict) -> None:
    """Record ``identity`` in ``run_dir`` (atomically)."""
    atomic_write_json(Path(run_dir) / IDENTITY, identity)


def mismatch(run_dir: str | Path, identity: dict) -> str | None:
    """Why the run in ``run_dir`` is not ``identity`` (one line), or None when it is."""
    saved = saved_identity(run_dir)
    if saved is None:
        return "it records no identity"
    diffs = differences(saved, identity)
    if not diffs:
        return None
    more = f" and {len(diffs) - 3} more" if len(diffs) > 3 else ""
    return "; ".join(diffs[:3]) + more
