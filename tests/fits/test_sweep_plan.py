"""Planned runs: the grid, readable content-addressed run ids, and step counts."""

from __future__ import annotations

from fits import SweepSpec
from fits.sweep._plan import plan_runs
from fits.sweep._tasks import Difficulty

DIFFS = [Difficulty("mix2", 2.0), Difficulty("mix6", 6.0)]
BASE = {"kind": "synthetic", "config_hash": "abc"}
TASK = {"task": "synthetic"}


def _spec(**budget):
    return SweepSpec.from_dict(
        {"difficulty": {"centers": [2, 6]}, "budget": {"n": [16, 100], **budget}}
    )


def test_grid_and_ids_are_stable_and_readable():
    spec = _spec(seeds=[0, 1], modes=["epochs", "steps"])
    runs = plan_runs(spec, DIFFS, BASE, TASK)
    assert len(runs) == 2 * 2 * 2 * 2
    assert len({r.run_id for r in runs}) == len(runs)
    assert runs == plan_runs(spec, DIFFS, BASE, TASK)
    r = runs[0]
    assert r.run_id.startswith(f"{r.difficulty_label}-n{r.n}-s{r.seed}-{r.budget_mode}-")
    # the same cell under the same config keeps its id when the grid grows
    bigger = plan_runs(_spec(seeds=[0, 1, 2], modes=["epochs", "steps"]), DIFFS, BASE, TASK)
    assert {x.run_id for x in runs} <= {x.run_id for x in bigger}


def test_ids_change_with_the_config_base_or_task():
    ids = {r.run_id for r in plan_runs(_spec(), DIFFS, BASE, TASK)}
    lr = SweepSpec.from_dict(
        {"difficulty": {"centers": [2, 6]}, "budget": {"n": [16, 100]}, "train": {"lr": 3e-4}}
    )
    assert ids.isdisjoint(r.run_id for r in plan_runs(lr, DIFFS, BASE, TASK))
    assert ids.isdisjoint(r.run_id for r in plan_runs(_spec(), DIFFS, {"kind": "x"}, TASK))
    assert ids.isdisjoint(r.run_id for r in plan_runs(_spec(), DIFFS, BASE, {"task": "y"}))


def test_steps_follow_the_trainer_arithmetic():
    runs = {
        (r.n, r.budget_mode): r
        for r in plan_runs(
            _spec(modes=["epochs", "steps"], epochs=3, steps=50), DIFFS[:1], BASE, TASK
        )
    }
    assert runs[(16, "epochs")].steps == 3 and runs[(16, "epochs")].epochs == 3
    assert runs[(100, "epochs")].steps == 3 * 7  # ceil(100 / 16) batches per epoch
    assert runs[(16, "steps")].steps == 50 and runs[(16, "steps")].epochs == 50
    assert runs[(100, "steps")].epochs == 50 / 7
