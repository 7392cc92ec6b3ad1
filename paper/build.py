"""Regenerate every figure and table of paper/REPORT.md from the toolkit's own commands.

Usage (from the repository root, inside the project's virtual environment)::

    python paper/build.py                 # sweeps (resumable), fits, theory, figures, report
    python paper/build.py --skip-sweeps   # only what is derived from existing sweep folders
    python paper/build.py --workers 2     # parallel 1-thread training processes

Stages, each a ``tradeoff`` command run as a subprocess (so the report is exactly what a user
gets from the CLI):

1. ``tradeoff sweep run paper/specs/{epochs,steps,bins}.toml --out paper/runs/<name>``
2. ``tradeoff fit paper/runs/<name> --model sq_dist --target error|loss --out paper/results/...``
3. ``tradeoff sweep examples`` then ``tradeoff fit --examples`` (threshold robustness)
4. ``tradeoff sweep theory paper/runs/<name> --out paper/results/theory-<name>``
5. Figures (Altair, saved offline through vl-convert) and tables from those outputs, the
   re-analysis of the paper's Table 1, and ``paper/REPORT.md`` from ``paper/report_template.md``.

Numbers in the report are filled in from the outputs; the prose around them is in the
template. Timings depend on the machine (2 shared CPU cores here: hours, mostly the n = 4096
runs).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

PAPER = Path(__file__).resolve().parent
ROOT = PAPER.parent
RUNS = PAPER / "runs"
RESULTS = PAPER / "results"
FIGURES = PAPER / "figures"
SWEEPS = ("epochs", "steps", "bins")
TARGETS = ("error", "loss")

# The paper's Table 1 (research/paper.md): accuracy (%) after SFT on the easy, medium and hard
# thirds (by chain-of-thought length) of each dataset, base Qwen2.5-Math-1.5B.
TABLE1 = [
    {
        "dataset": "OpenR1-Math-94k",
        "eval": "MATH500",
        "n_test": 500,
        "size": 94_000,
        "easy": 61.1,
        "medium": 68.3,
        "hard": 61.7,
    },
    {
        "dataset": "OpenMath 200k subset",
        "eval": "MATH500",
        "n_test": 500,
        "size": 200_000,
        "easy": 71.7,
        "medium": 70.1,
        "hard": 69.0,
    },
    {
        "dataset": "OpenScience 200k subset",
        "eval": "MMLU",
        "n_test": 14_042,
        "size": 200_000,
        "easy": 53.4,
        "medium": 53.0,
        "hard": 41.2,
    },
]


def tradeoff(*args: str, log: list[str]) -> subprocess.CompletedProcess:
    """Run ``tradeoff ARGS`` (the installed console command) and record the command line."""
    exe = Path(sys.executable).with_name("tradeoff")
    cmd = [str(exe) if exe.exists() else "tradeoff", *args]
    log.append(" ".join(["tradeoff", *args]))
    print("$", log[-1], flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    print(f"  ({time.perf_counter() - t0:.0f} s, exit {proc.returncode})", flush=True)
    if proc.returncode not in (0,):
        print(proc.stderr[-2000:], file=sys.stderr)
    return proc


def run_sweeps(workers: int, log: list[str]) -> None:
    for name in SWEEPS:
        proc = tradeoff(
            "sweep",
            "run",
            f"paper/specs/{name}.toml",
            "--out",
            f"paper/runs/{name}",
            "--workers",
            str(workers),
            "--json",
            log=log,
        )
        if proc.returncode != 0:
            raise SystemExit(f"sweep {name} failed; rerun to resume it")


def run_fits(log: list[str], bootstrap: int) -> dict:
    """Fit each sweep on each target; return the fit.json contents (or the refusal)."""
    out = {}
    for name in SWEEPS:
        if not (RUNS / name / "runs").is_dir():
            continue
        for target in TARGETS:
            folder = RESULTS / f"fit-{name}-{target}"
            proc = tradeoff(
                "fit",
                f"paper/runs/{name}",
                "--model",
                "sq_dist",
                "--target",
                target,
                "--bootstrap",
                str(bootstrap),
                "--out",
                str(folder.relative_to(ROOT)),
                "--json",
                log=log,
            )
            if proc.returncode == 0:
                out[(name, target)] = json.loads((folder / "fit.json").read_text())
            else:
                out[(name, target)] = {"refused": proc.stderr.strip().removeprefix("error: ")}
    return out


def run_robustness(log: list[str], bootstrap: int) -> dict:
    """Threshold robustness of the fitted d*(n), for the mixture sweep and the paper's bins."""
    out = {}
    for name in ("epochs", "bins"):
        if not (RUNS / name / "runs").is_dir():
            continue
        examples = RESULTS / f"examples-{name}.csv"
        tradeoff(
            "sweep",
            "examples",
            f"paper/runs/{name}",
            "--out",
            str(examples.relative_to(ROOT)),
            log=log,
        )
        folder = RESULTS / f"robustness-{name}"
        proc = tradeoff(
            "fit",
            f"paper/runs/{name}",
            "--model",
            "sq_dist",
            "--target",
            "loss",
            "--bootstrap",
            str(bootstrap),
            "--examples",
            str(examples.relative_to(ROOT)),
            "--no-plots",
            "--out",
            str(folder.relative_to(ROOT)),
            "--json",
            log=log,
        )
        if proc.returncode == 0:
            out[name] = json.loads((folder / "fit.json").read_text()).get("robustness")
        else:
            out[name] = {"refused": proc.stderr.strip().removeprefix("error: ")}
    return out


