"""Task records shared by synthetic families and real benchmarks."""

from gspo_repro.tasks.base import Task
from gspo_repro.tasks.synthetic import FAMILIES, make_split

__all__ = ["FAMILIES", "Task", "make_split"]
