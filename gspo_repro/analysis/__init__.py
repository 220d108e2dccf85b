"""Tables and plots from a workflow's metrics and evaluation files."""

from __future__ import annotations

from pathlib import Path

from gspo_repro.config import Config
from gspo_repro.io import atomic_write_text, read_json

# What analyze writes, by name; the workflow declares its outputs from these.
FIGURES = ("fig1_reward_vs_compute", "fig1_scores_vs_step", "fig2_clip_fraction",
           "fig3_routing_replay", "expert_volatility", "fig1_paired_reward_diff")
TABLES = ("summary.csv", "summary.md", "summary.html", "curves.csv", "training.csv",
          "benchmarks.md", "claims.csv", "claims.md", "claims.html", "paired.csv",
          "paired_training.csv")

_HTML = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title><style>"
         "body{{font-family:sans-serif;font-size:13px;margin:1em}}"
         "table{{border-collapse:collapse}}td,th{{border:1px solid #bbb;padding:2px 6px;"
         "vertical-align:top}}th{{background:#eee}}</style></head><body>\n{body}\n</body></html>\n")


def _write_markdown(path: Path, text: str) -> None:
    """``path`` (.md) and the same table as .html beside it: Snakemake's report shows HTML
    in the page, while Markdown and CSV are only offered as downloads."""
    import markdown

    atomic_write_text(path, text)
    body = markdown.markdown(text, extensions=["tables"])
    atomic_write_text(path.with_suffix(".html"), _HTML.format(title=path.stem, body=body))


def analyze(cfg: Config, out: str | Path) -> dict:
    """Write every table (CSV, Markdown) and figure (PNG) under ``out``; return the headline
    numbers (clip ratio, compute warnings) and the claims with their verdicts."""
    # pandas, scipy, seaborn: only when analysing
    from gspo_repro.analysis import claims, paired, plots, tables

    out = Path(out)
    arms, seeds = list(cfg.arms), list(cfg.seeds)
    asked = {"steps": cfg.rl.evaluated_steps(), "benchmarks": list(cfg.eval.benchmarks)}
    train = tables.training_frame(cfg.run_dir, arms, seeds)
    evals = tables.eval_frame(cfg.run_dir, arms, seeds, **asked)
    led = tables.ledgers(cfg.run_dir, arms, seeds)
    warnings = tables.compute_check(led)
    summary = tables.summary_table(train, evals, led)
    ratio = tables.clip_ratio(summary)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "tables" / "summary.csv", summary.to_csv(index=False))
    _write_markdown(out / "tables" / "summary.md", tables.to_markdown(summary, warnings, ratio))
    atomic_write_text(out / "tables" / "curves.csv", evals.to_csv(index=False))
    reports = [rep for *_, rep in tables.eval_reports(cfg.run_dir, arms, seeds, **asked)]
    atomic_write_text(out / "tables" / "benchmarks.md", tables.provenance_table(reports))
    keep = [c for c in train.columns if not c.startswith("time/")]
    atomic_write_text(out / "tables" / "training.csv", train[keep].to_csv(index=False))
    figs = out / "figures"
    plots.reward_vs_compute(train, figs / "fig1_reward_vs_compute.png")
    plots.scores_vs_step(evals, figs / "fig1_scores_vs_step.png")
    plots.clip_fraction(train, figs / "fig2_clip_fraction.png")
    plots.routing_replay(train, evals, figs / "fig3_routing_replay.png")
    plots.volatility(train, figs / "expert_volatility.png")
    scores = paired.final_problem_scores(cfg.run_dir, arms, seeds, **asked)
    verdicts = claims.claims_table(train, scores, arms, seeds, cfg.model.pretrained)
    diffs = claims.paired_table(train, scores, arms, seeds)
    by_batch = paired.paired_training(train, paired.present_pairs(arms))
    atomic_write_text(out / "tables" / "claims.csv", verdicts.to_csv(index=False))
    _write_markdown(out / "tables" / "claims.md", claims.to_markdown(verdicts, diffs))
    atomic_write_text(out / "tables" / "paired.csv", diffs.to_csv(index=False))
    atomic_write_text(out / "tables" / "paired_training.csv", by_batch.to_csv(index=False))
    plots.paired_reward_diff(by_batch, figs / "fig1_paired_reward_diff.png")
    return {"clip_ratio_gspo_over_grpo": ratio, "compute_warnings": warnings,
            "claims": verdicts.to_dict("records")}


def reports_table(paths: list[str | Path], out_prefix: str | Path) -> Path:
    """``out_prefix``.csv and .md from evaluation reports, each model named by its report's
    directory; returns the Markdown path."""
    from gspo_repro.analysis import tables

    reports = [(p.parent.name, read_json(p, "evaluation report")) for p in map(Path, paths)]
    frame = tables.reports_table(reports)
    prefix = Path(out_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(prefix.with_suffix(".csv"), frame.to_csv(index=False))
    md = tables.table_markdown(frame) + "\n" + tables.provenance_table(r for _, r in reports)
    atomic_write_text(prefix.with_suffix(".md"), md)
    return prefix.with_suffix(".md")
