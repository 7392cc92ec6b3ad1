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


def _verdict_code(p: float, level: float = 0.95) -> str:
    """The verdict rule, restated from its definition: P(d* increases) against the level."""
    return "increases" if p >= level else "decreases" if p <= 1 - level else "inconclusive"


def _check_consistent(summary: dict, out) -> None:
    """Every verdict field of the demo agrees with the numbers beside it."""
    first_fitted = None
    for mode, v in summary["verdicts"].items():
        rows = [r for r in summary["dstar"] if r["budget_mode"] == mode]
        assert [r["n"] for r in rows] == sorted(QUICK["n"])
        assert all(r["observed_best_d"] in QUICK["centers"] for r in rows)
        move = rows[-1]["observed_best_d"] - rows[0]["observed_best_d"]
        word = "harder" if move > 0 else "easier" if move < 0 else None
        assert (f"moved toward {word} data" if word else "did not move") in v["observed"]
        assert f"({move:+g} from n={rows[0]['n']}" in v["observed"]
        for target in ("error", "loss"):
            code = v[f"{target}_code"]
            refused = code == "refused"
            assert v[target].startswith("fit refused: ") == refused
            assert all((r[target] is None) == refused for r in rows), (mode, target)
            if refused:
                continue
            first_fitted = first_fitted or (mode, target)
            p = v[f"{target}_p_increase"]
            assert code == _verdict_code(p), (mode, target, p)
            assert f"= {p:.3f} over the bootstrap refits" in v[target]
            for r in rows:  # 95% intervals from 50 refits, as quoted in the verdict
                e = r[target]
                assert e["level"] == 0.95 and e["low"] <= e["high"]
                assert min(QUICK["centers"]) <= e["value"] <= max(QUICK["centers"])
    saved = json.loads((out / "fit.json").read_text())
    if first_fitted is None:  # fit.json says why there is no fit
        assert saved == {"status": "refused", "verdicts": summary["verdicts"]}
    else:  # fit.json is the first fitted (mode, target), error before loss
        mode, target = first_fitted
        fit = load_fit(out / "fit.json")
        assert fit.target == target and fit.verdict == summary["verdicts"][mode][target]
        rows = [r for r in summary["dstar"] if r["budget_mode"] == mode]
        assert [e.value for e in fit.d_star] == [r[target]["value"] for r in rows]


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    res = CliRunner().invoke(
        app, ["demo", "--quick", "--out", str(out), "--json", "--n-resamples", "50"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert (out / "fit.json").is_file() and (out / "report.html").is_file()
    n_runs = len(QUICK["centers"]) * len(QUICK["n"]) * len(QUICK["seeds"])
    assert len(list((out / "sweep" / "runs").iterdir())) == n_runs
    assert len(summary["answer"]) == 3  # observed, fit on error, fit on loss
    _check_consistent(summary, out)
    html = (out / "report.html").read_text()
    assert "d*(n)" in html and "data:image/png;base64" in html
    # every run certified (one seed), the base's certificate beside it; the goal: at
    # most 0.5 for the easiest difficulty at the largest budget
    certs = json.loads((out / "demo.json").read_text())["certificates"]
    assert len(certs) == n_runs and "In-distribution certificates" in html
    for c in certs:
        assert 0.0 <= c["certificate"] <= 1.0 and 0.0 <= c["base_certificate"] <= 1.0
        assert 0.0 <= c["held_out_error"] <= 1.0 and c["certificate_kind"] == "learnt-prior"
    easiest = [c for c in certs if c["difficulty"] == min(QUICK["centers"])]
    assert max(easiest, key=lambda c: c["n"])["certificate"] <= 0.5
    # a rerun resumes (nothing is trained again) and, with the fixed seeds, says the same
    again = CliRunner().invoke(
        app, ["demo", "--quick", "--out", str(out), "--json", "--n-resamples", "50"]
    )
    assert again.exit_code == 0
    rerun = json.loads(again.stdout)
    assert rerun["timings"]["sweep"] < summary["timings"]["sweep"]
    assert rerun["dstar"] == summary["dstar"] and rerun["verdicts"] == summary["verdicts"]
    assert rerun["answer"] == summary["answer"]
