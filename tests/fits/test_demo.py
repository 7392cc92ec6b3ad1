"""``tradeoff demo --quick`` end to end: sweep, fit with bootstrap, report, honest verdict."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fits import load_fit
from fits.cli.main import app
from fits.experiments._demo import FULL, QUICK, demo_spec

pytestmark = pytest.mark.usefixtures("sweep_env")


def test_demo_grids_meet_the_documented_sizes():
    assert len(FULL["centers"]) >= 3 and len(FULL["n"]) >= 3 and len(FULL["seeds"]) >= 2
    assert len(QUICK["centers"]) >= 3 and len(QUICK["n"]) >= 2
    spec = demo_spec(quick=True)
    assert spec["base"]["kind"] == "synthetic" and spec["resources"]["workers"] == 2


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    res = CliRunner().invoke(
        app, ["demo", "--quick", "--out", str(out), "--json", "--resamples", "50"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert (out / "fit.json").is_file() and (out / "report.html").is_file()
    n_runs = len(QUICK["centers"]) * len(QUICK["n"]) * len(QUICK["seeds"])
    assert len(list((out / "sweep" / "runs").iterdir())) == n_runs
    assert [r["n"] for r in summary["dstar"]] == sorted(QUICK["n"])
    for row in summary["dstar"]:
        assert row["observed_best_d"] in QUICK["centers"]
    verdict = summary["verdicts"]["epochs"]
    assert verdict["observed"] and verdict["error"] and verdict["loss"]
    assert any("did d*" in line or "d*" in line for line in summary["answer"])
    assert len(summary["answer"]) == 3  # observed, fit on error, fit on loss
    html = (out / "report.html").read_text()
    assert "d*(n)" in html and "data:image/png;base64" in html
    fitted = [t for t in ("error", "loss") if verdict[f"{t}_code"] != "refused"]
    if fitted:
        fit = load_fit(out / "fit.json")
        assert fit.target == fitted[0] and [e.n for e in fit.d_star] == sorted(QUICK["n"])
    else:
        assert json.loads((out / "fit.json").read_text())["status"] == "refused"
    # a rerun resumes: nothing is trained again
    again = CliRunner().invoke(
        app, ["demo", "--quick", "--out", str(out), "--json", "--resamples", "50"]
    )
    assert again.exit_code == 0
    assert json.loads(again.stdout)["timings"]["sweep"] < summary["timings"]["sweep"]
