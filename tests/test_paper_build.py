"""The paper build's data-driven pieces: the claim's verdict rule, the regime criteria and the
real-LM section (empty, and filled from a committed sweep folder standing in for it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

PAPER = Path(__file__).resolve().parents[1] / "paper"
sys.path.insert(0, str(PAPER))

import paths  # noqa: E402
from llm import llm_section  # noqa: E402
from narrative import claim_verdict, criteria  # noqa: E402
from tables import regime_table  # noqa: E402


def _frame(acc: dict[tuple[int, float], list[float]]) -> pd.DataFrame:
    rows = [
        {"n": n, "difficulty": d, "seed": s, "test_acc": a}
        for (n, d), values in acc.items()
        for s, a in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_claim_verdict_supported_reversed_and_unsure():
    sure_harder = _frame(
        {
            (64, 2.0): [0.6, 0.61, 0.62],
            (64, 4.0): [0.4, 0.41, 0.42],
            (1024, 2.0): [0.5, 0.51, 0.52],
            (1024, 4.0): [0.7, 0.71, 0.72],
        }
    )
    assert claim_verdict(sure_harder)[0] == "supported"
    reversed_ = sure_harder.assign(n=sure_harder["n"].map({64: 1024, 1024: 64}))
    assert claim_verdict(reversed_)[0] == "reversed"
    unsure = _frame(
        {
            (64, 2.0): [0.60, 0.40, 0.50],
            (64, 4.0): [0.55, 0.45, 0.49],
            (1024, 2.0): [0.5, 0.51, 0.52],
            (1024, 4.0): [0.7, 0.71, 0.72],
        }
    )
    verdict, text = claim_verdict(unsure)
    assert verdict == "not supported"
    assert "2 -> 4" in text


@pytest.mark.skipif(
    not paths.finished_folders("calibrated-steps"), reason="calibrated sweep not present"
)
def test_criteria_on_the_calibrated_steps_sweep():
    table, why = regime_table("calibrated-steps")
    assert table is not None, why
    crit = criteria(table)
    assert crit["B"][0] and crit["L"][0] and crit["H"][0]
    assert "+0.128" in crit["H"][1]


def test_llm_section_before_and_after_the_sweep(monkeypatch):
    monkeypatch.setitem(paths.SWEEPS, "smollm2-lora", ("no-such-sweep",))
    assert llm_section("smollm2-lora", None, {}, None).startswith("Not run yet")
    stand_in = "calibrated-steps-seeds34"
    if not paths.finished_folders("calibrated-steps"):
        pytest.skip("calibrated sweep not present")
    import fits

    monkeypatch.setitem(paths.SWEEPS, "smollm2-lora", (stand_in,))
    frame = fits.load_runs([str(f) for f in paths.finished_folders("smollm2-lora")])
    text = llm_section("smollm2-lora", frame, {}, regime_table("smollm2-lora"))
    assert f"{len(frame)} finished runs in `paper/runs/{stand_in}/`" in text
    assert "full fine-tuning" in text and "In-distribution error on D_train(d)" in text
    assert "| n | best d |" in text
