"""The regime study: where GRPO's token-level ratios break on the MoE, and which fix restores
training (the workflow's ``study`` target).

A study file (``config.study``, default config/study.yaml) names **profiles** (a model and its
SFT: overrides of the ``model`` and ``sft`` sections, each trained once) and **cells** (a
profile, overrides of the ``rl`` section, fields set on every arm's algorithm, and the arms
to compare). Every cell runs every arm with every seed of the study, all from its profile's
SFT checkpoint, and is judged on training reward against ``grpo`` in the same cell (see
gspo_repro.analysis.study). A cell is the workflow's own config with its overrides: what
the study does not change is what ``make repro`` runs.

    seeds: [0, 1, 2]
    profiles:
      fine: {model.num_experts: 64, model.num_experts_per_tok: 4, ...}
    cells:
      - {name: on_policy, arms: [grpo, gspo], set: {rl.minibatches: 1},
         question: "..."}
      - {name: engine, arms: [grpo, gspo], algo_set: {old_logprobs: engine}}

A cell with the ``default`` profile and no overrides is the workflow's own run: its arms
that the workflow also trains (same seeds) reuse those runs instead of training them again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gspo_repro.config import Config, _merge, config_from_dict

DEFAULT_PROFILE = "default"
"""The workflow's own model and SFT (``{run_dir}/sft``)."""
BASELINE = "grpo"
"""The arm every other arm of a cell is compared with; every cell must run it."""
PROFILE_SECTIONS = ("model", "sft")
CELL_SECTIONS = ("rl",)


@dataclass(frozen=True)
class Cell:
    """One point of the regime map."""

    name: str
    arms: tuple[str, ...]
    profile: str = DEFAULT_PROFILE
    set: dict = field(default_factory=dict)
    """Dotted overrides of the ``rl`` section, e.g. {"rl.minibatches": 16}."""
    algo_set: dict = field(default_factory=dict)
    """Fields set on every arm's algorithm, e.g. {"old_logprobs": "engine"}."""
    question: str = ""
    """What the cell asks, printed beside its row."""


@dataclass(frozen=True)
class Study:
    """The study file, checked."""

    seeds: tuple[int, ...]
    cells: tuple[Cell, ...]
    profiles: dict = field(default_factory=dict)
    """Profile name -> dotted overrides of ``model`` and ``sft``."""
    results_dir: str = "results/study"
    source: str = ""
    only: tuple[str, ...] = ()
    """Set by :func:`select`: the cells kept from the file's (empty: all of them)."""


def _check_keys(where: str, overrides, sections: tuple[str, ...]) -> dict:
    if not isinstance(overrides, dict):
        raise ValueError(f"{where} must be a mapping of dotted keys, got {overrides!r}")
    for key in overrides:
        if not isinstance(key, str) or key.split(".")[0] not in sections or "." not in key:
            raise ValueError(f"{where}: key {key!r} must start with "
                             f"{' or '.join(s + '.' for s in sections)}")
    return dict(overrides)


def study_from_dict(data: dict, base: Config, source: str = "study") -> Study:
    """A Study from a parsed study file, every cell's config built (and so checked) against
    ``base``; a ValueError naming the file and the field otherwise."""
    try:
        study = _study(data, source, f"{base.results_dir}/study")
        for cell in study.cells:
            cell_config(base, study, cell)
        return study
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None


def _study(data, source: str, results_dir: str) -> Study:
    if not isinstance(data, dict):
        raise ValueError(f"must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - {"seeds", "cells", "profiles", "results_dir"})
    if unknown:
        raise ValueError(f"unknown key {unknown[0]}; known: seeds, cells, profiles, results_dir")
    seeds = data.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a list of distinct integers, got {seeds!r}")
    profiles = data.get("profiles") or {}
    if not isinstance(profiles, dict):
        raise ValueError(f"profiles must be a mapping, got {profiles!r}")
    profiles = {str(k): _check_keys(f"profiles.{k}", v, PROFILE_SECTIONS)
                for k, v in profiles.items()}
    if DEFAULT_PROFILE in profiles:
        raise ValueError(f"profiles.{DEFAULT_PROFILE} is the workflow's own; name yours "
                         "otherwise")
    cells, names = [], set()
    raw_cells = data.get("cells")
    if not isinstance(raw_cells, list) or not raw_cells:
        raise ValueError("cells must be a non-empty list")
    known = {f.name for f in dataclasses.fields(Cell)}
    for i, raw in enumerate(raw_cells):
        where = f"cells[{i}]"
        if not isinstance(raw, dict):
            raise ValueError(f"{where} must be a mapping, got {raw!r}")
        bad = sorted(set(raw) - known)
        if bad:
            raise ValueError(f"{where}: unknown key {bad[0]}; known: {', '.join(sorted(known))}")
        name = raw.get("name")
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"{where}.name must be letters, digits and _, got {name!r}")
        if name in names:
            raise ValueError(f"{where}.name {name!r} is used twice")
        names.add(name)
        where = f"cells.{name}"
        arms = raw.get("arms")
        if not isinstance(arms, list) or BASELINE not in arms or len(set(arms)) != len(arms):
            raise ValueError(f"{where}.arms must list distinct arms including {BASELINE!r} "
                             f"(the baseline of every comparison), got {arms!r}")
        profile = raw.get("profile", DEFAULT_PROFILE)
        if profile != DEFAULT_PROFILE and profile not in profiles:
            raise ValueError(f"{where}.profile {profile!r} is not in profiles (known: "
                             f"{', '.join([DEFAULT_PROFILE, *profiles])})")
        algo_set = raw.get("algo_set") or {}
        if not isinstance(algo_set, dict):
            raise ValueError(f"{where}.algo_set must be a mapping, got {algo_set!r}")
        cells.append(Cell(name=name, arms=tuple(arms), profile=profile,
                          set=_check_keys(f"{where}.set", raw.get("set") or {}, CELL_SECTIONS),
                          algo_set=dict(algo_set), question=str(raw.get("question", ""))))
    return Study(seeds=tuple(seeds), cells=tuple(cells), profiles=profiles,
                 results_dir=str(data.get("results_dir", results_dir)), source=source)


