"""The one record type every task source produces."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Task:
    """One verifiable problem.

    Fields:
        id: unique and stable across runs (family + content hash for synthetic tasks).
        family: ``math`` (integer answer), ``code`` or ``rated`` (program checked by tests).
        prompt: the text the model continues.
        reference: the answer for math (as a string), a reference program for code.
        difficulty: steps for synthetic math/code, a CodeForces-scale rating for ``rated``.
        tests: stdin/stdout pairs ``{"input", "output"}`` (code families; empty for math).
        solution: a worked response in the trained format (cold-start SFT target); may be empty.
        meta: anything source-specific (benchmark name, date, starter code...).
    """

    id: str
    family: str
    prompt: str
    reference: str
    difficulty: float
    tests: tuple[dict, ...] = ()
    solution: str = ""
    meta: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """A JSON-ready dict (tests as a list)."""
        d = asdict(self)
        d["tests"] = list(self.tests)
        return d

    @classmethod
    def from_json(cls, d: dict) -> Task:
        """Inverse of ``to_json``."""
        return cls(**{**d, "tests": tuple(d.get("tests", ()))})
