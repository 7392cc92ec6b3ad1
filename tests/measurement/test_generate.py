"""Batched greedy decoding and seeded sampling."""

from __future__ import annotations

import pytest
import torch

from measurement import generate_completions
from measurement._generate import seed_for
from pacbound.exceptions import InvalidParameterError

pytest_plugins = ["tests.measurement._data_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")

PROMPTS = ["What is 2 + 3?", "Compute 7 * 6.", "If x = 4, what is x + x?", ""]


def test_greedy_is_independent_of_batch_size(llama, tokenizer):
    one = generate_completions(llama, tokenizer, PROMPTS, max_new_tokens=6, batch_size=1)
    many = generate_completions(llama, tokenizer, PROMPTS, max_new_tokens=6, batch_size=4)
    assert one == many
    assert all(len(g) == 1 for g in one)
    # the same as an unbatched call to generate
    ids = tokenizer.encode(PROMPTS[0], add_special_tokens=False)
    ref = llama.generate(torch.tensor([ids]), max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert one[0][0] == tokenizer.decode(ref[0, len(ids) :], skip_special_tokens=True)


def test_sampling_is_seeded_and_leaves_the_global_rng_alone(llama, tokenizer):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    kw = dict(max_new_tokens=5, num_samples=3, do_sample=True, batch_size=2)
    a = generate_completions(llama, tokenizer, PROMPTS, seed=7, **kw)
    assert torch.equal(torch.get_rng_state(), state)
    b = generate_completions(llama, tokenizer, PROMPTS, seed=7, **kw)
    c = generate_completions(llama, tokenizer, PROMPTS, seed=8, **kw)
    assert a == b and a != c
    assert all(len(g) == 3 for g in a)


def test_seed_for_is_stable_and_distinct():
    assert seed_for(1, 2, 3) == seed_for(1, 2, 3)
    assert len({seed_for(0, s, t) for s in range(20) for t in range(20)}) == 400
    assert 0 <= seed_for(5) < 2**63


def test_bad_generation_arguments(llama, tokenizer):
    with pytest.raises(InvalidParameterError, match="`num_samples` must be 1 for greedy"):
        generate_completions(llama, tokenizer, PROMPTS, num_samples=2)
    with pytest.raises(InvalidParameterError, match=r"`temperature` must be in \(0, inf\)"):
        generate_completions(llama, tokenizer, PROMPTS, do_sample=True, temperature=0)
    with pytest.raises(InvalidParameterError, match="`max_new_tokens` must be an integer >= 1"):
        generate_completions(llama, tokenizer, PROMPTS, max_new_tokens=0)


def test_generation_resumes_from_a_journal(llama, tokenizer, tmp_path):
    from measurement._jobs import Journal

    path = tmp_path / "gen.jsonl"
    kw = dict(max_new_tokens=4, batch_size=2)
    first = generate_completions(llama, tokenizer, PROMPTS, journal=Journal(path, {"j": 1}), **kw)
    book = Journal(path, {"j": 1})
    assert set(book.done) == {"generate-0", "generate-1"}
    book.record("generate-0", [["reused"], ["reused"]])  # a later line wins on reading
    book.close(remove=False)
    again = generate_completions(llama, tokenizer, PROMPTS, journal=Journal(path, {"j": 1}), **kw)
    assert sum(g == ["reused"] for g in again) == 2
    assert [g for g in again if g != ["reused"]] == [
        g for g, a in zip(first, again, strict=True) if a != ["reused"]
    ]