def run_theory(log: list[str]) -> dict:
    out = {}
    for name in SWEEPS:
        if not (RUNS / name / "runs").is_dir():
            continue
        folder = RESULTS / f"theory-{name}"
        proc = tradeoff(
            "sweep",
            "theory",
            f"paper/runs/{name}",
            "--out",
            str(folder.relative_to(ROOT)),
            "--gibbs-samples",
            "20",
            log=log,
        )
        if proc.returncode == 0:
            out[name] = json.loads((folder / "theory.json").read_text())
    return out


# --------------------------------------------------------------------------- figures
def _runs(name: str) -> pd.DataFrame:
    import fits

    return fits.load_runs(RUNS / name)


def _save(chart, name: str) -> str:
    from fits import save_chart

    FIGURES.mkdir(parents=True, exist_ok=True)
    save_chart(chart, FIGURES / name)
    return f"figures/{name}.png"


def fig_heatmap(frames: dict[str, pd.DataFrame]) -> str:
    import altair as alt

    rows = []
    for name, frame in frames.items():
        g = frame.groupby(["n", "difficulty"], as_index=False)["test_acc"].mean()
        g["sweep"] = name
        rows.append(g)
    data = pd.concat(rows)
    chart = (
        alt.Chart(data)
        .mark_rect()
        .encode(
            x=alt.X("difficulty:O", title="training difficulty d"),
            y=alt.Y("n:O", title="budget n", sort="descending"),
            color=alt.Color("test_acc:Q", title="test accuracy", scale=alt.Scale(scheme="viridis")),
        )
        .properties(width=160, height=140)
    )
    text = (
        alt.Chart(data)
        .mark_text(fontSize=10)
        .encode(
            x="difficulty:O",
            y=alt.Y("n:O", sort="descending"),
            text=alt.Text("test_acc:Q", format=".2f"),
            color=alt.condition("datum.test_acc > 0.6", alt.value("black"), alt.value("white")),
        )
    )
    return _save(
        alt.layer(chart, text, data=data).facet(column=alt.Column("sweep:N")), "heatmap_accuracy"
    )


def fig_dstar(fit_json: dict, frames: dict[str, pd.DataFrame]) -> str:
    import altair as alt

    rows = []
    for (name, target), res in fit_json.items():
        for e in res.get("d_star", []) if "refused" not in res else []:
            rows.append(
                {
                    "sweep": name,
                    "which": f"fit on {target}",
                    "n": e["n"],
                    "d": e["value"],
                    "low": e["low"],
                    "high": e["high"],
                    "bracketed": e["bracketed"],
                }
            )
    for name, frame in frames.items():
        g = frame.groupby(["n", "difficulty"], as_index=False)["test_acc"].mean()
        for n, h in g.groupby("n"):
            rows.append(
                {
                    "sweep": name,
                    "which": "observed (best mean accuracy)",
                    "n": n,
                    "d": float(h.loc[h["test_acc"].idxmax(), "difficulty"]),
                    "low": None,
                    "high": None,
                    "bracketed": True,
                }
            )
    data = pd.DataFrame(rows)
    base = alt.Chart(data).encode(
        x=alt.X("n:Q", scale=alt.Scale(type="log"), title="budget n"),
        color=alt.Color("which:N", title=None),
    )
    chart = (
        alt.layer(
            base.mark_line(point=True).encode(y=alt.Y("d:Q", title="d*(n)")),
            base.mark_errorbar().encode(y="low:Q", y2="high:Q"),
            data=data,
        )
        .properties(width=220, height=200)
        .facet(column=alt.Column("sweep:N"))
    )
    return _save(chart, "dstar")


