"""Live training curves where researchers look for them: TensorBoard event files beside
``metrics.jsonl`` (``tb/`` in the run directory) and, when asked, Weights & Biases (offline
mode works without a network; ``wandb sync`` uploads later). metrics.jsonl stays the record
the analysis reads; these are views of the same numbers."""

from __future__ import annotations

import math
from pathlib import Path


class Tracker:
    """Scalars of one run, step by step, to TensorBoard and/or W&B (each optional)."""

    def __init__(self, out: str | Path, name: str, config: dict, tensorboard: bool = True,
                 wandb: str = "", resume_step: int = 0):
        self.tb = self.wb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # a resumed run rewrites the batches after its checkpoint: drop their old events
            self.tb = SummaryWriter(str(Path(out) / "tb"), purge_step=resume_step or None)
        if wandb:
            try:
                import wandb as wb
            except ImportError:
                raise ValueError(f"wandb {wandb!r} needs the wandb package (pip install "
                                 f"wandb), or set it to \"\"") from None
            self.wb = wb.init(project="gspo-repro", name=name, config=config, mode=wandb,
                              dir=str(out), resume="allow")

    def log(self, step: int, record: dict) -> None:
        """The finite numbers of ``record`` at ``step``."""
        scalars = {k: float(v) for k, v in record.items()
                   if isinstance(v, int | float) and not isinstance(v, bool)
                   and math.isfinite(v)}
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(k, v, step)
            self.tb.flush()
        if self.wb is not None:
            self.wb.log(scalars, step=step)

    def close(self) -> None:
        """Flush and close what is open."""
        if self.tb is not None:
            self.tb.close()
        if self.wb is not None:
            self.wb.finish()
