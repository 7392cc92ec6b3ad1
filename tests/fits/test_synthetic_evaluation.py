"""The decomposed evaluation on the synthetic task, run on the shipped base."""

from __future__ import annotations

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from fits import TaskFormat, decomposed_metrics, decomposed_test_set, find_synthetic_base

pytestmark = pytest.mark.usefixtures("sweep_env")


def test_base_solves_its_range_and_fails_beyond_it():
    folder = find_synthetic_base()
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    problems = decomposed_test_set([1, 4, 7], 10)
    m = decomposed_metrics(model, tok, problems, fmt=TaskFormat(), inrange_ops=(1, 4))
    assert m["ops1_accuracy"] == 1.0 and m["ops4_accuracy"] == 1.0
    assert m["ops7_accuracy"] <= 0.5
    assert m["inrange_n"] == 20 and m["extrap_n"] == 10 and m["test_n"] == 30
    assert m["inrange_loss"] < 0.05 < m["extrap_loss"]
    assert m["test_accuracy"] == pytest.approx(
        (20 * m["inrange_accuracy"] + 10 * m["extrap_accuracy"]) / 30
    )
    assert 0 < m["test_decoded"] <= 30
    no_split = decomposed_metrics(
        model,
        tok,
        problems[:10],
        fmt=TaskFormat(),
        inrange_ops=None,
        per_op=False,
        total_name="train",
    )
    assert set(no_split) == {"train_loss", "train_accuracy", "train_n", "train_decoded"}
