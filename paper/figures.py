"""Figures of paper/REPORT.md (Altair, saved offline through vl-convert) and the Table 1 re-analysis."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
from paths import FIGURES, RESULTS, finished_folders

# Table 1 of Liu et al. 2026 (arXiv:2605.12906, ICML 2026): accuracy (%) after SFT on the easy,
# medium and hard thirds (by chain-of-thought length) of each dataset, base Qwen2.5-Math-1.5B.
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


def runs_table(name: str) -> pd.DataFrame:
    """The runs of sweep ``name``, its finished run folders pooled (``fits.load_runs``)."""
    import fits

    return fits.load_runs([str(f) for f in finished_folders(name)])


def _save(chart, name: str) -> str:
    from fits import save_chart

    FIGURES.mkdir(parents=True, exist_ok=True)
    save_chart(chart, FIGURES / name)
    return f"figures/{name}.png"


def fig_heatmap(frames: dict[str, pd.DataFrame], stem: str = "heatmap_accuracy") -> str:
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
            x=alt.X("difficulty:O", title="training difficulty d", axis=alt.Axis(labelAngle=0)),
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
        alt.layer(chart, text, data=data)
        .facet(column=alt.Column("sweep:N", title=None))
        .resolve_scale(x="independent", y="independent"),
        stem,
    )


def fig_dstar(fit_json: dict, frames: dict[str, pd.DataFrame], stem: str = "dstar") -> str:
    import altair as alt

    rows = []
    for (name, model, target), res in fit_json.items():
        for e in res.get("d_star", []) if "refused" not in res else []:
            ci = e["interval"] or {"low": None, "high": None}
            rows.append(
                {
                    "sweep": name,
                    "which": f"fit {model} on {target}",
                    "n": e["n"],
                    "d": e["value"],
                    "low": ci["low"],
                    "high": ci["high"],
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
            base.mark_errorbar().encode(y=alt.Y("low:Q", title="d*(n)"), y2="high:Q"),
            data=data,
        )
        .properties(width=220, height=200)
        .facet(column=alt.Column("sweep:N"))
    )
    return _save(chart, stem)


def fig_kl(frames: dict[str, pd.DataFrame], stem: str = "kl_difficulty_budget") -> str:
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
    return _save(chart, stem)


def fig_gaps(theory: dict, stem: str = "gaps_by_bin") -> str:
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
    return _save(chart, stem)


def copy_theory_figures(theory: dict) -> dict[str, str]:
    from fits import save_chart
    from fits.experiments._theory import TheoryResult
    from fits.sweep._charts import theory_charts

    out = {}
    for name in theory:
        folder = RESULTS / f"theory-{name}"
        if not (folder / "theory_bound.png").is_file():  # render from the saved result
            for fig, chart in theory_charts(TheoryResult.load(folder)).items():
                save_chart(chart, folder / fig)
        for fig in ("theory_bound", "theory_dstar"):
            src = RESULTS / f"theory-{name}" / f"{fig}.png"
            if src.is_file():
                FIGURES.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, FIGURES / f"{fig}_{name}.png")
                out[f"{fig}_{name}"] = f"figures/{fig}_{name}.png"
    return out


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

    order = ["easy", "medium", "hard"]
    x = alt.X("third:N", sort=order, title="SFT data third", axis=alt.Axis(labelAngle=0))
    chart = (
        alt.layer(
            alt.Chart()
            .mark_point(filled=True, size=60)
            .encode(
                x=x,
                y=alt.Y(
                    "accuracy:Q",
                    scale=alt.Scale(zero=False),
                    title="accuracy (95% Clopper-Pearson)",
                ),
            ),
            alt.Chart()
            .mark_errorbar()
            .encode(
                x=x, y=alt.Y("ci_low:Q", title="accuracy (95% Clopper-Pearson)"), y2="ci_high:Q"
            ),
            data=table,
        )
        .properties(width=150, height=180)
        .facet(column=alt.Column("dataset:N", title=None))
        .resolve_scale(y="independent")
    )
    return table, _save(chart, "table1_reanalysis")
