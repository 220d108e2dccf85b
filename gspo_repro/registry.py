"""Named registries of functions (objectives, aggregations, advantage estimators, rollout
filters, reward shaping): one way to add an entry and one error for an unknown name."""

from __future__ import annotations

from collections.abc import Callable


class Registry(dict):
    """``name -> function``; a name can be taken only once."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable:
        """A decorator adding its function under ``name``."""

        def deco(fn):
            if name in self:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self[name] = fn
            return fn

        return deco

    def lookup(self, name: str):
        """The function ``name``, or a ValueError naming the kind and the known names."""
        try:
            return self[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; known: "
                             f"{', '.join(sorted(self))}") from None
