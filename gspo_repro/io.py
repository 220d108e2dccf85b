"""Atomic file output (a reader sees the old file or the new one, never half of either), and
JSON input that fails with one line naming the file."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def _plain_mode(mode: int) -> int:
    """``mode`` less the process's umask: what ``open`` (0666) or ``mkdir`` (0777) would
    give, where tempfile's mkstemp and mkdtemp give 0600 and 0700 (hidden from the other
    users of a shared project space)."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory; the file
    gets a plain ``open``'s mode (:func:`_plain_mode`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, _plain_mode(0o666))
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: str | Path, what: str = "file"):
    """The parsed JSON (or, for ``.jsonl``, the list of records) in ``path``; a ValueError
    naming ``what`` and the file when it cannot be read or parsed."""
    path = Path(path)
    try:
        text = path.read_text()
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return json.loads(text)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read {what}: {e}") from None


def atomic_write_json(path: str | Path, obj) -> None:
    """``atomic_write_text`` of ``obj`` as indented JSON."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_write_yaml(path: str | Path, obj) -> None:
    """``atomic_write_text`` of ``obj`` as YAML, keys in their order (a stage's config)."""
    import yaml

    atomic_write_text(path, yaml.safe_dump(obj, sort_keys=False))


def atomic_dir(path: str | Path, fill: Callable[[Path], None]) -> None:
    """Build a directory with ``fill(tmp_dir)`` next to ``path``, then swap it in; the
    directory gets a plain ``mkdir``'s mode (:func:`_plain_mode`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        tmp.chmod(_plain_mode(0o777))
        fill(tmp)
        old = path.with_name(f".{path.name}.old")
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_paths(paths) -> None:
    """Remove each of ``paths`` that exists (a directory with everything in it), in order."""
    for path in map(Path, paths):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


class MetricsLog:
    """Append-only ``metrics.jsonl``: one JSON object per line, flushed per record."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    def truncate(self, n: int) -> None:
        """Keep the first ``n`` records (rewritten atomically): drop what a killed run wrote
        after its last checkpoint."""
        kept = "".join(line + "\n" for line in self._lines()[:n])
        atomic_write_text(self.path, kept)

    def _lines(self) -> list[str]:
        if not self.path.exists():
            return []
        return [line for line in self.path.read_text().splitlines() if line.strip()]

    def read(self) -> list[dict]:
        return [json.loads(line) for line in self._lines()]
