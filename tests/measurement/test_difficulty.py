"""Difficulty scores: pass@k against its closed form, and every measure on real tiny models."""

from __future__ import annotations

import math

import numpy as np
import pytest

from measurement import (
    AnswerChecker,
    DifficultyScores,
    ExampleSet,
    example_losses,
    load_examples,
    pass_at_k,
    score_difficulty,
)
from measurement._lm import encode_examples
from measurement.exceptions import DatasetError
from pacbound.exceptions import InvalidParameterError

pytest_plugins = ["tests.measurement._data_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")


def test_pass_at_k_matches_the_binomial_closed_form():
    for n in range(1, 13):
        for c in range(n + 1):
            for k in range(1, n + 1):
                closed = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(closed, abs=1e-12)
    assert float(pass_at_k(200, 0, 10)) == 0.0
    assert float(pass_at_k(200, 191, 10)) == 1.0  # n - c < k
    assert pass_at_k(20, 3, 1) == pytest.approx(3 / 20)  # pass@1 is the pass rate
    out = pass_at_k([10, 10, 10], [0, 5, 10], 2)
    assert out.shape == (3,) and out[0] == 0 and out[2] == 1
    # large n: the product form stays accurate where the binomials overflow floats
    assert pass_at_k(2000, 1000, 500) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("n", "c", "k", "message"),
    [
        (5, 6, 1, r"`c` must be in \[0, n\]; got 6"),
        (5, -1, 1, r"`c` must be in \[0, n\]; got -1"),
        (5, 2, 6, r"`n` must be >= k = 6; got 5"),
        (5, 2, 0, r"`k` must be an integer >= 1; got 0"),
    ],
)
def test_pass_at_k_bad_input(n, c, k, message):
    with pytest.raises(InvalidParameterError, match=message):
        pass_at_k(n, c, k)


def test_length_counts_completion_tokens(data_jsonl, tokenizer, llama_dir):
    scores = score_difficulty(data_jsonl, "length", tokenizer=tokenizer)
    assert isinstance(scores, DifficultyScores)
    ex = load_examples(data_jsonl)
    enc = encode_examples(tokenizer, ex.prompts, ex.completions)
    assert list(scores.table["n_completion_tokens"]) == [e.n_completion for e in enc]
    assert list(scores.values) == [float(e.n_completion) for e in enc]
    # the model path gives its tokenizer; the result is the same
    again = score_difficulty(data_jsonl, "length", model=llama_dir)
    assert list(again.values) == list(scores.values)
    assert scores.column == "difficulty_length"
    assert "difficulty_length" in str(scores)
    assert scores.to_dict()["n_unscored"] == 0


def test_nll_and_ifd_agree_with_the_losses(data_jsonl, llama_dir):
    nll = score_difficulty(data_jsonl, "nll", model=llama_dir, batch_size=5)
    losses = example_losses(llama_dir, data_jsonl)
    np.testing.assert_allclose(nll.values, losses.table["nll_mean"], rtol=1e-5)
    ifd = score_difficulty(data_jsonl, "ifd", model=llama_dir)
    t = ifd.table
    np.testing.assert_allclose(t["ifd_nll_conditional"], losses.table["nll_mean"], rtol=1e-5)
    np.testing.assert_allclose(t["ifd"], t["ifd_nll_conditional"] / t["ifd_nll_unconditional"])
    # the answer alone is scored after the BOS token only: check one row by hand
    ex = load_examples(data_jsonl).subset([1])
    alone = example_losses(llama_dir, ExampleSet(ex.source, ex.table, ("",), ex.completions))
    assert t["ifd_nll_unconditional"][1] == pytest.approx(alone.table["nll_mean"][0], rel=1e-5)


def test_passrate_separates_memorised_from_unseen(data_jsonl, memorised_dir, rows):
    kw = dict(model=memorised_dir, n_samples=6, k=2, max_new_tokens=20, temperature=0.5)
    scores = score_difficulty(data_jsonl, "passrate", **kw)
    t = scores.table
    has_answer = [r[2] is not None for r in rows]
    train = np.array([r[3] == "train" for r in rows]) & has_answer
    held_out = np.array([r[3] == "test" for r in rows]) & has_answer
    assert t["pass_rate"][train].mean() > 0.5
    assert t["pass_rate"][held_out].mean() < t["pass_rate"][train].mean()
    # rows without a reference answer get no score, and are counted
    assert t["pass_rate"][~np.array(has_answer)].isna().all()
    assert scores.settings["n_without_reference"] == sum(not h for h in has_answer)
    ok = np.array(has_answer)
    np.testing.assert_allclose(t["pass_rate"][ok], t["pass_correct"][ok].astype(float) / 6)
    np.testing.assert_allclose(
        t["pass_at_k"][ok], pass_at_k(6, t["pass_correct"][ok].astype(int).to_numpy(), 2)
    )
    np.testing.assert_allclose(t["difficulty_passrate"][ok], 1 - t["pass_at_k"][ok])
    # seeded: the same seed gives the same counts
    again = score_difficulty(data_jsonl, "passrate", **kw)
    assert list(again.table["pass_correct"][ok]) == list(t["pass_correct"][ok])


