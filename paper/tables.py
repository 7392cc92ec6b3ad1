"""Markdown tables of paper/REPORT.md."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from paths import MODELS, TARGETS


def _fmt(x, digits=3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def md_table(frame: pd.DataFrame, floatfmt: str = ".3f") -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for i in range(len(frame)):
        cells = []
        for c in cols:
            v = frame[c].iloc[i]
            if isinstance(v, (float, np.floating)):
                v = float(v)
                if not math.isfinite(v):
                    cells.append("–")
                elif c in ("n", "best d", "difficulty", "d") and v.is_integer():
                    cells.append(str(int(v)))
                else:
                    cells.append(format(v, floatfmt))
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
    for model in MODELS:
        for target in TARGETS:
            res = fit_json.get((name, model, target))
            if res is None:
                continue
            head = f"- `--model {model} --target {target}`"
            if "refused" in res:
                lines.append(f"{head}: **refused**: {res['refused']}")
                continue
            parts = []
            for e in res["d_star"]:
                ci = f" [{e['low']:.2f}, {e['high']:.2f}]" if e["low"] is not None else ""
                edge = "" if e["bracketed"] else " (edge)"
                parts.append(f"n={e['n']:g}: {e['value']:.2f}{ci}{edge}")
            verdict = res.get("verdict", "")
            verdict = verdict.get("text", "") if isinstance(verdict, dict) else verdict
            lines.append(f"{head}: " + "; ".join(parts) + f". {verdict}")
    return "\n".join(lines)


def observed_dstar(frame: pd.DataFrame, draws: int = 2000) -> pd.DataFrame:
    """The most accurate difficulty per budget, and how often each wins when seeds are resampled.

    Not a model: within every (d, n) cell the seeds are resampled with replacement, the cell
    means recomputed, and the argmax over d counted (cells with one seed stay fixed).
    """
    rng = np.random.default_rng(0)
    rows = []
    for n, h in frame.groupby("n"):
        cells = {d: g["test_acc"].to_numpy() for d, g in h.groupby("difficulty")}
        ds = np.array(sorted(cells))
        means = np.array([cells[d].mean() for d in ds])
        boot = np.stack(
            [rng.choice(cells[d], size=(draws, cells[d].size)).mean(axis=1) for d in ds]
        )
        wins = np.bincount(boot.argmax(axis=0), minlength=len(ds)) / draws
        row = {"n": int(n), "best d": float(ds[means.argmax()]), "best acc": float(means.max())}
        row.update({f"P(d={d:g} best)": float(w) for d, w in zip(ds, wins, strict=True)})
        rows.append(row)
    return pd.DataFrame(rows)
