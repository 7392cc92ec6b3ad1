"""Write a fit's outputs: ``fit.json``, CSV tables, plots and a self-contained ``report.html``.

Layout of the output folder (written to a temporary folder and renamed when complete, so a
killed run never leaves a half-written report)::

    fit.json                 everything to redo the fit (FitResult.to_dict)
    summary.txt              the printed summary
    report.html              summary, tables and the plots as embedded PNG (base64 data URIs),
                             with each plot's Vega-Lite spec embedded as JSON
    tables/runs.csv, cells.csv, params.csv, d_star.csv, comparison.csv, cv.csv,
           bootstrap_params.csv, robustness.csv and profile.csv (when given)
    plots/<name>.html/.png/.svg   for fit, heatmap, dstar, residuals (and profile, when given)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fits.model._families import PARAM_DOC
from fits.results._html import chart_block, html_page, preformatted, section
from pacbound.support import atomic_dir, to_jsonable

__all__ = ["result_tables", "write_report"]


def result_tables(result: Any) -> dict[str, pd.DataFrame]:
    """The CSV tables of a fit (and its robustness check, when attached)."""
    cells = result.data.cells.copy()
    cells["fitted_gap"] = result.predict_gap(cells["d"].to_numpy(), cells["n"].to_numpy())
    cells["predicted_test"] = result.predict(cells["d"].to_numpy(), cells["n"].to_numpy())
    cells["residual"] = cells["r_mean"] - cells["fitted_gap"]
    params = pd.DataFrame(
        [
            {
                "param": k,
                "estimate": v,
                "low": result.intervals[k].low if k in result.intervals else np.nan,
                "high": result.intervals[k].high if k in result.intervals else np.nan,
                "meaning": PARAM_DOC[k],
            }
            for k, v in result.params.items()
        ]
    )
    comparison = pd.DataFrame(
        [{k: v for k, v in r.items() if k != "d_star"} for r in result.comparison]
    )
    tables = {
        "runs": result.data.runs,
        "cells": cells,
        "params": params,
        "d_star": pd.DataFrame([e.as_row() for e in result.d_star]),
        "comparison": comparison,
        "cv": pd.DataFrame(
            [
                {**r, "train_budgets": " ".join(f"{b:g}" for b in r.get("train_budgets", []))}
                for r in result.cv
            ]
        ),
    }
    if result.draws is not None:
        nat = np.concatenate([np.exp(result.draws.theta), result.draws.amps], axis=1)
        boot = pd.DataFrame(nat, columns=list(result.model.param_names))
        boot["flag"] = result.draws.flags
        tables["bootstrap_params"] = boot
    return tables


_CAPTIONS = {
    "fit": "Test metric against difficulty per budget: observed cell means (standard-error bars), "
    "fitted curve with its bootstrap band, and d*(n) (dashed).",
    "heatmap": "Mean test metric by budget and difficulty; the best difficulty of each budget is "
    "outlined.",
    "dstar": "d*(n) with intervals; hollow marks sit on the edge of the observed difficulties "
    "(not bracketed).",
    "residuals": "Observed minus fitted gap per cell.",
    "profile": "Profile likelihood of each shape parameter: the interval is where the curve "
    "is below the dashed level.",
}


def _report_html(
    result: Any,
    images: dict[str, Path],
    specs: dict[str, Any],
    robustness: Any,
    profile: Any = None,
) -> str:
    blocks = [result.summary().html]
    blocks += [
        chart_block(name, path, caption=_CAPTIONS.get(name, ""), spec=specs[name])
        for name, path in images.items()
    ]
    if profile is not None:
        blocks.append(section("Profile-likelihood intervals", profile.summary_html()))
    if robustness is not None:
        blocks.append(section("Threshold robustness", robustness.summary_html()))
    cfg = json.dumps(to_jsonable(result.config), indent=2)
    blocks.append(section("Fit configuration", preformatted(cfg)))
    return html_page("Tradeoff fit report", "Data difficulty vs. budget: tradeoff fit", blocks)


def write_report(
    result: Any,
    out_dir: str | os.PathLike[str],
    *,
    plots: bool = True,
    robustness: Any = None,
    profile: Any = None,
) -> dict[str, Path]:
    """Write ``fit.json``, tables, plots and ``report.html`` into ``out_dir`` (atomically).

    Parameters
    ----------
    result : FitResult
    out_dir : path
        Replaced as a whole once everything is written.
    plots : bool
        Render the plots (PNG/SVG through vl-convert); the report embeds them.
    robustness : RobustnessResult, optional
        A threshold-robustness check to include (tables/robustness.csv and a report section).
    profile : ProfileResult, optional
        Profile-likelihood intervals to include (``profile`` in fit.json, tables/profile.csv,
        plots/profile.* and a report section).

    Returns
    -------
    dict of str to Path
        The main files in their final location.
    """
    from pacbound.support import write_json

    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        payload = result.to_dict()
        if robustness is not None:
            payload["robustness"] = robustness.to_dict()
        if profile is not None:
            payload["profile"] = profile.to_dict()
        write_json(tmp / "fit.json", payload)
        summary = result.summary().text
        if profile is not None:
            summary += "\n\n" + str(profile)
        (tmp / "summary.txt").write_text(summary, encoding="utf-8")
        tables_dir = tmp / "tables"
        tables_dir.mkdir()
        tables = result_tables(result)
        if robustness is not None:
            tables["robustness"] = robustness.table
        if profile is not None:
            tables["profile"] = profile.table
        for name, frame in tables.items():
            frame.to_csv(tables_dir / f"{name}.csv", index=False)
        images: dict[str, Path] = {}
        specs: dict[str, Any] = {}
        if plots:
            from fits.results._plots import fit_charts, save_chart

            plots_dir = tmp / "plots"
            plots_dir.mkdir()
            charts = fit_charts(result)
            if profile is not None:
                charts["profile"] = profile.chart()
            for name, chart in charts.items():
                files = save_chart(chart, plots_dir / name)
                images[name] = files["png"]
                specs[name] = chart.to_dict()
        (tmp / "report.html").write_text(
            _report_html(result, images, specs, robustness, profile), encoding="utf-8"
        )
    files = {
        "fit": out_dir / "fit.json",
        "report": out_dir / "report.html",
        "summary": out_dir / "summary.txt",
    }
    if plots:
        files.update({f"plot_{n}": out_dir / "plots" / f"{n}.png" for n in images})
    return files