def test_user_column(tmp_path, jsonl_writer):
    recs = [{"prompt": "a", "completion": "b", "level": lv} for lv in (3, 1, "2")]
    path = jsonl_writer(tmp_path / "lv.jsonl", recs)
    s = score_difficulty(path, "column", column="level")
    assert list(s.values) == [3.0, 1.0, 2.0] and s.column == "difficulty_level"
    neg = score_difficulty(path, "column", column="level", higher_is_harder=False)
    assert list(neg.values) == [-3.0, -1.0, -2.0]
    bad = jsonl_writer(
        tmp_path / "bad.jsonl", [*recs, {"prompt": "a", "completion": "b", "level": "hard"}]
    )
    with pytest.raises(DatasetError, match=r"row 3, field 'level' must be a number; got 'hard'"):
        score_difficulty(bad, "column", column="level")
    with pytest.raises(DatasetError, match="column 'lvl' is missing"):
        score_difficulty(path, "column", column="lvl")
    with pytest.raises(InvalidParameterError, match="`column` must name a dataset column"):
        score_difficulty(path, "column")


def test_bad_measure_and_missing_model(data_jsonl, llama_dir, tmp_path, jsonl_writer):
    with pytest.raises(InvalidParameterError, match="`by` must be one of"):
        score_difficulty(data_jsonl, "entropy", model=llama_dir)
    with pytest.raises(InvalidParameterError, match="`model` must be the base model"):
        score_difficulty(data_jsonl, "nll")
    with pytest.raises(InvalidParameterError, match="`model` or `tokenizer` must be given"):
        score_difficulty(data_jsonl, "length")
    with pytest.raises(InvalidParameterError, match="`k` must be <= n_samples = 2; got 3"):
        score_difficulty(data_jsonl, "passrate", model=llama_dir, n_samples=2, k=3)
    no_answers = jsonl_writer(tmp_path / "na.jsonl", [{"prompt": "a", "completion": "b c"}])
    with pytest.raises(DatasetError, match="no row has a reference answer"):
        score_difficulty(no_answers, "passrate", model=llama_dir, checker=AnswerChecker())


def test_a_killed_scoring_run_resumes(data_jsonl, llama, tokenizer, tmp_path):
    journal = tmp_path / "scores.journal.jsonl"

    def die_on_second_batch(_module, _args, _kwargs):
        # a kill once the first batch is in the journal (header + one line)
        if journal.exists() and len(journal.read_text().splitlines()) >= 2:
            raise KeyboardInterrupt

    handle = llama.model.register_forward_pre_hook(die_on_second_batch, with_kwargs=True)
    try:
        with pytest.raises(KeyboardInterrupt):
            score_difficulty(
                data_jsonl, "nll", model=llama, tokenizer=tokenizer, batch_size=4, journal=journal
            )
    finally:
        handle.remove()
    lines = journal.read_text().splitlines()
    assert len(lines) == 2  # the header and the one finished batch
    calls = []
    handle = llama.model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        resumed = score_difficulty(
            data_jsonl, "nll", model=llama, tokenizer=tokenizer, batch_size=4, journal=journal
        )
    finally:
        handle.remove()
    assert len(calls) == 2  # 3 batches of 4, the first one read back from the journal
    assert not journal.exists()  # removed once complete
    fresh = score_difficulty(data_jsonl, "nll", model=llama, tokenizer=tokenizer, batch_size=4)
    np.testing.assert_array_equal(resumed.values, fresh.values)


def test_rewritten_data_with_the_same_row_count_is_not_resumed(
    llama, tokenizer, tmp_path, records, jsonl_writer
):
    """`difficulty score` was keyed on the path and the row count: rewriting the data with
    as many rows and rerunning after a kill kept stale scores (issue 15, item 1)."""
    data = jsonl_writer(tmp_path / "data.jsonl", records)
    journal = tmp_path / "scores.journal.jsonl"

    def die_on_second_batch(*_):
        if journal.exists() and len(journal.read_text().splitlines()) >= 2:
            raise KeyboardInterrupt

    handle = llama.model.register_forward_pre_hook(die_on_second_batch)
    try:
        with pytest.raises(KeyboardInterrupt):
            score_difficulty(data, "nll", model=llama, tokenizer=tokenizer, batch_size=4,
                             journal=journal)
    finally:
        handle.remove()
    jsonl_writer(data, [{**r, "completion": r["completion"][::-1]} for r in records])
    with pytest.warns(UserWarning, match="another job"):
        resumed = score_difficulty(data, "nll", model=llama, tokenizer=tokenizer, batch_size=4,
                                   journal=journal)
    fresh = score_difficulty(data, "nll", model=llama, tokenizer=tokenizer, batch_size=4)
    np.testing.assert_array_equal(resumed.values, fresh.values)
