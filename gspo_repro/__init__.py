"""gspo-repro: a reproduction harness for Group Sequence Policy Optimization."""

__version__ = "0.1.0"