def select(study: Study, names) -> Study:
    """``study`` with only the cells ``names`` (a part of the study, run or analysed alone);
    a ValueError naming the first unknown cell."""
    cells, names = {c.name: c for c in study.cells}, tuple(dict.fromkeys(names))
    for name in names:
        if name not in cells:
            raise ValueError(f"{study.source}: no cell named {name!r}; cells: "
                             f"{', '.join(cells)}")
    return dataclasses.replace(study, cells=tuple(cells[n] for n in names), only=names)


def load_study(path: str | Path, base: Config) -> Study:
    """The study file at ``path``, checked against the workflow config ``base``."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"study file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"study file {path} is not valid YAML: {e}") from None
    return study_from_dict(data, base, str(path))


def _apply(data: dict, overrides: dict) -> dict:
    for key, value in overrides.items():
        data = _merge(data, key.split("."), value)
    return data


def study_root(base: Config) -> str:
    """Where the study's runs go, inside the workflow's run directory."""
    return f"{base.run_dir}/study"


def profile_config(base: Config, study: Study, profile: str) -> Config:
    """The workflow config with ``profile``'s model and SFT overrides."""
    return config_from_dict(_apply(base.to_dict(), study.profiles.get(profile, {})),
                            f"profiles.{profile}")


def cell_config(base: Config, study: Study, cell: Cell) -> Config:
    """The config cell ``cell`` trains with: its profile, its ``rl`` overrides, its
    ``algo_set`` on every arm, its arms and the study's seeds."""
    data = _apply(profile_config(base, study, cell.profile).to_dict(), cell.set)
    algos = data["rl"]["algorithms"]
    for arm in cell.arms:
        if arm not in algos:
            raise ValueError(f"cells.{cell.name}.arms: unknown algorithm {arm!r}")
        unknown = sorted(set(cell.algo_set) - set(algos[arm]))
        if unknown:
            raise ValueError(f"cells.{cell.name}.algo_set: unknown algorithm field "
                             f"{unknown[0]!r}")
        algos[arm] = {**algos[arm], **cell.algo_set}
    data.update(arms=list(cell.arms), seeds=list(study.seeds),
                run_dir=f"{study_root(base)}/cells/{cell.name}")
    return config_from_dict(data, f"cells.{cell.name}")


def reuses_workflow(base: Config, study: Study, cell: Cell, arm: str) -> bool:
    """Whether ``arm`` of ``cell`` is a run the workflow trains anyway (same profile, config
    and seeds): then the study reads that run instead of training its own."""
    return (cell.profile == DEFAULT_PROFILE and not cell.set and not cell.algo_set
            and arm in base.arms and set(study.seeds) <= set(base.seeds))


def sft_dir(base: Config, profile: str) -> str:
    """The SFT run directory of ``profile``."""
    if profile == DEFAULT_PROFILE:
        return f"{base.run_dir}/sft"
    return f"{study_root(base)}/profiles/{profile}"


def run_dir(base: Config, study: Study, cell: Cell, arm: str, seed: int) -> str:
    """The RL run directory of (cell, arm, seed)."""
    if reuses_workflow(base, study, cell, arm):
        return f"{base.run_dir}/rl/{arm}/seed{seed}"
    return f"{study_root(base)}/cells/{cell.name}/rl/{arm}/seed{seed}"


def runs(study: Study) -> list[tuple[Cell, str, int]]:
    """Every (cell, arm, seed) of the study, in file order."""
    return [(c, a, s) for c in study.cells for a in c.arms for s in study.seeds]
