"""Certificates for every run of a sweep (``tradeoff sweep certify``, spec ``[certify]``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pacbound
from fits.cli.main import app
from fits.experiments import summarise_certificates
from fits.experiments._sweep_certificates import _with_reach, _with_reference
from fits.sweep._spec import SweepSpec, load_spec
from pacbound.exceptions import InvalidParameterError
from tests.fits._certificate_records import certificate_record

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def _record(d, n, seed, cert, base, held, prior_held=0.2, n_held=64):
    return certificate_record(d, n, seed, cert, base, held, prior_held=prior_held, n_held=n_held)


def test_reference_bound_and_flags():
    rec = _record(2, 64, 0, cert=0.4, base=0.5, held=10 / 64)
    out = _with_reference(rec, {"tv_test": 0.3, "test_error": 0.45}, guess_error=6 / 7)
    # the test-set bound is the exact binomial tail of the fine-tune's 10 errors in 64 samples
    assert out["held_out_test_set_bound"] == pacbound.test_set_bound(10, 64, 0.025).value
    assert out["test_bound"] == pytest.approx(0.7) and out["non_vacuous"] and out["below_base"]
    assert out["tightness"] == pytest.approx(0.4 / 0.2)
    worse = _with_reference({**rec, "certificate": 0.9}, {"tv_test": 0.3, "test_error": 0.4}, 6 / 7)
    assert worse["test_bound"] == 1.0 and not worse["non_vacuous"] and not worse["below_base"]
    at_guess = _with_reference(
        {**rec, "certificate": 6 / 7}, {"tv_test": 0, "test_error": 0}, 6 / 7
    )
    assert not at_guess["non_vacuous"]  # non-vacuous means strictly below guessing


def test_reach_says_when_no_certificate_of_the_fine_tune_can_be_below_guessing():
    guess = 6 / 7
    # 250 of 256 held-out samples wrong: the fine-tune's error is >= 0.950 at 97.5%
    hopeless = _with_reach(_record(4, 64, 0, cert=1.0, base=1.0, held=250 / 256, n_held=256), guess)
    assert hopeless["held_out_error_lower"] == float(pacbound.test_set_lower_bound(250, 256, 0.025))
    assert hopeless["held_out_error_lower"] == pytest.approx(0.9497, abs=1e-4)
    assert hopeless["out_of_reach"]
    # 201 of 256 wrong (0.785): its lower bound 0.730 leaves room below guessing, but even a
    # free model that good, on the 128 bound rows (100 errors), is certified only at:
    close = _with_reach(_record(4, 256, 1, cert=0.93, base=0.96, held=201 / 256, n_held=256), guess)
    assert close["held_out_error_lower"] < guess and not close["out_of_reach"]
    assert close["best_case_certificate"] == pacbound.test_set_bound(100, 128, 0.025).value
    assert guess > close["best_case_certificate"] > close["held_out_error"]
    # the cut is at the lower bound itself: at exactly guessing it is out of reach
    at = _with_reach(_record(4, 64, 0, 1.0, 1.0, held=0.9, n_held=256), guess)
    assert _with_reach(at, at["held_out_error_lower"])["out_of_reach"]


def test_summary_cells_counts_and_dstar():
    facts = {2: (0.6, 0.50), 4: (0.3, 0.40), 6: (0.1, 0.45)}  # tv, test error per d
    certs = {2: (0.10, 0.12), 4: (0.50, 0.60), 6: (0.95, 0.97)}  # two seeds per d
    records = [
        _with_reference(
            _record(d, 256, s, certs[d][s], 0.9, held=certs[d][s] - 0.05),
            {"tv_test": facts[d][0], "test_error": facts[d][1]},
            6 / 7,
        )
        for d in (2, 4, 6)
        for s in (0, 1)
    ]
    res = summarise_certificates("sw", records, 6 / 7, {"prior_fraction": 0.5, "delta": 0.025})
    assert res.counts["runs"] == 6 and res.counts["non_vacuous"] == 4
    assert res.counts["by_difficulty"]["6"] == {"runs": 2, "non_vacuous": 0}
    assert res.counts["below_base"] == 4
    # d = 6: 0.90 or 0.92 held-out error in 64 samples; lower bounds 0.81 and 0.83 < 6/7
    assert res.counts["out_of_reach"] == 0
    assert all("held_out_error_lower" in r for r in res.records)
    cell = next(c for c in res.cells if c["difficulty"] == 2.0)
    assert cell["certificate"] == pytest.approx(0.11) and cell["seeds"] == 2
    (row,) = res.dstar
    assert row["empirical_dstar"] == 4.0  # lowest mean test error
    # certificate + TV: d=2 0.71, d=4 0.85, d=6 1.0 -> the bound picks d = 2
    assert row["bound_minimiser"] == 2.0 and row["min_test_bound"] == pytest.approx(0.71)
    assert row["certificate_minimiser"] == row["held_out_minimiser"] == 2.0
    assert row["rank_agreement"] == pytest.approx(1.0)
    text = str(res)
    assert "non-vacuous (below the guessing error 0.857): 4 of 6" in text
    assert "(the fine-tune's own error is at least that, lower confidence bound): 0." in text
    assert "empirical d* = 4, minimiser of certificate + TV = 2 (differs)" in text
    # every d vacuous: the bound names no minimiser (a tie at 1 is not an agreement)
    vacuous = [
        {**r, "test_bound": 1.0, "certificate": min(1.0, r["certificate"] + 0.9)} for r in records
    ]
    (row,) = summarise_certificates(
        "sw", vacuous, 6 / 7, {"prior_fraction": 0.5, "delta": 0.1}
    ).dstar
    assert row["bound_minimiser"] is None and row["certificate_minimiser"] is None
    assert "minimiser of certificate + TV = none" in str(
        summarise_certificates("sw", vacuous, 6 / 7, {"prior_fraction": 0.5, "delta": 0.1})
    )
    with pytest.raises(InvalidParameterError, match="no certified runs"):
        summarise_certificates("sw", [], 6 / 7, {})


def test_certify_section_validated_and_kept_out_of_run_ids():
    base = {"difficulty": {"centers": [2, 6]}, "budget": {"n": [8]}}
    plain = SweepSpec.from_dict(base)
    on = SweepSpec.from_dict({**base, "certify": {"enabled": True, "prior_fraction": 0.25}})
    assert on["certify.enabled"] and on["certify.prior_fraction"] == 0.25
    assert plain.hash_payload() == on.hash_payload()  # certifying does not change the runs
    with pytest.raises(Exception, match=r"`certify.prior_fraction` must be"):
        SweepSpec.from_dict({**base, "certify": {"prior_fraction": 1.5}})
    with pytest.raises(Exception, match=r"unknown field `certify.fraction`"):
        SweepSpec.from_dict({**base, "certify": {"fraction": 0.5}})


@pytest.mark.parametrize(
    "name", ["calibrated-epochs", "calibrated-steps", "calibrated-epochs-seeds34", "epochs"]
)
def test_committed_sweeps_keep_their_run_ids(name):
    """Every finished run committed under paper/runs/<name> is still planned under the same id
    by its spec (fields added later must not re-key old runs: a rerun would train them again)."""
    from fits.sweep._runner import prepare_sweep

    spec = load_spec(ROOT / "paper" / "specs" / f"{name}.toml")
    plan = prepare_sweep(spec, ROOT / "paper" / "runs" / name, write=False)
    finished = {
        p.parent.name for p in (ROOT / "paper" / "runs" / name).glob("runs/*/run_meta.json")
    }
    assert finished and finished <= {r.run_id for r in plan.runs}
    assert not plan.pending()


@pytest.mark.usefixtures("sweep_env")
def test_sweep_run_with_certify_section_and_sweep_certify(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(
        "[task]\ntest_per_op = 2\n[difficulty]\ncenters = [2, 6]\n[budget]\nn = [16]\n"
        "[train]\nbatch_size = 8\n[eval]\nbatch_size = 64\n"
        "[certify]\nenabled = true\nheld_out = 32\n",
        encoding="utf-8",
    )
    sweep = tmp_path / "sw"
    res = runner.invoke(app, ["sweep", "run", str(spec), "--out", str(sweep), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["ran"] == 2
    certs = out["certificates"]
    assert certs["counts"]["runs"] == 2 and certs["options"]["held_out"] == 32
    for rec in certs["records"]:
        assert 0.0 <= rec["certificate"] <= 1.0 and 0.0 <= rec["base_certificate"] <= 1.0
        assert rec["n_bound"] == 8 and rec["n_held_out"] == 32
        assert rec["held_out_test_set_bound"] >= rec["held_out_error"]
        assert rec["test_bound"] == min(1.0, rec["certificate"] + rec["tv_test"])
    summary = sweep / "certificates" / "summary.json"
    assert json.loads(summary.read_text())["counts"]["runs"] == 2
    assert (sweep / "certificates" / "certificates.csv").is_file()
    for plot in ("certificates", "certificate_dstar"):
        assert (sweep / "certificates" / "plots" / f"{plot}.png").stat().st_size > 1000
    saved = sorted((sweep / "certificates").glob("*/certificate.json"))
    assert len(saved) == 2
    stamps = [p.stat().st_mtime_ns for p in saved]

    # the command reuses the saved certificates of the same options
    res = runner.invoke(app, ["sweep", "certify", str(sweep), "--json", "--held-out", "32"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["records"] == certs["records"]
    assert [p.stat().st_mtime_ns for p in saved] == stamps
    res = runner.invoke(app, ["sweep", "certify", str(sweep), "--held-out", "32"])
    assert res.exit_code == 0 and "In-distribution certificates of 2 runs" in res.stdout

    res = runner.invoke(app, ["sweep", "certify", str(sweep), "--seeds", "5"])
    assert res.exit_code == 2 and "no finished runs with seeds [5]" in res.stderr
    res = runner.invoke(app, ["sweep", "certify", str(sweep), "--seeds", "a"])
    assert res.exit_code == 2 and "`seeds` must be a non-negative integer" in res.stderr
    res = runner.invoke(app, ["sweep", "certify", str(sweep), "--delta", "1.5"])
    assert res.exit_code == 2 and "`delta` must be in (0, 1)" in res.stderr
    res = runner.invoke(app, ["sweep", "certify", str(tmp_path)])
    assert res.exit_code == 2 and "not a sweep folder" in res.stderr


def test_sweep_certify_refuses_lora_sweeps(tmp_path):
    folder = tmp_path / "lora"
    folder.mkdir()
    spec = SweepSpec.from_dict(
        {"difficulty": {"centers": [2]}, "budget": {"n": [8]}, "train": {"finetune": "lora"}}
    )
    (folder / "sweep.json").write_text(spec.to_json(), encoding="utf-8")
    res = runner.invoke(app, ["sweep", "certify", str(folder)])
    assert res.exit_code == 2
    assert "need full fine-tunes" in res.stderr and "'lora'" in res.stderr
