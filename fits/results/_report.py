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

import base64
import html
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fits.model._families import PARAM_DOC
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
        "d_star": pd.DataFrame([e.to_dict() for e in result.d_star]),
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


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:2px 8px;
font-size:13px;text-align:left}th{background:#f3f3f3}img{max-width:100%;margin:.5em 0}
pre{background:#f7f7f7;padding:.5em;overflow:auto;font-size:12px}.verdict{font-size:15px}
"""


def _report_html(
    result: Any,
    images: dict[str, Path],
    specs: dict[str, Any],
    robustness: Any,
    profile: Any = None,
) -> str:
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Tradeoff fit report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Data difficulty vs. budget: tradeoff fit</h1>",
        result.summary().html,
    ]
    captions = {
        "fit": "Test metric against difficulty per budget: observed cell means (standard-error bars), "
        "fitted curve with its bootstrap band, and d*(n) (dashed).",
        "heatmap": "Mean test metric by budget and difficulty; the best difficulty of each budget is outlined.",
        "dstar": "d*(n) with intervals; hollow marks sit on the edge of the observed difficulties "
        "(not bracketed).",
        "residuals": "Observed minus fitted gap per cell.",
        "profile": "Profile likelihood of each shape parameter: the interval is where the curve "
        "is below the dashed level.",
    }
    for name, path in images.items():
        parts += [
            f"<h2>{html.escape(name)}</h2>",
            f"<p>{html.escape(captions.get(name, ''))}</p>",
            _img(path, name),
        ]
        spec = json.dumps(specs[name]).replace("</", "<\\/")
        parts.append(
            f"<details><summary>Vega-Lite spec</summary><script type='application/json' "
            f"id='spec-{html.escape(name)}'>{spec}</script><p>The spec is embedded in this page "
            "(script id spec-" + html.escape(name) + ").</p></details>"
        )
    if profile is not None:
        parts += ["<h2>Profile-likelihood intervals</h2>", profile.summary_html()]
    if robustness is not None:
        parts += ["<h2>Threshold robustness</h2>", robustness.summary_html()]
    cfg = json.dumps(to_jsonable(result.config), indent=2)
    parts += ["<h2>Fit configuration</h2>", f"<pre>{html.escape(cfg)}</pre>", "</body></html>"]
    return "\n".join(parts)


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
