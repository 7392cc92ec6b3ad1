"""Markdown tables of paper/REPORT.md."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from paths import MODELS, ROOT, TARGETS, finished_folders


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
            free = {e["n"]: e for e in res.get("model_free", [])}
            for e in res["d_star"]:
                iv = e["interval"]
                ci = f" [{iv['low']:.2f}, {iv['high']:.2f}]" if iv is not None else ""
                edge = "" if e["bracketed"] else " (edge)"
                data = ""
                f = free.get(e["n"])
                if f is not None:
                    fiv = f["interval"]
                    data = (
                        f" — data: best d={f['observed_best']:g}, local "
                        f"{f['smooth']:.2f} [{fiv['low']:.2f}, {fiv['high']:.2f}] ({f['status']})"
                    )
                parts.append(f"n={e['n']:g}: model {e['value']:.2f}{ci}{edge}{data}")
            lof = res.get("lack_of_fit")
            # a rejection opens the verdict itself; its absence is said here
            lof_text = f" **{lof['verdict']}.**" if lof and not lof["rejected"] else ""
            verdict = res.get("verdict", "")
            verdict = verdict.get("text", "") if isinstance(verdict, dict) else verdict
            lines.append(f"{head}: " + "; ".join(parts) + f".{lof_text} {verdict}")
    return "\n".join(lines)


def observed_dstar(frame: pd.DataFrame, draws: int = 2000) -> pd.DataFrame:
    """The most accurate difficulty per budget, and how often each wins when seeds are resampled.

    Not a model: within every (d, n) cell the seeds are resampled with replacement, the cell
    means recomputed, and the argmax over d counted (cells with one seed stay fixed; ties split
    evenly), by ``fits.experiments.best_difficulty_probabilities`` (seed 0).
    """
    from fits.experiments import best_difficulty_probabilities

    runs = frame.assign(budget_mode="all")[["budget_mode", "n", "difficulty", "seed", "test_acc"]]
    pbest = best_difficulty_probabilities(runs, value="test_acc", n_resamples=draws, seed=0)
    rows = []
    for n, h in pbest.groupby("n"):
        h = h.sort_values("difficulty")
        top = h.loc[h["mean"].idxmax()]
        row = {"n": int(n), "best d": float(top["difficulty"]), "best acc": float(top["mean"])}
        row.update(
            {
                f"P(d={d:g} best)": float(p)
                for d, p in zip(h["difficulty"], h["p_best"], strict=True)
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def regime_table(name: str):
    """The in-distribution error table (``fits.experiments.sweep_regime_table``) of a sweep,
    its run folders pooled; ``(RegimeTable, "")`` or ``(None, why it is not available)``.

    Each run's base is the one its ``run_meta.json`` records; where that folder is gone (a
    cached base on another machine), the base shipped in ``fits/data`` with the sweep's
    pre-training op range stands in.
    """
    import dataclasses
    import json

    from fits.experiments import sweep_regime_table
    from pacbound.exceptions import InputFileError

    tables = []
    for folder in finished_folders(name):
        try:
            tables.append(sweep_regime_table(folder))
        except InputFileError as exc:
            base = json.loads((folder / "sweep.json").read_text()).get("base") or {}
            shipped = ROOT / "fits" / "data" / f"synthetic-base-ops{base.get('ops')}"
            if base.get("kind") != "synthetic" or not (shipped / "pretrain_meta.json").is_file():
                return None, str(exc)
            try:
                tables.append(sweep_regime_table(folder, base=shipped))
            except InputFileError as exc2:
                return None, str(exc2)
    if not tables:
        return None, f"{name}: no finished runs"
    if any(t.base_per_op != tables[0].base_per_op for t in tables):
        return None, f"{name}: its run folders were fine-tuned from different bases"
    runs = pd.concat([t.runs for t in tables], ignore_index=True)
    return dataclasses.replace(tables[0], runs=runs), ""


def indist_table(table) -> str:
    """Markdown: in-distribution error on D_train(d), fine-tune (seed mean) vs base, per n x d."""
    cells = table.cells()
    rows = []
    for (mode, n), h in cells.groupby(["budget_mode", "n"], sort=True):
        row = {"mode": mode, "n": int(n)}
        for r in h.sort_values("difficulty").itertuples():
            row[f"d={r.difficulty:g}"] = f"{r.indist_error:.3f} vs {r.base_indist_error:.3f}"
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame["mode"].nunique() == 1:
        frame = frame.drop(columns="mode")
    return md_table(frame)


def gain_table(table) -> str:
    """Markdown: per budget, the best difficulty's seed-mean test accuracy against the base's,
    and the largest in-distribution gain over the difficulties d >= the median d."""
    cells = table.cells()
    rows = []
    for (mode, n), h in cells.groupby(["budget_mode", "n"], sort=True):
        top = h.loc[h["test_accuracy"].idxmax()]
        hard = h[h["difficulty"] >= h["difficulty"].median()]
        rows.append(
            {
                "mode": mode,
                "n": int(n),
                "best d": float(top["difficulty"]),
                "best test acc": float(top["test_accuracy"]),
                "base test acc": table.base_test_accuracy,
                "gain": float(top["test_gain"]),
                "smallest in-dist gain, d >= median": float(hard["indist_gain"].min()),
            }
        )
    return md_table(pd.DataFrame(rows))


def shift_table(fit_json: dict, names) -> str:
    """Markdown: per sweep, fit form and target, the fitted d*(n) with intervals, the shift
    exponent d log d*/d log n with its interval, P(d* increases), and the lack-of-fit test."""
    rows = []
    for (name, model, target), res in fit_json.items():
        if name not in names:
            continue
        row = {"sweep": name, "model": f"`{model}`", "target": target}
        if "refused" in res:
            row["d*(n) [95%]"] = "refused: " + res["refused"].split(". ")[0]
            rows.append(row)
            continue
        row["d*(n) [95%]"] = "; ".join(
            f"{e['n']:g}: {e['value']:.2f}"
            + (
                f" [{e['interval']['low']:.2f}, {e['interval']['high']:.2f}]"
                if e["interval"]
                else ""
            )
            for e in res["d_star"]
        )
        shift = res.get("shift_exponent") or {}
        iv = shift.get("interval")
        row["shift exponent [95%]"] = (
            f"{shift['value']:+.3f}" + (f" [{iv['low']:+.3f}, {iv['high']:+.3f}]" if iv else "")
            if shift.get("value") is not None
            else "–"
        )
        p = res.get("p_increase")
        row["P(d* increases)"] = f"{p:.2f}" if p is not None else "–"
        lof = res.get("lack_of_fit") or {}
        row["form rejected (lack of fit)"] = (
            ("yes" if lof.get("rejected") else "no") if lof.get("testable") else "untested"
        )
        verdict = res.get("verdict")
        row["verdict"] = verdict.get("code", "") if isinstance(verdict, dict) else ""
        rows.append(row)
    if not rows:
        return "(no fit)"
    return md_table(pd.DataFrame(rows).fillna("–"))


def _interval(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> str:
    return f"[{'<=' if lo_open else ''}{lo:.3g}, {'>=' if hi_open else ''}{hi:.3g}]"


def rate_table(rates: dict) -> tuple[str, str]:
    """The fitted budget exponent nu per sweep, fit form and target, with both intervals; notes.

    ``rates`` maps (sweep, model, target) to a fit.json with ``profile`` (or
    ``{"refused": reason}``).
    """
    rows, notes = [], []
    for (name, model, target), fit in rates.items():
        where = f"{name}, `{model}`, {target}"
        if "refused" in fit:
            rows.append({"sweep": name, "model": model, "target": target, "nu": "refused"})
            reason = fit["refused"].split(": ", 1)[-1].split(". ")[0]
            notes.append(f"- {where}: refused ({reason}).")
            continue
        nu = fit["params"]["nu"]
        boot = fit["intervals"].get("nu")
        prof = fit["profile"]["intervals"]["nu"]["interval"]
        boot_text = _interval(boot["low"], boot["high"]) if boot else "-"
        prof_text = _interval(prof["low"], prof["high"], prof["low_open"], prof["high_open"])
        boot_covers = bool(boot) and boot["low"] <= 0.5 <= boot["high"]
        prof_covers = prof["low"] <= 0.5 <= prof["high"]
        rows.append(
            {
                "sweep": name,
                "model": model,
                "target": target,
                "nu": f"{nu:.3g}",
                "bootstrap": boot_text,
                "profile": prof_text,
                "1/2 in bootstrap": "yes" if boot_covers else "no",
                "1/2 in profile": "yes" if prof_covers else "no",
            }
        )
        if boot_covers and prof_covers:
            verdict = "both intervals cover 1/2: consistent with the theory's rate"
        elif not boot_covers and not prof_covers:
            side = "faster" if nu > 0.5 else "slower"
            verdict = f"both intervals exclude 1/2: the gap shrinks {side} than n^-1/2 here"
        else:
            verdict = "the two intervals disagree about 1/2: inconclusive"
        bound_lo, bound_hi = fit["config"]["bounds"]["nu"]
        boot_at_bounds = bool(boot) and (
            boot["low"] <= bound_lo * 1.001 or boot["high"] >= bound_hi * 0.999
        )
        if prof["low_open"] or prof["high_open"] or boot_at_bounds:
            verdict += (
                f" (an interval reaches the bound of nu, [{bound_lo:g}, {bound_hi:g}]: these runs do "
                "not pin nu down on that side)"
            )
        notes.append(f"- {where}: nu = {nu:.3g}; {verdict}.")
    if not rows:
        return "(not run)", ""
    return md_table(pd.DataFrame(rows)), "\n".join(notes)


def _factor(x: float) -> str:
    return "∞" if not math.isfinite(x) else f"{x:.3g}"


def theory_headroom(theory: dict, guess_error: float) -> pd.DataFrame:
    """:func:`fits.experiments.nonvacuous_headroom` of a cached ``theory.json``."""
    from fits.experiments import nonvacuous_headroom

    return nonvacuous_headroom(
        pd.DataFrame(theory["per_sigma"]),
        guess_error=guess_error,
        delta=float(theory["config"]["delta"]),
        grid=len(theory["config"]["sigma_grid"]),
    )


def headroom_section(theory: dict, guess_error: float) -> str:
    """How far each run's base-centred certificate is from non-vacuous: a table and sentences.

    From the cached ``theory.json`` (per-σ KL and Gibbs risks) through
    :func:`fits.experiments.nonvacuous_headroom`: per cell, the medians over seeds of the KL at
    the best σ, the KL a certificate below ``guess_error`` would allow there, and their ratio F
    (certified Gibbs risk; ∞ where it is at or above guessing at every σ), beside F with the
    Monte-Carlo mean in place of the certified Gibbs risk (many draws' limit; not a certificate).
    """
    runs = theory_headroom(theory, guess_error)
    keys = ["budget_mode", "n", "difficulty"]
    cells = runs.groupby(keys, as_index=False).agg(
        seeds=("run_id", "size"),
        kl=("kl", "median"),
        kl_allowed=("kl_allowed", "median"),
        factor=("kl_factor", "median"),
        infinite=("kl_factor", lambda s: int(np.isinf(s).sum())),
        factor_exact=("kl_factor_exact", "median"),
    )
    table = pd.DataFrame(
        {
            "mode": cells["budget_mode"],
            "n": cells["n"],
            "d": cells["difficulty"],
            "seeds": cells["seeds"],
            "KL at best σ (nats)": [_fmt(float(v)) for v in cells["kl"]],
            "KL allowed": [_fmt(float(v)) for v in cells["kl_allowed"]],
            "factor F": [_factor(v) for v in cells["factor"]],
            "runs with F = ∞": cells["infinite"],
            "F, exact Gibbs risk": [_factor(v) for v in cells["factor_exact"]],
        }
    )
    finite = runs["kl_factor"][np.isfinite(runs["kl_factor"])]
    exact = runs["kl_factor_exact"][np.isfinite(runs["kl_factor_exact"])]
    lines = [
        f"- Non-vacuous (F ≤ 1, below the guessing error {guess_error:.3f}): "
        f"{int((runs['kl_factor'] <= 1).sum())} of {len(runs)} runs.",
        f"- Where some σ leaves room ({len(finite)} runs), the KL would have to shrink by a "
        f"factor between {_factor(finite.min()) if len(finite) else '–'} and "
        f"{_factor(finite.max()) if len(finite) else '–'}; at the other {len(runs) - len(finite)} "
        "the certified Gibbs risk (20 draws) is itself at or above guessing at every σ.",
        f"- With the Gibbs risk known exactly the factor is between "
        f"{_factor(exact.min()) if len(exact) else '–'} and "
        f"{_factor(exact.max()) if len(exact) else '–'} ({len(exact)} runs; the others' Gibbs "
        "risk is at or above guessing at every σ).",
    ]
    for (mode, n), h in cells.groupby(["budget_mode", "n"]):
        logs = np.log10(h["factor_exact"].replace(np.inf, np.nan))
        if logs.notna().sum() >= 3:
            rho = logs.corr(h["difficulty"], method="spearman")
            lines.append(
                f"- [{mode}] n = {int(n)}: Spearman ρ between d and F (exact Gibbs risk) = "
                f"{rho:+.2f}: {'harder data is farther from a base-relative certificate' if rho > 0 else 'harder data is not farther'}."
            )
    return md_table(table) + "\n\n" + "\n".join(lines)
