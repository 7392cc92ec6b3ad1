"""A base the sweep did not pre-train, scored on the sweep's own test set (base_eval.json)."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from fits import find_synthetic_base, run_sweep
from fits.cli import app
from fits.experiments import sweep_regime_table
from fits.sweep import BASE_EVAL_FILE, evaluate_sweep_base

pytestmark = pytest.mark.usefixtures("sweep_env")


def test_a_foreign_base_is_scored_like_the_runs_and_feeds_the_regime_table(tmp_path):
    base = tmp_path / "base"
    shutil.copytree(find_synthetic_base(), base)
    (base / "pretrain_meta.json").unlink(missing_ok=True)
    spec = {
        "name": "foreign",
        "base": {"kind": "path", "path": str(base)},
        "task": {"max_ops": 4, "test_per_op": 2, "inrange_ops": "1-2"},
        "difficulty": {"centers": [2]},
        "budget": {"n": [8], "seeds": [0]},
        "train": {"batch_size": 4},
        "eval": {"batch_size": 64},
        "resources": {"workers": 1},
    }
    sweep = tmp_path / "sweep"
    run_sweep(spec, sweep, progress=False)
    with pytest.raises(Exception, match="base-eval"):
        sweep_regime_table(sweep)
    result = CliRunner().invoke(app, ["sweep", "base-eval", str(sweep), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    saved = json.loads((sweep / BASE_EVAL_FILE).read_text())
    assert printed == saved
    (run_dir,) = (sweep / "runs").iterdir()
    run_eval = json.loads((run_dir / "eval_results.json").read_text())
    for k in range(1, 5):  # same test problems per op count as the runs
        assert saved[f"eval_ops{k}_n"] == run_eval[f"eval_ops{k}_n"] == 2
        assert 0.0 <= saved[f"eval_ops{k}_accuracy"] <= 1.0
    table = sweep_regime_table(sweep)
    assert table.base_test_accuracy == pytest.approx(saved["eval_test_accuracy"])
    # saved metrics are returned without scoring again
    assert evaluate_sweep_base(sweep) == saved
