"""The ``gspo-repro`` command: one verb per workflow stage; logic lives in the package."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _probe(args: argparse.Namespace) -> int:
    from gspo_repro.probe import run_probe

    result = run_probe(seed=args.seed)
    print(json.dumps(result, indent=2))
    return 0


def _overrides(pairs: list[str]) -> dict:
    """``key.sub=value`` pairs from --set, values parsed as YAML scalars."""
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"gspo-repro: --set expects key=value, got {pair!r}")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str):  # YAML 1.1 reads 5e-5 (no dot) as a string
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        out[key] = parsed
    return out


def _config(args: argparse.Namespace):
    from gspo_repro.config import load_config

    try:
        return load_config(args.config, _overrides(args.set))
    except ValueError as e:
        raise SystemExit(f"gspo-repro: {e}") from None


def _sft(args: argparse.Namespace) -> int:
    from gspo_repro.train.sft import run_sft

    try:
        ckpt = run_sft(_config(args), args.out, progress=not args.no_progress,
                       overwrite=args.overwrite)
    except FileExistsError as e:
        raise SystemExit(f"gspo-repro sft: {e}") from None
    print(f"sft: checkpoint at {ckpt}")
    return 0


def _rl(args: argparse.Namespace) -> int:
    from gspo_repro.train.rl import NonFiniteError, run_rl

    cfg = _config(args)
    if args.seed is not None:
        import dataclasses

        cfg = dataclasses.replace(cfg, seed=args.seed)
    if args.dry_run:
        from gspo_repro.train.plan import rl_plan

        try:
            print(json.dumps(rl_plan(cfg, args.algo, args.world_size), indent=2))
        except ValueError as e:
            raise SystemExit(f"gspo-repro rl --dry-run: {e}") from None
        return 0
    if not args.init or not args.out:
        raise SystemExit("gspo-repro rl: --init and --out are required (except with --dry-run)")
    try:
        if args.restart_if_changed and not args.resume:
            raise ValueError("--restart-if-changed goes with --resume")
        resume = "restart" if args.restart_if_changed else args.resume
        ckpt = run_rl(cfg, args.algo, args.init, args.out, resume=resume,
                      progress=not args.no_progress)
    except (ValueError, FileExistsError, NonFiniteError) as e:
        raise SystemExit(f"gspo-repro rl: {e}") from None
    print(f"rl: checkpoint at {ckpt}")
    return 0


def _eval_synthetic(args: argparse.Namespace) -> int:
    from gspo_repro.eval.synthetic import evaluate
    from gspo_repro.io import atomic_write_json
    from gspo_repro.models.checkpoint import load_checkpoint
    from gspo_repro.tasks import make_split

    cfg = _config(args)
    try:
        model, tokenizer = load_checkpoint(args.ckpt)
    except (OSError, ValueError) as e:
        raise SystemExit(f"gspo-repro: cannot load checkpoint {args.ckpt}: {e}") from None
    ev = cfg.eval
    base = None
    if args.baseline:  # read first: a bad path fails before minutes of sampling
        from gspo_repro.io import read_json

        try:
            rep = read_json(args.baseline, "baseline report")
        except ValueError as e:
            raise SystemExit(f"gspo-repro: {e}") from None
        base = rep.get("families") if isinstance(rep, dict) else None
        if not base:
            raise SystemExit(f"gspo-repro: --baseline {args.baseline} is not an "
                             f"eval-synthetic report (no families)")
    engine = None
    if args.engine == "vllm":
        import tempfile

        from gspo_repro.rollout.engines import make_engine

        workdir = tempfile.TemporaryDirectory()  # removed at exit; the engine writes nothing
        engine = make_engine("vllm", model, tokenizer, args.ckpt, workdir.name, rl=cfg.rl)
    report = {}
    for family in args.families:
        tasks = make_split(family, "eval", ev.n_problems, seed=cfg.seed,
                           steps=ev.difficulty_for(family))
        report[family] = evaluate(model, tokenizer, tasks, ev.samples, ev.temperature,
                                  ev.max_new_tokens, cfg.seed, ev.batch_size, engine=engine)
        summary = {k: v for k, v in report[family].items() if k != "per_sample"}
        print(family, json.dumps(summary))
    out = {"checkpoint": str(args.ckpt), "eval": cfg.to_dict()["eval"], "families": report}
    if base is not None:
        from gspo_repro.eval.synthetic import paired_delta

        try:
            out["paired_delta"] = {f: paired_delta(base[f], report[f]) for f in report}
        except (KeyError, ValueError) as e:
            raise SystemExit(f"gspo-repro: --baseline {args.baseline} does not match this "
                             f"evaluation ({e})") from None
        for fam, d in out["paired_delta"].items():
            print(f"{fam} paired delta vs baseline", json.dumps(d))
    if args.out:
        atomic_write_json(args.out, out)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from gspo_repro.eval.lm_eval_tasks import run_tasks, write_benchmark_task

    cfg = _config(args)
    ev = cfg.eval
    for bench in args.benchmark:
        if bench not in ev.benchmarks:
            raise SystemExit(f"gspo-repro eval: unknown benchmark {bench!r}; known: "
                             f"{', '.join(ev.benchmarks)}")
    local = Path(args.ckpt).exists()
    if local and not (Path(args.ckpt) / "config.json").exists():
        raise SystemExit(f"gspo-repro eval: no HF checkpoint at {args.ckpt}")
    # --out FILE.json: one benchmark, --task-dir its task; else both are folders, per benchmark
    one = args.out.endswith(".json")
    if one and len(args.benchmark) > 1:
        raise SystemExit("gspo-repro eval: --out names one JSON report; give a folder for "
                         f"{len(args.benchmark)} benchmarks")
    try:
        jobs, provenance = {}, {}
        for bench in args.benchmark:
            task_dir = Path(args.task_dir) if one else Path(args.task_dir) / bench
            out = Path(args.out) if one else Path(args.out) / f"{bench}.json"
            task_dir, _, provenance[bench] = write_benchmark_task(bench, task_dir, cfg)
            jobs[bench] = (task_dir, out)
        reps = run_tasks(args.ckpt, jobs, backend=args.backend or ev.backend, seed=cfg.seed,
                         batch_size=ev.batch_size, limit=args.limit, ev=ev)
    except ValueError as e:
        raise SystemExit(f"gspo-repro eval: {e}") from None
    for bench, rep in reps.items():
        print(f"eval {bench}: avg@{rep['k']} = {rep['avg_at_k']:.4f} over "
              f"{rep['n_problems']} problems ({provenance[bench]['source']}, "
              f"{provenance[bench]['tests']} tests) -> {jobs[bench][1]}")
        if "elo" in rep:
            print(f"eval {bench}: Elo {rep['elo']['elo']} ({rep['elo']['method']})")
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from gspo_repro.analysis import analyze

    try:
        head = analyze(_config(args), args.out)
    except ValueError as e:
        raise SystemExit(f"gspo-repro analyze: {e}") from None
    print(json.dumps(head))
    return 0


def _study(args: argparse.Namespace) -> int:
    from gspo_repro.study import load_study

    cfg = _config(args)
    try:
        study = load_study(args.study or cfg.study, cfg)
        if args.cells:
            from gspo_repro.study import select

            if not (args.out or args.list):
                raise ValueError("--cells analyses part of the study: name its --out (the "
                                 f"study's {study.results_dir} holds the whole study)")
            study = select(study, args.cells)
        if args.list:
            from gspo_repro.study import runs

            for cell, arm, seed in runs(study):
                print(cell.name, cell.profile, arm, seed)
            return 0
        from gspo_repro.analysis.study import analyze_study

        table = analyze_study(cfg, study, args.out or study.results_dir)
    except ValueError as e:
        raise SystemExit(f"gspo-repro study: {e}") from None
    print(table[["cell", "comparison", "reward_auc_diff", "lo", "hi", "verdict"]]
          .to_string(index=False))
    return 0


def _tasks(args: argparse.Namespace) -> int:
    from gspo_repro.eval.lm_eval_tasks import task_name, write_benchmark_task

    cfg = _config(args)
    for bench in args.benchmarks or cfg.eval.benchmarks:
        try:
            d, tasks, provenance = write_benchmark_task(bench, Path(args.out) / bench, cfg)
        except ValueError as e:
            raise SystemExit(f"gspo-repro tasks: {e}") from None
        print(f"{task_name(bench)}: {len(tasks)} problems ({provenance['source']}) -> {d}")
    return 0


def _table(args: argparse.Namespace) -> int:
    from gspo_repro.analysis import reports_table

    try:
        print(f"table: {reports_table(args.reports, args.out)}")
    except ValueError as e:
        raise SystemExit(f"gspo-repro table: {e}") from None
    return 0


def _manifest(args: argparse.Namespace) -> int:
    from gspo_repro.manifest import write_manifest

    print(f"manifest: {write_manifest(args.results, _config(args).to_dict())}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from gspo_repro.manifest import verify

    problems = verify(args.results)
    for p in problems:
        print(f"gspo-repro verify: {p}", file=sys.stderr)
    if not problems:
        print(f"verify: every artifact under {args.results} matches its manifest")
    return 1 if problems else 0


def _schema(args: argparse.Namespace) -> int:
    import yaml

    from gspo_repro.schema import config_schema

    print(yaml.safe_dump(config_schema(), sort_keys=False, width=100), end="")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config (defaults where absent)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config field, e.g. --set sft.steps=50")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every verb."""
    parser = argparse.ArgumentParser(prog="gspo-repro", description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("probe", help="one update of the tiny MoE: expert volatility and clip "
                                     "fractions per objective")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_probe)

    p = sub.add_parser("sft", help="cold-start SFT of the tiny Qwen3-MoE from random init")
    _common(p)
    p.add_argument("--out", required=True, help="run directory (checkpoint/, metrics.jsonl)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a finished run of another config in --out (the same one, "
                        "finished, is left as it is)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_sft)

    p = sub.add_parser("rl", help="RL from an SFT checkpoint with one algorithm (arm)")
    _common(p)
    p.add_argument("--algo", required=True, help="an entry of rl.algorithms, e.g. gspo")
    p.add_argument("--init", help="HF checkpoint to start from")
    p.add_argument("--seed", type=int, help="overrides the config's seed")
    p.add_argument("--out", help="run directory")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out; refused where it was made with another "
                        "config, init checkpoint or code (a finished one: nothing to do)")
    p.add_argument("--restart-if-changed", action="store_true",
                   help="with --resume: where --out holds a different run, discard it and "
                        "start afresh (the workflow's choice once it found the output stale)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved plan (sizes, per-rank batch, memory) and exit")
    p.add_argument("--world-size", type=int,
                   help="ranks to plan for (default: $WORLD_SIZE, else resources.rl.gpu)")
    p.set_defaults(func=_rl)

    p = sub.add_parser("eval-synthetic", help="sampled pass@1 on held-out synthetic tasks")
    _common(p)
    p.add_argument("--ckpt", required=True, help="HF checkpoint directory")
    p.add_argument("--families", nargs="+", default=["math", "code", "rated"])
    p.add_argument("--out", help="JSON report path")
    p.add_argument("--engine", choices=["transformers", "vllm"], default="transformers",
                   help="what samples the responses (vllm: several times faster here)")
    p.add_argument("--baseline", help="an earlier --out report on the same problems: print "
                   "and store the paired pass@1 difference per family")
    p.set_defaults(func=_eval_synthetic)

    p = sub.add_parser("eval", help="one checkpoint on benchmarks through lm-eval (avg@k)")
    _common(p)
    p.add_argument("--ckpt", required=True, help="HF checkpoint directory or hub model id")
    p.add_argument("--benchmark", required=True, nargs="+",
                   help="one or more of eval.benchmarks, evaluated with one engine")
    p.add_argument("--task-dir", required=True, help="where the lm-eval task is written "
                   "(with an --out folder: a folder with one task folder per benchmark)")
    p.add_argument("--out", required=True, help="a .json report path (one benchmark), or a "
                   "folder getting one BENCHMARK.json per benchmark")
    p.add_argument("--backend", choices=["vllm", "hf"], help="default: eval.backend")
    p.add_argument("--limit", type=int, help="only the first N problems (smoke runs)")
    p.set_defaults(func=_eval)

    p = sub.add_parser("analyze", help="tables and plots from a workflow's run directory")
    _common(p)
    p.add_argument("--out", required=True, help="results directory")
    p.set_defaults(func=_analyze)

    p = sub.add_parser("study", help="the regime study's table, map and manifest from its "
                                     "runs (the workflow's study target trains them)")
    _common(p)
    p.add_argument("--study", help="study file (default: the config's study)")
    p.add_argument("--out", help="results directory (default: the study's results_dir)")
    p.add_argument("--list", action="store_true",
                   help="check the study file and print its (cell, profile, arm, seed) runs")
    p.add_argument("--cells", nargs="+", metavar="CELL",
                   help="only these cells (a part of the study; needs --out unless --list)")
    p.set_defaults(func=_study)

    p = sub.add_parser("tasks", help="write lm-eval task directories (lm_eval --include_path)")
    _common(p)
    p.add_argument("--out", required=True, help="directory; one task directory per benchmark")
    p.add_argument("benchmarks", nargs="*", help="default: eval.benchmarks")
    p.set_defaults(func=_tasks)

    p = sub.add_parser("table", help="one table (CSV, Markdown) from evaluation reports")
    p.add_argument("--out", required=True, help="path prefix: writes PREFIX.csv and PREFIX.md")
    p.add_argument("reports", nargs="+", help="eval JSON reports, named by their directory")
    p.set_defaults(func=_table)

    p = sub.add_parser("manifest", help="hash every artifact of a results directory")
    _common(p)
    p.add_argument("results", help="results directory")
    p.set_defaults(func=_manifest)

    p = sub.add_parser("verify", help="check a results directory against its manifest")
    p.add_argument("results", help="results directory")
    p.set_defaults(func=_verify)

    p = sub.add_parser("schema", help="print the config's JSON schema (YAML)")
    p.set_defaults(func=_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    from gspo_repro.verifiers.sandbox import SandboxUnavailable

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SandboxUnavailable as e:  # the machine's fault, not a program's: one line
        raise SystemExit(f"gspo-repro {args.verb}: {e}") from None


if __name__ == "__main__":
    sys.exit(main())