def fig_kl(frames: dict[str, pd.DataFrame]) -> str:
    import altair as alt

    data = pd.concat([f.assign(sweep=name) for name, f in frames.items()])
    chart = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("difficulty:Q", title="training difficulty d"),
            y=alt.Y(
                "mean(sq_dist):Q",
                title="||w_ft - w_base||^2 (= 2σ² KL)",
                scale=alt.Scale(type="log"),
            ),
            color=alt.Color("n:O", title="budget n"),
        )
        .properties(width=200, height=180)
        .facet(column=alt.Column("sweep:N"))
    )
    return _save(chart, "kl_difficulty_budget")


def fig_gaps(theory: dict) -> str:
    import altair as alt

    rows = []
    for name, res in theory.items():
        for r in res["per_cell"]:
            for key, label in (
                ("gen_gap", "generalization gap (observed)"),
                ("ext_gap", "extrapolation gap (observed)"),
                ("tv", "TV(D_test, D_train(d))"),
            ):
                rows.append(
                    {
                        "sweep": name,
                        "n": r["n"],
                        "d": r["difficulty"],
                        "term": label,
                        "value": r[key],
                    }
                )
    data = pd.DataFrame(rows)
    chart = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("d:Q", title="training difficulty d"),
            y=alt.Y("value:Q", title="error difference"),
            color=alt.Color("term:N", title=None),
        )
        .properties(width=140, height=140)
        .facet(column=alt.Column("n:O", title="budget n"), row=alt.Row("sweep:N"))
    )
    return _save(chart, "gaps_by_bin")


def copy_theory_figures(theory: dict) -> dict[str, str]:
    out = {}
    for name in theory:
        for fig in ("theory_bound", "theory_dstar"):
            src = RESULTS / f"theory-{name}" / f"{fig}.png"
            if src.is_file():
                FIGURES.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, FIGURES / f"{fig}_{name}.png")
                out[f"{fig}_{name}"] = f"figures/{fig}_{name}.png"
    return out


# --------------------------------------------------------------------------- Table 1
def table1_reanalysis() -> tuple[pd.DataFrame, str]:
    """Exact binomial intervals and the chance that each third is truly best.

    Intervals: two-sided Clopper-Pearson at 95% from ``pacbound.test_set_bound`` (the exact
    binomial tail, applied to the errors and to the correct answers at δ = 0.025 each). The
    probability that a third is the best is a parametric bootstrap (independent binomials with
    the reported rates; the paper's evaluations are paired on the same questions, which usually
    narrows differences, so this is on the cautious side).
    """
    from pacbound import test_set_bound

    rng = np.random.default_rng(0)
    rows = []
    for r in TABLE1:
        n = r["n_test"]
        acc = {b: r[b] / 100 for b in ("easy", "medium", "hard")}
        draws = {b: rng.binomial(n, a, size=20000) / n for b, a in acc.items()}
        stack = np.stack([draws[b] for b in acc])
        best = np.bincount(stack.argmax(axis=0), minlength=3) / stack.shape[1]
        for i, (b, a) in enumerate(acc.items()):
            k = round(a * n)
            lo = 1 - float(test_set_bound(n - k, n, 0.025).value)
            hi = float(test_set_bound(k, n, 0.025).value)
            rows.append(
                {
                    "dataset": r["dataset"],
                    "eval": r["eval"],
                    "n_test": n,
                    "train_size": r["size"],
                    "third": b,
                    "accuracy": a,
                    "ci_low": lo,
                    "ci_high": hi,
                    "p_best": float(best[i]),
                }
            )
    table = pd.DataFrame(rows)
    import altair as alt

    chart = (
        alt.layer(
            alt.Chart(table)
            .mark_point(filled=True, size=60)
            .encode(
                x=alt.X("third:N", sort=["easy", "medium", "hard"], title="SFT data third"),
                y=alt.Y("accuracy:Q", scale=alt.Scale(zero=False), title="accuracy"),
            ),
            alt.Chart(table)
            .mark_errorbar()
            .encode(
                x=alt.X("third:N", sort=["easy", "medium", "hard"]), y="ci_low:Q", y2="ci_high:Q"
            ),
            data=table,
        )
        .properties(width=150, height=180)
        .facet(column=alt.Column("dataset:N"))
    )
    return table, _save(chart, "table1_reanalysis")


