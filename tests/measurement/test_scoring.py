"""The scoring engine: batched completion NLL against an unbatched float64 forward pass."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from measurement._jobs import Journal
from measurement._lm import encode_examples
from measurement._scoring import make_batches, score_batches
from pacbound.exceptions import InvalidParameterError

pytest_plugins = ["tests.measurement._data_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def encoded(tokenizer, rows):
    return encode_examples(tokenizer, [r[0] for r in rows], [r[1] for r in rows])


@pytest.fixture(scope="module")
def gpt2(gpt2_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(gpt2_dir, dtype=torch.float32).eval()


def reference_nll(model, encoded, p_min=None):
    """One unpadded float64 forward pass per example, full logits, log_softmax in float64."""
    m64 = copy.deepcopy(model).double()
    nll, bounded = [], []
    for e in encoded:
        ids = torch.as_tensor(e.ids)[None]
        with torch.no_grad():
            logp = torch.log_softmax(m64(ids).logits[0, :-1], dim=-1)
        tgt = ids[0, 1:]
        tok = -logp[torch.arange(len(tgt)), tgt][-e.n_completion :]
        nll.append(tok.sum().item())
        if p_min is not None:
            s = np.log(1 / p_min)
            bounded.append((tok.clamp(max=s) / s).sum().item())
    return np.array(nll), np.array(bounded)


@pytest.mark.parametrize("which", ["llama", "gpt2"])
def test_batched_nll_equals_unbatched_float64(which, llama, gpt2, encoded, tokenizer):
    model = llama if which == "llama" else gpt2
    ref, ref_bounded = reference_nll(model, encoded, p_min=0.003)
    for side in ("left", "right"):
        for batch_size in (1, 3, 12):
            batches = make_batches(
                encoded, pad_id=tokenizer.pad_token_id, batch_size=batch_size, padding_side=side
            )
            got = score_batches(model, batches, p_min=0.003, head_chunk_tokens=7)
            np.testing.assert_allclose(got.nll_sum, ref, rtol=1e-5)
            np.testing.assert_allclose(got.nll_sum / got.n_tokens, ref / got.n_tokens, atol=1e-5)
            np.testing.assert_allclose(got.bounded_sum, ref_bounded, rtol=1e-5, atol=1e-6)
            assert got.method == "hidden"
    assert list(got.n_tokens) == [e.n_completion for e in encoded]
    # each clipped, scaled token loss is at most 1
    assert (got.bounded_sum <= got.n_tokens + 1e-9).all()


def test_logits_to_keep_path_agrees(llama, encoded, tokenizer):
    batches = make_batches(encoded, pad_id=tokenizer.pad_token_id, batch_size=4)
    hidden = score_batches(llama, batches, method="hidden")
    logits = score_batches(llama, batches, method="logits")
    assert logits.method == "logits"
    np.testing.assert_allclose(logits.nll_sum, hidden.nll_sum, rtol=1e-6)
    assert (logits.greedy == hidden.greedy).all()
    right = make_batches(encoded, pad_id=0, batch_size=4, padding_side="right")
    with pytest.raises(InvalidParameterError, match="`padding_side` must be 'left'"):
        score_batches(llama, right, method="logits")


def test_greedy_match_means_every_token_is_the_argmax(llama, tokenizer):
    # build a completion out of the model's own greedy continuation of a prompt
    ids = tokenizer.encode("What is 2 + 3?", add_special_tokens=False)
    out = llama.generate(torch.tensor([ids]), max_new_tokens=5, do_sample=False, pad_token_id=0)[
        0, len(ids) :
    ]
    text = tokenizer.decode(out)
    enc = encode_examples(tokenizer, ["What is 2 + 3?", "What is 2 + 3?"], [text, " banana"])
    if enc[0].n_completion != len(out) or list(enc[0].ids[-len(out) :]) != out.tolist():
        pytest.skip("greedy tokens do not re-encode to themselves with this tokenizer")
    got = score_batches(llama, make_batches(enc, pad_id=0, batch_size=2))
    assert bool(got.greedy[0]) is True


def test_batches_are_sorted_and_depend_on_lengths_only(encoded):
    a = make_batches(encoded, pad_id=0, batch_size=5)
    b = make_batches(list(encoded), pad_id=0, batch_size=5)
    assert a.batches == b.batches
    lengths = [len(encoded[i].ids) for batch in a.batches for i in batch]
    assert lengths == sorted(lengths, reverse=True)
    assert sorted(i for batch in a.batches for i in batch) == list(range(len(encoded)))
    capped = make_batches(encoded, pad_id=0, batch_size=12, max_batch_tokens=40)
    for batch in capped.batches:
        width = max(len(encoded[i].ids) - 1 for i in batch)
        assert len(batch) == 1 or width * len(batch) <= 40
    with pytest.raises(InvalidParameterError, match="`batch_size` must be an integer >= 1"):
        make_batches(encoded, pad_id=0, batch_size=0)
    with pytest.raises(InvalidParameterError, match="`padding_side` must be one of"):
        make_batches(encoded, pad_id=0, padding_side="middle")


def test_journal_resumes_finished_batches(llama, encoded, tokenizer, tmp_path):
    batches = make_batches(encoded, pad_id=tokenizer.pad_token_id, batch_size=4)
    path = tmp_path / "j.jsonl"
    full = score_batches(llama, batches, journal=Journal(path, {"job": 1}))
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + len(batches.batches)
    # simulate a kill after the first batch (a half-written line at the end), and mark the
    # recorded value so that we can see it is reused rather than recomputed
    record = json.loads(lines[1])
    record["payload"]["nll"][0] = 1000.0
    path.write_text(lines[0] + "\n" + json.dumps(record) + "\n" + lines[2][:15])
    resumed = score_batches(llama, batches, journal=Journal(path, {"job": 1}))
    i0 = batches.batches[0][0]
    assert resumed.nll_sum[i0] == 1000.0
    rest = [i for i in range(len(encoded)) if i != i0]
    np.testing.assert_array_equal(resumed.nll_sum[rest], full.nll_sum[rest])
    # another fingerprint starts afresh
    fresh = score_batches(llama, batches, journal=Journal(path, {"job": 2}))
    np.testing.assert_array_equal(fresh.nll_sum, full.nll_sum)


def test_bad_p_min_and_method(llama, encoded):
    batches = make_batches(encoded, pad_id=0)
    with pytest.raises(InvalidParameterError, match=r"`p_min` must be in \(0, 1\); got 1.0"):
        score_batches(llama, batches, p_min=1.0)
    with pytest.raises(InvalidParameterError, match="`method` must be one of"):
        score_batches(llama, batches, method="full")
