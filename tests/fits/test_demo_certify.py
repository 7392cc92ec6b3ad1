"""The demo's in-distribution certificates: each run beside its held-out error and the base's."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from fits.experiments import _demo
from fits.experiments._certify_sweep import BASE_KIND, LEARNT_KIND, RunCertificate
from fits.experiments._demo import DemoResult, _with_certificates

pytestmark = pytest.mark.usefixtures("sweep_env")


def _record(n, d, cert, base, err=0.1):
    run = {
        "run_id": f"mix{d}-n{n}",
        "difficulty_label": f"mix{d}",
        "difficulty": float(d),
        "n": n,
        "seed": 0,
        "budget_mode": "epochs",
        "epochs": 3.0,
        "steps": 3,
    }
    return RunCertificate(
        run=run,
        certificate=cert,
        certificate_kind=LEARNT_KIND,
        base_certificate=base,
        bound={"n": n // 2, "delta": 0.025, "prior_risk": 0.1, "base_risk": 0.3, "method": "b"},
        split={"prior_fraction": 0.5, "split_seed": 0, "n_prior": n // 2, "n_bound": n // 2},
        held_out={"n": 64, "seed": 1, "finetune": err, "prior": 0.2, "base": 0.3},
        assumptions=("i.i.d. bound set", "loss in [0, 1]"),
    )


def test_certificate_lines_show_each_run_beside_its_error_and_the_base():
    recs = (_record(64, 2, 0.675, 0.532).record(), _record(256, 2, 0.242, 0.433, 0.062).record())
    obs = pd.DataFrame([{"budget_mode": "epochs", "n": 64, "difficulty": 2.0, "test_acc": 0.4}])
    timings = {"sweep": 1.0, "fit": 1.0, "report": 1.0, "total": 3.0, "certify": 1.0}
    res = DemoResult("out", True, (), {}, obs, 0.4, timings, {}, (), recs)
    lines = res.certificate_lines()
    row = next(line for line in lines if line.strip().startswith("epochs") and " 256 " in line)
    assert "0.242" in row and "0.433" in row and "0.062" in row
    assert "1 of 2 certificates are below the base's" in "\n".join(lines)
    assert LEARNT_KIND in lines[1] and BASE_KIND in lines[2]
    assert "  - i.i.d. bound set." in lines
    assert "In-distribution certificates" in str(res)
    assert res.to_dict()["certificates"] == list(recs)
    assert "In-distribution certificates" not in str(dataclasses.replace(res, certificates=()))
    cell = {"budget_mode": "epochs", "n": 256, "difficulty": 2.0, "test_accuracy": 0.5}
    merged = _with_certificates((cell, {**cell, "n": 1024}), recs)
    assert merged[0]["certificate"] == 0.242 and merged[0]["base_certificate"] == 0.433
    assert merged[0]["certificate_kind"] == LEARNT_KIND and merged[0]["held_out_error"] == 0.062
    assert "certificate" not in merged[1]  # a cell with no certified run stays as it was


def test_run_certificate_round_trips():
    cert = _record(64, 2, 0.5, 0.6)
    again = RunCertificate.from_dict(json.loads(json.dumps(cert.to_dict())))
    assert again == cert
    rec = cert.record()
    assert rec["difficulty"] == 2.0 and rec["n"] == 64 and rec["monte_carlo_slack"] == 0.0
    assert "learnt prior" in rec["certificate_label"]


def test_tiny_demo_json_carries_certificates(tmp_path, monkeypatch):
    """A tiny demo grid (2 difficulties, 1 budget of 16 rows): every certified record in
    demo.json has a certificate in [0, 1], the base's beside it and the held-out error, and a
    rerun reuses the saved certificates."""
    monkeypatch.setitem(_demo.QUICK, "centers", [2, 3])
    monkeypatch.setitem(_demo.QUICK, "n", [16])
    out = tmp_path / "demo"
    res = _demo.run_demo(out, quick=True, workers=1, n_resamples=5, progress=False)
    saved = json.loads((out / "demo.json").read_text())
    certs = saved["certificates"]
    assert len(certs) == 2 and {c["difficulty"] for c in certs} == {2.0, 3.0}
    for c in certs:
        assert c["n"] == 16 and c["n_bound"] == 8
        assert 0.0 <= c["certificate"] <= 1.0 and 0.0 <= c["base_certificate"] <= 1.0
        assert c["certificate_kind"] == LEARNT_KIND
        assert 0.0 <= c["held_out_error"] <= 1.0 and c["n_held_out"] == 256
        # a certificate bounds the risk: never below the empirical error it was computed from
        assert c["certificate"] >= c["prior_bound_error"]
        assert c["base_certificate"] >= c["base_bound_error"]
        assert any("i.i.d." in a for a in c["assumptions"])
        assert any("union" in a for a in c["assumptions"])
        assert any("delta split" in a for a in c["assumptions"])
    for row in saved["regime"]:
        assert 0.0 <= row["certificate"] <= 1.0 and "base_certificate" in row
    assert (out / "certify" / certs[0]["run_id"] / "prior" / "model.safetensors").is_file()
    assert "In-distribution certificates" in (out / "report.html").read_text()
    again = _demo.run_demo(out, quick=True, workers=1, n_resamples=5, progress=False)
    assert again.certificates == res.certificates
    assert again.timings["certify"] < res.timings["certify"]
    skipped = _demo.run_demo(out, quick=True, workers=1, n_resamples=5, certify=False)
    assert skipped.certificates == () and "certificate" not in skipped.to_dict()["regime"][0]
    # another split seed is another prior run and bound set, not the saved certificate
    from fits.experiments import certify_run
    from fits.sweep._runner import load_plan

    plan = load_plan(out / "sweep")
    run = next(r for r in plan.runs if r.run_id == certs[0]["run_id"])
    folder = out / "certify" / run.run_id
    other = certify_run(plan.spec, run, out / "sweep" / "runs" / run.run_id, folder, split_seed=1)
    assert other.split["split_seed"] == 1 and other.split["n_bound"] == 8
    assert json.loads((folder / "prior_recipe.json").read_text())["split_seed"] == 1


def test_demo_command_has_a_no_certify_option():
    from typer.testing import CliRunner

    from fits.cli.main import app

    res = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "--no-certify" in res.output
