"""Synthetic datasets: nested training pools, the decomposed test set, files on disk."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fits import (
    build_synthetic_tokenizer,
    check_problem,
    decomposed_test_set,
    ops_mixture,
    sample_training_set,
    write_problems,
)
from fits.synthetic._data import encode_problems, parse_ops_range
from pacbound.exceptions import InvalidParameterError


def test_training_pools_are_nested_and_depend_on_seed_and_difficulty():
    d4 = ops_mixture(4.0)
    small, big = sample_training_set(d4, 10, 0), sample_training_set(d4, 50, 0)
    assert small == big[:10]
    assert sample_training_set(d4, 10, 1) != small
    assert sample_training_set(ops_mixture(6.0), 10, 0) != small
    assert all(check_problem(p) for p in big)


def test_decomposed_test_set_is_balanced_and_separate_from_training():
    test = decomposed_test_set(range(1, 9), 5)
    assert [p.ops for p in test] == [k for k in range(1, 9) for _ in range(5)]
    train = {p.prompt for p in sample_training_set(ops_mixture(2.0), 200, 0)}
    assert not train & {p.prompt for p in test}


def test_files_and_encoding(tmp_path):
    problems = decomposed_test_set([1, 2], 3)
    j = write_problems(problems, tmp_path / "p.jsonl")
    rows = [json.loads(line) for line in j.read_text().splitlines()]
    assert rows == [p.to_dict() for p in problems]
    q = write_problems(problems, tmp_path / "p.parquet")
    assert pd.read_parquet(q).to_dict("records") == rows
    with pytest.raises(InvalidParameterError, match=r"p.txt: a table file must end in one of"):
        write_problems(problems, tmp_path / "p.txt")
    tok = build_synthetic_tokenizer()
    prompts, comps = encode_problems(tok, problems)
    assert all(c[-1] == tok.eos_token_id for c in comps)
    assert {len(p) for p in prompts} == {60}  # BOS + 59 words, whatever the difficulty
    assert parse_ops_range("2-8") == (2, 8) and parse_ops_range("4") == (4, 4)
    for bad in ("8-2", "x", "0-3"):
        with pytest.raises(InvalidParameterError, match="`ops` must"):
            parse_ops_range(bad)
