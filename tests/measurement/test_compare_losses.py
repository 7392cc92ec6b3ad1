"""``compare_losses``: the library call behind ``tradeoff losses`` (models side by side, bins)."""

from __future__ import annotations

import numpy as np
import pytest

from measurement import LossComparison, compare_losses, example_losses
from pacbound.exceptions import InvalidParameterError

pytest_plugins = ["tests.measurement._data_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")


def test_side_by_side_rows_match_each_models_own_losses(
    tmp_path, jsonl_writer, rows, llama_dir, memorised_dir
):
    # a numeric score column is cut into equal-count tertiles (column `bin`)
    records = [
        {"prompt": p, "completion": c, "split": s, "score": float(i)}
        for i, (p, c, _a, s) in enumerate(rows)
    ]
    data = jsonl_writer(tmp_path / "d.jsonl", records)
    journal = tmp_path / ".l.parquet.journal.jsonl"
    res = compare_losses(
        memorised_dir, data, base=llama_dir, bins="score", n_resamples=20, journal=journal
    )
    assert isinstance(res, LossComparison) and res.bin_column == "bin"
    assert [r.model for r in res.results] == ["base", "finetuned"]
    assert len(res.table) == 2 * len(rows)
    assert list(res.table["bin"].cat.categories) == ["easy", "medium", "hard"]
    assert res.table.groupby("model", observed=True)["bin"].value_counts().eq(4).all()
    assert {"split", "score"} <= set(res.table.columns)
    # each model's rows are its own example_losses, computed independently
    alone = example_losses(memorised_dir, data, p_min=1e-4)
    ft = res.table[res.table.model == "finetuned"]
    np.testing.assert_allclose(ft["nll_sum"], alone.table["nll_sum"], rtol=1e-12)
    base = res.table[res.table.model == "base"]["nll_sum"].to_numpy()
    assert np.abs(base - ft["nll_sum"].to_numpy()).max() > 1e-3
    assert res.report is not None and res.report.to_dict()["generalization"]
    assert not list(tmp_path.glob(".*journal*"))  # removed once every model is scored
    assert set(res.to_dict()) == {"models", "bin_column", "report"}


def test_bad_combinations_name_the_arguments(data_jsonl, llama_dir):
    with pytest.raises(InvalidParameterError, match="`trained_bin` needs `bins`"):
        compare_losses(llama_dir, data_jsonl, trained_bin="easy")
    with pytest.raises(InvalidParameterError, match="`with_base` needs `adapter`"):
        compare_losses(llama_dir, data_jsonl, with_base=True)
    with pytest.raises(InvalidParameterError, match="`bins` must be a column of"):
        compare_losses(llama_dir, data_jsonl, bins="level")