# --------------------------------------------------------------------------- report
def _fmt(x, digits=3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def md_table(frame: pd.DataFrame, floatfmt: str = ".3f") -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if isinstance(v, float):
                cells.append("–" if not math.isfinite(v) else format(v, floatfmt))
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def accuracy_table(frame: pd.DataFrame) -> str:
    g = frame.groupby(["n", "difficulty"])["test_acc"]
    mean, sd, m = g.mean(), g.std(ddof=1), g.size()
    piv = pd.DataFrame({"mean": mean, "sd": sd, "m": m}).reset_index()
    out = []
    for n, h in piv.groupby("n"):
        row = {"n": int(n)}
        best = h["mean"].max()
        for _, r in h.iterrows():
            txt = f"{r['mean']:.3f}" + (f" ± {r['sd']:.3f}" if r["m"] > 1 else "")
            row[f"d={r['difficulty']:g}"] = f"**{txt}**" if r["mean"] == best else txt
        out.append(row)
    return md_table(pd.DataFrame(out))


def dstar_table(fit_json: dict, name: str) -> str:
    lines = []
    for target in TARGETS:
        res = fit_json.get((name, target))
        if res is None:
            continue
        if "refused" in res:
            lines.append(f"- fit on {target}: **refused**: {res['refused']}")
            continue
        parts = []
        for e in res["d_star"]:
            ci = f" [{e['low']:.2f}, {e['high']:.2f}]" if e["low"] is not None else ""
            parts.append(f"n={e['n']:g}: {e['value']:.2f}{ci}{'' if e['bracketed'] else ' (edge)'}")
        lines.append(f"- fit on {target}: " + "; ".join(parts) + f". {res.get('verdict', '')}")
    return "\n".join(lines)


def build_report(context: dict) -> str:
    template = (PAPER / "report_template.md").read_text(encoding="utf-8")
    for key, value in context.items():
        template = template.replace("{{" + key + "}}", str(value))
    return template


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-sweeps", action="store_true", help="use existing sweep folders")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args(argv)
    log: list[str] = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if not args.skip_sweeps:
        run_sweeps(args.workers, log)
    fit_json = run_fits(log, args.bootstrap)
    robust = run_robustness(log, min(args.bootstrap, 200))
    theory = run_theory(log)
    frames = {name: _runs(name) for name in SWEEPS if (RUNS / name / "runs").is_dir()}
    figs = {
        "heatmap": fig_heatmap(frames),
        "dstar": fig_dstar(fit_json, frames),
        "kl": fig_kl(frames),
        "gaps": fig_gaps(theory),
        **copy_theory_figures(theory),
    }
    t1, t1_fig = table1_reanalysis()
    t1.to_csv(RESULTS / "table1_reanalysis.csv", index=False)
    context = {
        "commands": "\n".join(f"    {c}" for c in log),
        "build_seconds": f"{time.perf_counter() - t0:.0f}",
        "table1": md_table(t1.drop(columns=["eval", "n_test", "train_size"]).round(4)),
        "fig_table1": t1_fig,
    }
    for name, frame in frames.items():
        context[f"acc_{name}"] = accuracy_table(frame)
        context[f"dstar_{name}"] = dstar_table(fit_json, name)
        context[f"runs_{name}"] = str(len(frame))
    for name, res in theory.items():
        context[f"theory_notes_{name}"] = "\n".join(f"- {n}" for n in res["notes"])
        cells = pd.DataFrame(res["per_cell"])[
            [
                "n",
                "difficulty",
                "test_error",
                "train_error",
                "gen_gap",
                "ext_gap",
                "tv",
                "sq_dist",
                "sigma",
                "bound",
                "plugin_bound",
            ]
        ]
        context[f"theory_table_{name}"] = md_table(cells, ".3g")
        context[f"theory_dstar_{name}"] = md_table(pd.DataFrame(res["dstar"]), ".3g")
    for name, res in robust.items():
        if res is None or "refused" in res:
            context[f"robust_{name}"] = f"refused: {res and res.get('refused')}"
        else:
            context[f"robust_{name}"] = res.get("verdict", json.dumps(res)[:500])
    for key, path in figs.items():
        context[f"fig_{key}"] = path
    report = build_report(context)
    missing = sorted({p.split("}}")[0] for p in report.split("{{")[1:]})
    for key in missing:
        report = report.replace("{{" + key + "}}", "(not available: the stage did not run)")
    (PAPER / "REPORT.md").write_text(report, encoding="utf-8")
    (RESULTS / "commands.txt").write_text("\n".join(log) + "\n", encoding="utf-8")
    print(f"wrote {PAPER / 'REPORT.md'} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
