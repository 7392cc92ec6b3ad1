"""Theory against empirics: every bound term per run, with the exact TV and the weight KL."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fits import SpecError, run_sweep
from fits.experiments._theory import SIGMA_GRID, TheoryConfig, TheoryResult, theory_for_sweep
from measurement import WeightStats
from pacbound import kl_bound, kl_inv_upper

pytestmark = pytest.mark.usefixtures("sweep_env")

SPEC = {
    "name": "theory",
    "task": {"test_per_op": 2},
    "difficulty": {"centers": [2, 6]},
    "budget": {"n": [8, 16], "seeds": [0]},
    "train": {"batch_size": 8},
    "eval": {"batch_size": 64},
}


@pytest.fixture(scope="module")
def theory(tmp_path_factory):
    root = tmp_path_factory.mktemp("theory")
    run_sweep(SPEC, root)
    cfg = TheoryConfig(sigma_grid=(1e-3, 3e-2, 1.0), gibbs_samples=3, gibbs_batch=4)
    return root, theory_for_sweep(root, cfg)


def test_terms_are_the_exact_quantities(theory):
    root, res = theory
    assert len(res.per_run) == 4 and len(res.per_sigma) == 12
    for _, row in res.per_run.iterrows():
        folder = root / "runs" / row["run_id"]
        meta = json.loads((folder / "run_meta.json").read_text())
        results = json.loads((folder / "all_results.json").read_text())
        sq = float(WeightStats.load(folder).table["sq_delta"].sum())
        assert row["tv"] == meta["difficulty_info"]["tv_test"]
        assert row["train_error"] == pytest.approx(1 - results["eval_train_accuracy"])
        assert row["test_error"] == pytest.approx(1 - results["eval_test_accuracy"])
        assert row["kl"] == pytest.approx(sq / (2 * row["sigma"] ** 2), rel=1e-12)
        # the certified risk and the bound, recomputed from their definitions
        q = float(kl_inv_upper(row["gibbs_mean"], math.log(3 / 0.025) / 3))
        assert row["q_cert"] == pytest.approx(q)
        gen = kl_bound(q, row["kl"], int(row["n"]), 0.025, union={"sigma grid": 3}).value
        # the in-distribution certificate is reported apart from the test bound (+ TV)
        assert row["certificate"] == pytest.approx(gen)
        assert row["bound"] == pytest.approx(row["certificate"] + row["tv"])
        assert row["vacuous"] == (row["bound"] >= 1)
        assert row["certificate_vacuous"] == (row["certificate"] >= 1)
        # the observed decomposition test = train + gen_gap + ext_gap, and ext_gap <= TV exactly
        assert row["train_error"] + row["gen_gap"] + row["ext_gap"] == pytest.approx(
            row["test_error"]
        )
        assert row["ext_gap"] <= row["tv"] + 1e-12
        # the chosen sigma minimises the bound over the grid
        sub = res.per_sigma[res.per_sigma["run_id"] == row["run_id"]]
        assert row["bound"] == pytest.approx(sub["bound"].min())
    tv = res.per_run.set_index("difficulty")["tv"]
    k = np.arange(1, 9)
    w = np.exp(-((k - 2.0) ** 2) / (2 * 1.5**2))
    assert tv.loc[2.0].iloc[0] == pytest.approx(0.5 * np.abs(w / w.sum() - 1 / 8).sum(), abs=1e-15)


def test_tables_notes_and_files(theory, tmp_path):
    _, res = theory
    assert set(res.dstar.columns) >= {"n", "dstar_empirical", "dstar_bound", "agree"}
    assert len(res.dstar) == 2
    assert any("vacuous" in note for note in res.notes)
    assert "Theory against empirics" in str(res)
    path = res.save(tmp_path)
    data = json.loads(path.read_text())
    assert data["config"]["sigma_grid"] == [1e-3, 3e-2, 1.0]
    assert len(data["per_run"]) == 4 and (tmp_path / "theory_per_run.csv").is_file()
    again = TheoryResult.load(tmp_path)
    assert again.notes == res.notes and again.config == res.config
    assert np.allclose(again.per_run["bound"], res.per_run["bound"])
    assert np.all(np.diff(SIGMA_GRID) > 0) and len(SIGMA_GRID) == 13
    from fits import save_chart
    from fits.sweep._charts import theory_charts

    charts = theory_charts(res)
    assert set(charts) == {"theory_bound", "theory_certificate", "theory_dstar"}
    files = save_chart(charts["theory_bound"], tmp_path / "bound")
    assert files["png"].stat().st_size > 1000
    # the certificate in JSON and both CSV files, and its own note
    assert {"certificate", "bound", "tv"} <= set(data["per_cell"][0])
    assert "certificate" in (tmp_path / "theory_per_cell.csv").read_text().splitlines()[0]
    assert any(note.startswith("The in-distribution certificate") for note in res.notes)
    text = str(res)
    assert "certificate(in-dist)" in text and "test_bound(+TV)" in text
    # a theory.json written before the certificate had its name still loads
    old = json.loads(path.read_text())
    for key in ("per_sigma", "per_run", "per_cell"):
        for rec in old[key]:
            rec["gen_bound"] = rec.pop("certificate")
    path.write_text(json.dumps(old))
    assert np.allclose(
        TheoryResult.load(tmp_path).per_cell["certificate"], res.per_cell["certificate"]
    )


def test_how_far_each_run_is_from_a_certificate_below_guessing(theory, tmp_path):
    from fits.experiments import nonvacuous_headroom

    _, res = theory
    assert res.guess_error == pytest.approx(6 / 7)  # task.prime = 7 by default
    head = res.headroom
    assert list(head["run_id"]) == list(res.per_run["run_id"])
    again = nonvacuous_headroom(res.per_sigma, guess_error=6 / 7, delta=0.05, grid=3)
    assert np.array_equal(head["kl_factor"], again["kl_factor"])
    # F <= 1 exactly where the run's certificate is already below guessing at some sigma
    below = res.per_sigma.groupby("run_id")["certificate"].min() < 6 / 7
    assert (head.set_index("run_id")["kl_factor"] <= 1).to_dict() == below.to_dict()
    assert any(
        note.startswith("Base-relative certificate below the guessing") for note in res.notes
    )
    assert "How far from a certificate below the guessing error 0.857" in str(res)
    res.save(tmp_path)
    assert "kl_factor" in (tmp_path / "theory_headroom.csv").read_text().splitlines()[0]
    loaded = TheoryResult.load(tmp_path)
    assert loaded.guess_error == res.guess_error
    assert np.array_equal(loaded.headroom["kl_factor"], head["kl_factor"])
    # a result without a guessing error (files written before it) has no headroom
    import dataclasses

    assert dataclasses.replace(res, guess_error=None).headroom is None


def test_the_certificate_stays_visible_where_the_test_bound_is_vacuous(theory):
    """d = 6, 8: training error + TV >= 1, so only the in-distribution part carries information."""
    import dataclasses

    from fits.experiments._theory import _notes
    from fits.sweep._charts import theory_charts

    _, res = theory
    per_run = res.per_run.copy()
    per_cell = res.per_cell.copy()
    for frame in (per_run, per_cell):
        frame["certificate"] = 0.4
        frame["tv"] = np.where(frame["difficulty"] == 6, 0.8, 0.1)
        frame["bound"] = frame["certificate"] + frame["tv"]
    per_run["vacuous"] = per_run["bound"] >= 1
    notes = _notes(per_run, per_cell, res.dstar)
    hard = int((per_run["difficulty"] == 6).sum())
    assert hard > 0
    assert any(f"below 1 for {hard} run(s) whose test bound is vacuous" in n for n in notes)
    charts = theory_charts(dataclasses.replace(res, per_run=per_run, per_cell=per_cell))
    spec = charts["theory_certificate"].to_dict()
    values = next(iter(spec["datasets"].values()))
    shown = [v for v in values if v["term"] == "in-distribution certificate"]
    assert {v["difficulty"] for v in shown} == {2.0, 6.0}
    assert all(v["value"] == 0.4 for v in shown)
    assert spec["spec"]["layer"][0]["encoding"]["y"]["scale"]["domain"] == [0, 1.05]


def test_plug_in_only_and_bad_input(theory, tmp_path):
    root, _ = theory
    res = theory_for_sweep(root, TheoryConfig(sigma_grid=(0.1, 1.0), gibbs_samples=0))
    assert res.per_run["q_cert"].isna().all() and res.per_run["plugin_bound"].notna().all()
    with pytest.raises(SpecError, match="not a sweep folder"):
        theory_for_sweep(tmp_path)
