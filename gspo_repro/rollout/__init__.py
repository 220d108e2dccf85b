"""Rollout engines behind one interface."""

from gspo_repro.rollout.hf import Sample, sample

__all__ = ["Sample", "sample"]
