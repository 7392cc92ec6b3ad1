"""Charts of synthetic sweeps and of the theory-against-empirics terms (Altair).

Save them with :func:`fits.save_chart` (HTML, PNG and SVG, offline through vl-convert).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["certificate_charts", "sweep_charts", "theory_charts"]


def _labelled_long(
    frame: pd.DataFrame, ids: list[str], labels: dict[str, str], var_name: str, value_name: str
) -> pd.DataFrame:
    """``frame`` melted over the columns of ``labels`` (long form), each named by its label."""
    long = frame.melt(
        id_vars=ids, value_vars=list(labels), var_name=var_name, value_name=value_name
    )
    long[var_name] = long[var_name].map(labels)
    return long


def sweep_charts(runs: pd.DataFrame) -> dict[str, Any]:
    """Three charts of a synthetic sweep's runs table (:func:`fits.load_runs`).

    ``slices``: test accuracy by slice (in-range, extrapolation, all) against d, per budget;
    ``weight_distance``: ||w_ft − w_base||² against d per budget (log scale);
    ``per_op``: accuracy per test op count k and training difficulty d (decomposed evaluation).
    Runs of different budget modes (epochs, steps) are never averaged together: each mode gets
    its own row of panels (or line style).
    """
    import altair as alt

    frame = runs.copy()
    frame["budget_mode"] = frame["budget_mode"].fillna("unknown")
    rows = {"row": alt.Row("budget_mode:N", title="budget mode")}
    long = _labelled_long(
        frame,
        ["n", "difficulty", "seed", "budget_mode"],
        {
            "test_acc_inrange": "in-range (ops 1-4)",
            "test_acc_extrap": "extrapolation (ops 5-8)",
            "test_acc": "all (uniform over ops)",
        },
        "slice",
        "accuracy",
    )
    slices = (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("difficulty:Q", title="training difficulty d (mixture centre)"),
            y=alt.Y("mean(accuracy):Q", title="test accuracy (mean over seeds)"),
            color=alt.Color("slice:N", title="test slice"),
        )
        .properties(width=220, height=180)
        .facet(column=alt.Column("n:O", title="budget n"), **rows)
    )
    kl = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("difficulty:Q", title="training difficulty d"),
            y=alt.Y("mean(sq_dist):Q", title="||w_ft - w_base||^2", scale=alt.Scale(type="log")),
            color=alt.Color("n:O", title="budget n"),
            strokeDash=alt.StrokeDash("budget_mode:N", title="budget mode"),
        )
        .properties(width=320, height=220, title="weight distance to the base (KL = this / 2σ²)")
    )
    ops_cols = sorted(
        (c for c in frame.columns if c.startswith("test_acc_ops")),
        key=lambda c: int(c[len("test_acc_ops") :]),
    )
    per_op = frame.melt(
        id_vars=["n", "difficulty", "budget_mode"],
        value_vars=ops_cols,
        var_name="k",
        value_name="accuracy",
    )
    per_op["k"] = per_op["k"].str[len("test_acc_ops") :].astype(int)
    heat = (
        alt.Chart(per_op)
        .mark_rect()
        .encode(
            x=alt.X("k:O", title="test op count k"),
            y=alt.Y("difficulty:O", title="training difficulty d"),
            color=alt.Color("mean(accuracy):Q", title="accuracy", scale=alt.Scale(domain=[0, 1])),
        )
        .properties(width=200, height=120)
        .facet(column=alt.Column("n:O", title="budget n"), **rows)
    )
    return {"slices": slices, "weight_distance": kl, "per_op": heat}


def _facet_lines(
    cell: pd.DataFrame,
    series: dict[str, str],
    top: float | None,
    title: str,
    *,
    rules: tuple[float, ...] = (1.0,),
):
    """Lines of ``series`` (column -> label) against difficulty d, one panel per budget n
    (columns) and budget mode (rows), with dashed rules at ``rules`` (e.g. 1: vacuous)."""
    import altair as alt

    present = {c: label for c, label in series.items() if c in cell and cell[c].notna().any()}
    long = _labelled_long(cell, ["budget_mode", "n", "difficulty"], present, "term", "value")
    if top is None:
        top = max(1.05, float(np.nanmax(long["value"])) * 1.05)
    lines = (
        alt.Chart()
        .encode(
            x=alt.X("difficulty:Q", title="training difficulty d"),
            y=alt.Y("value:Q", title="error / bound", scale=alt.Scale(domain=[0, top], clamp=True)),
            color=alt.Color("term:N", title=None),
        )
        .mark_line(point=True)
    )
    marks = [
        alt.Chart().mark_rule(strokeDash=[4, 3], color="gray").encode(y=alt.datum(level))
        for level in rules
    ]
    return (
        alt.layer(lines, *marks, data=long)
        .properties(width=180, height=180)
        .facet(
            column=alt.Column("n:O", title="budget n"),
            row=alt.Row("budget_mode:N", title="budget mode"),
        )
        .properties(title=title)
    )


def _dstar_chart(frame: pd.DataFrame, labels: dict[str, str], title: str):
    """d*(n) lines, one per column of ``labels`` (column -> label), dashed by budget mode."""
    import altair as alt

    ds = _labelled_long(frame, ["budget_mode", "n"], labels, "which", "d")
    return (
        alt.Chart(ds.dropna())
        .mark_line(point=True)
        .encode(
            x=alt.X("n:Q", scale=alt.Scale(type="log"), title="budget n"),
            y=alt.Y("d:Q", title="d*(n)"),
            color=alt.Color("which:N", title=None),
            strokeDash=alt.StrokeDash("budget_mode:N", title="budget mode"),
        )
        .properties(width=320, height=220, title=title)
    )


def theory_charts(result) -> dict:
    """Three Altair charts: the bound terms, the in-distribution certificate, and d*(n).

    ``theory_bound``: per budget (columns) and budget mode (rows), against difficulty d: the
    observed test error, the training error, the in-distribution certificate, the test bound
    (certificate + TV), the plug-in test bound and the TV term; a rule marks 1 (above it a
    bound is vacuous). ``theory_certificate``: the in-distribution certificate alone beside
    the observed in-distribution and training errors, on [0, 1], so that it stays readable
    where the test bound is vacuous because training error + TV is already >= 1 (d = 6, 8).
    ``theory_dstar``: the empirical d*(n) beside the minimisers over d of the certified and
    plug-in bounds.
    """

    cell = result.per_cell

    def panel(series: dict[str, str], top: float | None, title: str):
        return _facet_lines(cell, series, top, title, rules=(1.0,))

    bound = panel(
        {
            "test_error": "observed test error",
            "train_error": "training error",
            "certificate": "in-distribution certificate",
            "bound": "test bound (certificate + TV)",
            "plugin_bound": "plug-in test bound",
            "tv": "TV term (extrapolation)",
        },
        None,
        "PAC-Bayes bound terms against the observed test error",
    )
    certificate = panel(
        {
            "in_dist_error": "observed in-distribution error",
            "train_error": "training error",
            "certificate": "in-distribution certificate",
            "plugin_certificate": "plug-in certificate",
        },
        1.05,
        "In-distribution certificate (no TV term) against the in-distribution error",
    )
    dstar = _dstar_chart(
        result.dstar,
        {
            "dstar_empirical": "empirical (lowest test error)",
            "dstar_bound": "certified bound minimiser",
            "dstar_plugin": "plug-in bound minimiser",
        },
        "d*(n): data against the bound",
    )
    return {"theory_bound": bound, "theory_certificate": certificate, "theory_dstar": dstar}


def certificate_charts(result) -> dict:
    """Two Altair charts of :class:`fits.experiments.SweepCertificates` (means over seeds).

    ``certificates``: per budget (columns) and budget mode (rows), against difficulty d: the
    learnt-prior certificate, the base model's certificate on the same rows, the held-out
    in-distribution 0-1 errors of the fine-tune and of the prior run, and the binomial test-set
    bound on the fine-tune's held-out samples; a dashed rule at the guessing error (a
    certificate above it is vacuous). ``certificate_dstar``: the empirical d*(n) beside the
    minimiser over d of certificate + TV.
    """

    cell = pd.DataFrame(list(result.cells))
    certificates = _facet_lines(
        cell,
        {
            "certificate": "certificate (learnt prior)",
            "base_certificate": "base model's certificate",
            "held_out_error": "held-out error, fine-tune",
            "prior_held_out_error": "held-out error, prior run",
            "held_out_test_set_bound": "test-set bound, fine-tune",
        },
        1.05,
        f"In-distribution certificates against held-out errors (dashed: guessing error "
        f"{result.guess_error:.3f})",
        rules=(result.guess_error,),
    )
    dstar = _dstar_chart(
        pd.DataFrame(list(result.dstar)),
        {
            "empirical_dstar": "empirical (lowest test error)",
            "bound_minimiser": "minimiser of certificate + TV",
        },
        "d*(n): data against the certified bound",
    )
    return {"certificates": certificates, "certificate_dstar": dstar}
