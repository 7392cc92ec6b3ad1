"""The demo's "where fine-tuning beat the base" lines and its calibrated spec."""

from __future__ import annotations

import pandas as pd

from fits.experiments._demo import FULL, QUICK, DemoResult, demo_spec
from fits.sweep._bases import pretrain_config_for
from fits.sweep._spec import SweepSpec
from fits.synthetic import find_synthetic_base


def _result(regime, base=0.4):
    observed = pd.DataFrame(
        [
            {
                "budget_mode": r["budget_mode"],
                "n": r["n"],
                "difficulty": r["difficulty"],
                "test_acc": r["test_accuracy"],
            }
            for r in regime
        ]
        or [{"budget_mode": "epochs", "n": 64, "difficulty": 2.0, "test_acc": 0.4}]
    )
    timings = {"sweep": 1.0, "fit": 1.0, "report": 1.0, "total": 3.0}
    return DemoResult("out", True, (), {}, observed, base, timings, {}, tuple(regime))


def _row(mode, n, d, acc, e, eb):
    return {
        "budget_mode": mode,
        "n": n,
        "difficulty": d,
        "seeds": 1,
        "test_accuracy": acc,
        "test_gain": acc - 0.4,
        "indist_error": e,
        "base_indist_error": eb,
        "indist_gain": eb - e,
    }


def test_beat_base_lines_say_where_and_by_how_much():
    res = _result(
        [
            _row("epochs", 64, 2.0, 0.39, 0.35, 0.31),
            _row("epochs", 64, 4.0, 0.20, 0.85, 0.87),
            _row("epochs", 256, 2.0, 0.60, 0.06, 0.31),
            _row("epochs", 256, 4.0, 0.45, 0.70, 0.87),
        ]
    )
    lines = res.beat_base_lines()
    assert len(lines) == 2
    assert lines[0].startswith("- [epochs] n=64: no difficulty beat the base")
    assert "(best d=2: 0.390 vs 0.400, -0.010)" in lines[0]
    assert "best d=2 beat the base by +0.200 (0.600 vs 0.400)" in lines[1]
    assert "2 of 2 difficulties above the base" in lines[1]
    assert "d=4 0.700 vs 0.870" in lines[1]
    text = str(res)
    assert "Where fine-tuning beat the base" in text and lines[1] in text
    assert res.to_dict()["beat_base"] == lines
    assert "Where fine-tuning beat the base" not in str(_result([]))


def test_demo_uses_the_calibrated_shipped_base():
    for quick in (True, False):
        spec = SweepSpec.from_dict(demo_spec(quick), "demo spec")
        assert spec["base.ops"] == "1-2" and spec["task.max_ops"] == 6
        # the base's own evaluation (100 per op) is the demo's test set
        assert spec["task.test_per_op"] == 100
        assert find_synthetic_base(pretrain_config_for(spec)) is not None
    assert len(QUICK["centers"]) >= 4 and len(FULL["n"]) >= 3
