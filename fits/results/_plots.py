"""Plots of a tradeoff fit (Altair), saved offline as HTML, PNG and SVG through vl-convert.

- ``fit``: the test metric against difficulty, one panel per budget: observed cell means with
  standard-error bars, the fitted curve, its bootstrap band, the model's d*(n) (red dashes) and
  the data's own local d* (green dots).
- ``heatmap``: budget x difficulty, coloured by the mean test metric, the best cell of each
  budget outlined (the paper's Figures 3-4).
- ``dstar``: d*(n) with intervals against n on log-log axes (linear d when a d* is not positive),
  the fitted d*(n) line and band between the budgets; hollow marks are not bracketed; beside
  them, in green, the data's own d* (local parabola and its interval).

When the pure-error lack-of-fit test rejects the model's form, the fit and d*(n) charts say so
in their subtitle: their curves are then the model's, not the data's.
- ``residuals``: observed minus fitted gap per cell, against difficulty, coloured by budget.

Layered and faceted charts take their data at the top level (Altair cannot facet layers
otherwise); titles are set explicitly so layered axes do not concatenate them; model bands are
precomputed percentiles, never Vega's bootstrap of the mean.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pacbound.support import atomic_path

__all__ = ["CHART_NAMES", "fit_charts", "save_chart"]

CHART_NAMES = ("fit", "heatmap", "dstar", "residuals")
_CURVE_POINTS = 60


def _metric(result: Any) -> str:
    return "test loss" if result.target == "loss" else "test error (1 - accuracy)"


def _frames(result: Any) -> dict[str, pd.DataFrame]:
    """The tidy tables behind the charts."""
    data = result.data
    cells = data.cells.copy()
    cells["stderr"] = (cells["test_sd"] / np.sqrt(cells["m"])).fillna(0.0)
    cells["lo"] = cells["test_mean"] - cells["stderr"]
    cells["hi"] = cells["test_mean"] + cells["stderr"]
    fitted_gap = result.predict_gap(cells["d"].to_numpy(), cells["n"].to_numpy())
    cells["fitted_gap"] = fitted_gap
    cells["residual"] = cells["r_mean"] - fitted_gap
    cells["r_stderr"] = (cells["r_sd"] / np.sqrt(cells["m"])).fillna(0.0)
    lo, hi = result.model.d_range
    grid = np.linspace(lo, hi, _CURVE_POINTS)
    d_pts = np.tile(grid, len(data.n_levels))
    n_pts = np.repeat(data.n_levels, _CURVE_POINTS)
    curve = pd.DataFrame({"d": d_pts, "n": n_pts, "pred": result.predict(d_pts, n_pts)})
    draws = result.predict_draws(d_pts, n_pts)
    alpha = 1.0 - result.config["confidence_level"]
    if draws is not None:
        curve["band_lo"], curve["band_hi"] = np.quantile(draws, [alpha / 2, 1 - alpha / 2], axis=0)
    else:
        curve["band_lo"] = curve["band_hi"] = curve["pred"]
    ds = pd.DataFrame([e.as_row() for e in result.d_star])
    ds["pred"] = result.predict(ds["value"].to_numpy(), ds["n"].to_numpy())
    ds["bracketed_label"] = np.where(ds["bracketed"], "bracketed", "edge (not bracketed)")
    n_dense = np.geomspace(data.n_levels[0], data.n_levels[-1], 25)
    dense = pd.DataFrame([e.as_row() for e in result.d_star_at(n_dense)])
    free = pd.DataFrame(
        [
            {
                "n": e.n,
                "value": e.smooth,
                "low": e.interval.low,
                "high": e.interval.high,
                "observed_best": e.observed_best,
                "status": e.status,
            }
            for e in result.model_free
        ],
        columns=["n", "value", "low", "high", "observed_best", "status"],
    )
    return {"cells": cells, "curve": curve, "dstar": ds, "dense": dense, "free": free}


def _subtitle(result: Any) -> list[str]:
    """The lack-of-fit verdict as a chart subtitle (empty when not rejected)."""
    lof = getattr(result, "lack_of_fit", None)
    if lof is None or not lof.rejected:
        return []
    return [
        f"LACK OF FIT: F({lof.df[0]}, {lof.df[1]}) = {lof.statistic:.3g}, {lof.p_text}"
        f" < {lof.alpha:g}: the theory's form does not describe these runs;",
        "the curve and its d*(n) are the model's, not the data's (green: the data's own d*)",
    ]


def fit_charts(result: Any) -> dict[str, Any]:
    """The four charts of a fit, keyed by :data:`CHART_NAMES`."""
    import altair as alt

    frames = _frames(result)
    metric = _metric(result)
    cells, curve, ds, dense = frames["cells"], frames["curve"], frames["dstar"], frames["dense"]
    free = frames["free"]
    subtitle = _subtitle(result)
    n_budgets = len(result.data.n_levels)

    # ------------------------------------------------------------------ fit, faceted by budget
    top = pd.concat(
        [
            cells[["d", "n", "test_mean", "lo", "hi"]].assign(src="obs"),
            curve.assign(src="fit"),
            ds[["n", "value", "pred"]].rename(columns={"value": "d"}).assign(src="dstar"),
            free[["n", "value"]].rename(columns={"value": "d"}).assign(src="data_dstar"),
        ],
        ignore_index=True,
    )
    x = alt.X("d:Q", title="training difficulty d").scale(zero=False)
    base = alt.Chart().encode(x=x)
    band = (
        base.mark_area(opacity=0.25, color="#4c78a8")
        .encode(y=alt.Y("band_lo:Q", title=metric).scale(zero=False), y2="band_hi:Q")
        .transform_filter("datum.src == 'fit'")
    )
    line = (
        base.mark_line(color="#4c78a8")
        .encode(y=alt.Y("pred:Q", title=metric))
        .transform_filter("datum.src == 'fit'")
    )
    err = (
        base.mark_errorbar(color="black")
        .encode(y=alt.Y("lo:Q", title=metric), y2="hi:Q")
        .transform_filter("datum.src == 'obs'")
    )
    pts = (
        base.mark_point(filled=True, color="black")
        .encode(y=alt.Y("test_mean:Q", title=metric), tooltip=["d:Q", "n:Q", "test_mean:Q"])
        .transform_filter("datum.src == 'obs'")
    )
    star = base.mark_rule(color="#e45756", strokeDash=[4, 3]).transform_filter(
        "datum.src == 'dstar'"
    )
    data_star = base.mark_rule(color="#54a24b", strokeDash=[1, 3], strokeWidth=2).transform_filter(
        "datum.src == 'data_dstar'"
    )
    fit_chart = (
        alt.layer(band, line, err, pts, star, data_star, data=top)
        .properties(width=180, height=150)
        .facet(facet=alt.Facet("n:O", title="budget n"), columns=min(n_budgets, 4))
        .properties(
            title=alt.TitleParams(
                f"{metric} vs difficulty: fit ({result.model.spec.label}), band, d* "
                "(red: model, green: data)",
                subtitle=subtitle,
                subtitleColor="#e45756",
            )
        )
    )

    # ------------------------------------------------------------------ heatmap
    heat = cells[["d", "n", "test_mean"]].copy()
    best = heat.loc[heat.groupby("n")["test_mean"].idxmin()]
    heat["best"] = False
    heat.loc[best.index, "best"] = True
    heat["label"] = heat["test_mean"].map(lambda v: f"{v:.3g}")
    hbase = alt.Chart().encode(
        x=alt.X("d:O", title="training difficulty d"),
        y=alt.Y("n:O", title="budget n", sort="descending"),
    )
    rect = hbase.mark_rect().encode(
        color=alt.Color("test_mean:Q", title=metric).scale(scheme="viridis", reverse=True)
    )
    outline = hbase.mark_rect(fill=None, stroke="#e45756", strokeWidth=3).transform_filter(
        "datum.best"
    )
    mid = float(heat["test_mean"].median())
    text = hbase.mark_text(fontSize=10).encode(
        text="label:N",
        color=alt.condition(f"datum.test_mean < {mid!r}", alt.value("black"), alt.value("white")),
    )
    heatmap = alt.layer(rect, outline, text, data=heat).properties(
        width=max(160, 45 * len(result.data.d_levels)),
        height=max(120, 30 * n_budgets),
        title=f"mean {metric} by budget and difficulty (best per budget outlined)",
    )

    # ------------------------------------------------------------------ d*(n)
    positive = bool((ds["value"] > 0).all() and (dense["value"] > 0).all())
    yscale = alt.Scale(type="log") if positive else alt.Scale(zero=False)
    dtop = pd.concat([dense.assign(src="dense"), ds.assign(src="obs")], ignore_index=True)
    dtop["low"] = dtop["low"].fillna(dtop["value"])
    dtop["high"] = dtop["high"].fillna(dtop["value"])
    nb = alt.Chart().encode(x=alt.X("n:Q", title="budget n").scale(type="log"))
    dband = (
        nb.mark_area(opacity=0.2, color="#4c78a8")
        .encode(y=alt.Y("low:Q", title="d*(n)").scale(yscale), y2="high:Q")
        .transform_filter("datum.src == 'dense'")
    )
    dline = (
        nb.mark_line(color="#4c78a8")
        .encode(y=alt.Y("value:Q", title="d*(n)").scale(yscale))
        .transform_filter("datum.src == 'dense'")
    )
    derr = (
        nb.mark_errorbar(color="black")
        .encode(y=alt.Y("low:Q", title="d*(n)").scale(yscale), y2="high:Q")
        .transform_filter("datum.src == 'obs'")
    )
    dpts = (
        nb.mark_point(size=70, color="black")
        .encode(
            y=alt.Y("value:Q", title="d*(n)").scale(yscale),
            fill=alt.Fill("bracketed_label:N", title=None).scale(
                domain=["bracketed", "edge (not bracketed)"], range=["black", "white"]
            ),
            tooltip=["n:Q", "value:Q", "low:Q", "high:Q", "bracketed:N"],
        )
        .transform_filter("datum.src == 'obs'")
    )
    layers = [dband, dline, derr, dpts]
    if len(free):
        fb = alt.Chart(free).encode(x=alt.X("n:Q", title="budget n").scale(type="log"))
        layers += [
            fb.mark_errorbar(color="#54a24b").encode(
                y=alt.Y("low:Q", title="d*(n)").scale(yscale), y2="high:Q"
            ),
            fb.mark_point(shape="diamond", size=80, color="#54a24b", filled=True).encode(
                y=alt.Y("value:Q", title="d*(n)").scale(yscale),
                tooltip=["n:Q", "value:Q", "low:Q", "high:Q", "observed_best:Q", "status:N"],
            ),
        ]
    dchart = alt.layer(*layers, data=dtop).properties(
        width=320,
        height=240,
        title=alt.TitleParams(
            "d*(n) with intervals" + (" (log-log)" if positive else " (log n)")
            + "; green diamonds: the data's own d*",
            subtitle=subtitle,
            subtitleColor="#e45756",
        ),
    )

    # ------------------------------------------------------------------ residuals
    res = cells[["d", "n", "residual", "r_stderr"]].copy()
    res["lo"] = res["residual"] - res["r_stderr"]
    res["hi"] = res["residual"] + res["r_stderr"]
    rb = alt.Chart().encode(
        x=alt.X("d:O", title="training difficulty d"), xOffset=alt.XOffset("n:O")
    )
    color = alt.Color("n:O", title="budget n").scale(scheme="viridis")
    rpts = rb.mark_point(filled=True, size=50).encode(
        y=alt.Y("residual:Q", title="observed - fitted gap"),
        color=color,
        tooltip=["d:Q", "n:Q", "residual:Q"],
    )
    rerr = rb.mark_errorbar().encode(
        y=alt.Y("lo:Q", title="observed - fitted gap"), y2="hi:Q", color=color
    )
    zero = alt.Chart().mark_rule(color="gray", strokeDash=[3, 3]).encode(y=alt.datum(0))
    rchart = alt.layer(rerr, rpts, zero, data=res).properties(
        width=360, height=220, title="residuals by cell (error bars: standard error over seeds)"
    )
    return {"fit": fit_chart, "heatmap": heatmap, "dstar": dchart, "residuals": rchart}


def save_chart(chart: Any, base: str | os.PathLike[str], *, scale: float = 2.0) -> dict[str, Path]:
    """Write ``<base>.html``, ``<base>.png`` and ``<base>.svg`` (offline, atomically)."""
    import vl_convert as vlc

    base = Path(base)
    spec = chart.to_dict()
    out = {}
    png = vlc.vegalite_to_png(spec, scale=scale)
    svg = vlc.vegalite_to_svg(spec)
    for suffix, payload in ((".png", png), (".svg", svg)):
        target = base.with_suffix(suffix)
        with atomic_path(target, suffix=suffix) as tmp:
            if isinstance(payload, bytes):
                tmp.write_bytes(payload)
            else:
                tmp.write_text(payload, encoding="utf-8")
        out[suffix[1:]] = target
    target = base.with_suffix(".html")
    with atomic_path(target, suffix=".html") as tmp:
        chart.save(str(tmp), format="html", inline=True)
    out["html"] = target
    return out
