"""In-distribution error against the base's, and P(d is best) by seed resampling."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fits.experiments import (
    best_difficulty_probabilities,
    in_distribution_error,
    sweep_regime_table,
)
from pacbound.exceptions import InputFileError, InvalidParameterError

BASE_ACC = [1.0, 0.9, 0.2, 0.1]


def _write_base(folder, acc=BASE_ACC, per_op=100):
    folder.mkdir(parents=True)
    ev = {"test_accuracy": float(np.mean(acc))}
    for k, a in enumerate(acc, start=1):
        ev[f"ops{k}_accuracy"] = a
        ev[f"ops{k}_n"] = per_op
    (folder / "pretrain_meta.json").write_text(json.dumps({"eval": ev}))
    return folder


def _write_run(root, run_id, *, probs, acc, base, d=2.0, n=64, seed=0, per_op=100):
    run = root / "runs" / run_id
    run.mkdir(parents=True)
    meta = {
        "run_id": run_id,
        "budget_mode": "epochs",
        "difficulty": d,
        "difficulty_label": f"mix{d:g}",
        "n": n,
        "seed": seed,
        "steps": 12,
        "base_model": str(base),
        "difficulty_info": {"distribution": {"probs": probs}},
    }
    (run / "run_meta.json").write_text(json.dumps(meta))
    ev = {"eval_test_accuracy": float(np.mean(acc))}
    for k, a in enumerate(acc, start=1):
        ev[f"eval_ops{k}_accuracy"] = a
        ev[f"eval_ops{k}_n"] = per_op
    (run / "eval_results.json").write_text(json.dumps(ev))


def test_in_distribution_error_is_the_mixture_weighted_error():
    assert in_distribution_error([0.5, 0.5, 0, 0], [1.0, 0.6, 0, 0]) == pytest.approx(0.2)
    assert in_distribution_error([0, 0, 0, 1], BASE_ACC) == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("probs", "acc", "match"),
    [
        ([0.5, 0.4], [1.0, 1.0], "sum to 1"),
        ([0.5, 0.5], [1.0, 1.2], r"\[0, 1\]"),
        ([1.0], [1.0, 1.0], "same length"),
    ],
)
def test_in_distribution_error_rejects_bad_inputs(probs, acc, match):
    with pytest.raises(InvalidParameterError, match=match):
        in_distribution_error(probs, acc)


def test_sweep_table_compares_each_run_with_the_base_on_its_own_mixture(tmp_path):
    base = _write_base(tmp_path / "base")
    sweep = tmp_path / "sweep"
    hard = [0.0, 0.0, 0.5, 0.5]
    _write_run(sweep, "a", probs=hard, acc=[0.9, 0.8, 0.7, 0.5], base=base, d=3.5)
    _write_run(sweep, "b", probs=hard, acc=[0.9, 0.8, 0.5, 0.3], base=base, d=3.5, seed=1)
    table = sweep_regime_table(sweep)
    runs = table.runs.set_index("run_id")
    # base on the hard mixture: 0.5 * 0.8 + 0.5 * 0.9 = 0.85; run a: 0.5 * 0.3 + 0.5 * 0.5
    assert runs.loc["a", "base_indist_error"] == pytest.approx(0.85)
    assert runs.loc["a", "indist_error"] == pytest.approx(0.4)
    assert runs.loc["a", "indist_gain"] == pytest.approx(0.45)
    assert runs.loc["b", "indist_error"] == pytest.approx(0.6)
    assert runs.loc["a", "test_gain"] == pytest.approx(0.725 - 0.55)
    cells = table.cells()
    assert len(cells) == 1
    assert cells.loc[0, "indist_error"] == pytest.approx(0.5)
    assert cells.loc[0, "seeds"] == 2
    assert "in-dist err 0.500 vs base 0.850" in str(table)


def test_sweep_table_refuses_a_base_scored_on_other_test_problems(tmp_path):
    base = _write_base(tmp_path / "base", per_op=50)
    sweep = tmp_path / "sweep"
    _write_run(sweep, "a", probs=[1, 0, 0, 0], acc=[1, 1, 1, 1], base=base)
    with pytest.raises(InputFileError, match="same test set"):
        sweep_regime_table(sweep)


def test_sweep_table_needs_every_op_count(tmp_path):
    base = _write_base(tmp_path / "base", acc=[1.0, 0.9, 0.2])
    sweep = tmp_path / "sweep"
    _write_run(sweep, "a", probs=[0.25] * 4, acc=[1, 1, 1, 1], base=base)
    with pytest.raises(InputFileError, match="ops4_accuracy"):
        sweep_regime_table(sweep)
    with pytest.raises(InputFileError, match="no complete runs"):
        sweep_regime_table(tmp_path / "empty")


def _runs(values):
    rows = []
    for d, seeds in values.items():
        for s, v in enumerate(seeds):
            rows.append({"budget_mode": "epochs", "n": 64, "difficulty": d, "seed": s, "acc": v})
    return pd.DataFrame(rows)


def test_best_probabilities_find_a_clear_winner_and_sum_to_one():
    out = best_difficulty_probabilities(
        _runs({2.0: [0.5, 0.52, 0.51], 4.0: [0.7, 0.72, 0.71], 6.0: [0.1, 0.2, 0.15]}),
        value="acc",
    )
    p = out.set_index("difficulty")["p_best"]
    assert p[4.0] == 1.0 and p[2.0] == 0.0
    assert out["p_best"].sum() == pytest.approx(1.0)


def test_best_probabilities_reflect_overlapping_seeds():
    # d=2 wins only when its one high seed is drawn often enough
    out = best_difficulty_probabilities(
        _runs({2.0: [0.9, 0.1, 0.1], 4.0: [0.4, 0.4, 0.4]}), value="acc", n_resamples=4000
    )
    p = out.set_index("difficulty")["p_best"]
    # mean of 3 draws from {0.9, 0.1, 0.1} exceeds 0.4 iff >= 2 draws are 0.9: 7/27
    assert p[2.0] == pytest.approx(7 / 27, abs=0.03)
    assert p[4.0] == pytest.approx(20 / 27, abs=0.03)


def test_best_probabilities_split_exact_ties():
    out = best_difficulty_probabilities(_runs({2.0: [0.5], 4.0: [0.5]}), value="acc")
    assert out["p_best"].tolist() == [0.5, 0.5]
    with pytest.raises(InvalidParameterError, match="lacks the columns"):
        best_difficulty_probabilities(_runs({2.0: [0.5]}), value="nope")


def test_a_base_without_its_own_evaluation_is_read_from_the_sweeps_base_eval(tmp_path):
    base = tmp_path / "foreign-base"
    base.mkdir()
    root = tmp_path / "sweep"
    _write_run(root, "r0", probs=[0, 0, 0, 1], acc=[1.0, 1.0, 0.6, 0.5], base=base)
    with pytest.raises(InputFileError, match="tradeoff sweep base-eval"):
        sweep_regime_table(root)
    scored = {"eval_test_accuracy": 0.55}
    for k, a in enumerate(BASE_ACC, start=1):
        scored[f"eval_ops{k}_accuracy"] = a
        scored[f"eval_ops{k}_n"] = 100
    (root / "base_eval.json").write_text(json.dumps(scored))
    table = sweep_regime_table(root)
    assert table.base_test_accuracy == 0.55 and table.base_per_op == tuple(BASE_ACC)
    (row,) = table.runs.itertuples()
    assert row.base_indist_error == pytest.approx(0.9) and row.indist_error == pytest.approx(0.5)
