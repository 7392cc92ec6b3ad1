"""A base the sweep did not pre-train, scored on the sweep's own test set (base_eval.json)."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

import pacbound
from fits import find_synthetic_base, run_sweep
from fits.cli import app
from fits.experiments import certify_on_fresh_samples, sweep_regime_table
from fits.sweep import BASE_EVAL_FILE, evaluate_sweep_base
from fits.sweep._runner import load_plan
from pacbound.exceptions import InvalidParameterError

pytestmark = pytest.mark.usefixtures("sweep_env")


def test_a_run_is_certified_on_fresh_rows_beside_the_base(foreign_sweep):
    plan = load_plan(foreign_sweep)
    (run,) = plan.runs
    cert = certify_on_fresh_samples(
        plan.spec,
        run,
        foreign_sweep / "runs" / run.run_id,
        n_bound=40,
        delta=0.1,
        progress=False,
    )
    assert cert.certificate_kind == "fresh-bound-set" and cert.bound["n"] == 40
    for value, risk in (
        (cert.certificate, cert.bound["prior_risk"]),
        (cert.base_certificate, cert.bound["base_risk"]),
    ):
        k = round(risk * 40)
        assert value == pytest.approx(pacbound.test_set_bound(k, 40, 0.1).value, rel=1e-12)
        assert risk <= value <= 1.0
    assert cert.split["n_prior"] == run.n and cert.split["prior_fraction"] == 8 / 48
    assert any("i.i.d." in a for a in cert.assumptions)
    # fresh rows come from a seed stream distinct from the training set's
    assert cert.split["split_seed"] != run.seed
    with pytest.raises(InvalidParameterError, match="delta"):
        certify_on_fresh_samples(plan.spec, run, foreign_sweep, delta=1.0, progress=False)
    # the base's certificate on the same rows can be reused (same d, seed, n_bound, delta)
    earlier = {
        "value": cert.base_certificate,
        "risk": cert.bound["base_risk"],
        "method": cert.bound["method"],
        "difficulty_label": run.difficulty_label,
        "seed": run.seed,
        "n_bound": 40,
        "delta": 0.1,
    }
    kw = dict(n_bound=40, delta=0.1, progress=False)
    again = certify_on_fresh_samples(
        plan.spec, run, foreign_sweep / "runs" / run.run_id, base_result=earlier, **kw
    )
    assert again.base_certificate == cert.base_certificate
    assert again.certificate == cert.certificate
    assert "earlier call" in again.assumptions[-1]
    with pytest.raises(InvalidParameterError, match="same rows and delta"):
        certify_on_fresh_samples(
            plan.spec, run, foreign_sweep, base_result={**earlier, "seed": 9}, **kw
        )


@pytest.fixture(scope="module")
def foreign_sweep(tmp_path_factory, sweep_env):
    """A one-run sweep of the synthetic task on a base folder without its own evaluation."""
    tmp_path = tmp_path_factory.mktemp("foreign")
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
    return sweep


def test_a_foreign_base_is_scored_like_the_runs_and_feeds_the_regime_table(foreign_sweep):
    sweep = foreign_sweep
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
