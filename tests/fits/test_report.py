"""The output folder: fit.json, tables, plots and a self-contained report.html."""

from __future__ import annotations

import base64
import json
import re

import pandas as pd

from fits import load_fit, write_report
from tests.fits.test_plots import png_size


def test_report_folder(small_fit, tmp_path):
    out = tmp_path / "fit"
    files = write_report(small_fit, out)
    assert files["fit"] == out / "fit.json" and load_fit(out).params == small_fit.params
    for name in ("runs", "cells", "params", "d_star", "comparison", "cv", "bootstrap_params"):
        assert (out / "tables" / f"{name}.csv").is_file(), name
    params = pd.read_csv(out / "tables" / "params.csv")
    assert list(params["param"]) == list(small_fit.params)
    html = (out / "report.html").read_text()
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(embedded) == 4
    on_disk = {p.read_bytes() for p in (out / "plots").glob("*.png")}
    for data in embedded:
        raw = base64.b64decode(data)
        assert raw in on_disk and png_size(raw)[0] > 100
    specs = re.findall(
        r"<script type='application/json' id='spec-(\w+)'>(.*?)</script>", html, re.S
    )
    assert {name for name, _ in specs} == {"fit", "heatmap", "dstar", "residuals"}
    assert all("$schema" in json.loads(body) for _, body in specs)
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']https?://", html)
    assert (out / "summary.txt").read_text() == small_fit.summary().text
    # replacing an existing report leaves only the new one
    write_report(small_fit, out, plots=False)
    assert (
        not (out / "plots").exists() and "data:image/png" not in (out / "report.html").read_text()
    )
