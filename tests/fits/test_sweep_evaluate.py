"""Loss and exact-answer accuracy: the teacher-forced shortcut agrees with full greedy decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from fits import answer_from_completion, decomposed_test_set, find_synthetic_base
from fits.synthetic._evaluation import synthetic_eval_examples
from measurement._completions import _greedy, score_examples, summarize_scores

pytestmark = pytest.mark.usefixtures("sweep_env")


@pytest.fixture(scope="module")
def base_model():
    folder = find_synthetic_base()
    assert folder is not None, "the shipped synthetic base is missing from fits/data"
    torch.manual_seed(0)
    return (
        AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval(),
        AutoTokenizer.from_pretrained(folder),
    )


def test_shortcut_equals_greedy_decoding_and_loss_equals_hf_loss(base_model):
    model, tok = base_model
    problems = decomposed_test_set(range(1, 9), 6)
    examples = synthetic_eval_examples(tok, problems)
    scores = score_examples(
        model, tok, examples, answer_fn=answer_from_completion, max_new_tokens=66, batch_size=16
    )
    # the shortcut is used (the base solves in-range problems) and some problems still decode
    assert 0 < scores.decoded < len(examples)
    gens = _greedy(
        model, examples, list(range(len(examples))), 16, 66, tok.pad_token_id, tok.eos_token_id
    )
    full = np.array(
        [
            float(
                str(answer_from_completion(tok.decode(gens[i], skip_special_tokens=True)))
                == examples[i].answer
            )
            for i in range(len(examples))
        ]
    )
    assert np.array_equal(full, scores.correct)
    # in-range op counts (the base's pre-training range 1-4) are solved, longer ones mostly not
    ops = np.array([p.ops for p in problems])
    assert scores.correct[ops <= 4].mean() >= 0.9
    assert scores.correct[ops >= 6].mean() <= 0.5
    # per-example loss = the HF loss with prompt labels masked
    ex = examples[5]
    ids = torch.tensor([list(ex.prompt_ids) + list(ex.completion_ids)])
    labels = ids.clone()
    labels[0, : len(ex.prompt_ids)] = -100
    with torch.no_grad():
        hf = float(model(input_ids=ids, labels=labels).loss)
    assert scores.nll_mean[5] == pytest.approx(hf, rel=1e-5)
    assert scores.n_tokens[5] == len(ex.completion_ids)


def test_summaries_by_slice(base_model):
    model, tok = base_model
    problems = decomposed_test_set([1, 7], 4)
    examples = synthetic_eval_examples(tok, problems)
    scores = score_examples(
        model, tok, examples, answer_fn=answer_from_completion, max_new_tokens=66
    )
    ops = np.array([p.ops for p in problems])
    out = summarize_scores(scores, {"all": ops > 0, "ops1": ops == 1, "none": ops == 3})
    assert out["all_n"] == 8 and out["ops1_n"] == 4 and "none_loss" not in out
    assert out["all_loss"] == pytest.approx(scores.nll_mean.mean())
    assert out["ops1_accuracy"] == pytest.approx(scores.correct[ops == 1].mean())
    no_acc = score_examples(
        model,
        tok,
        examples,
        answer_fn=answer_from_completion,
        max_new_tokens=66,
        accuracy=False,
    )
    assert np.isnan(no_acc.correct).all() and no_acc.decoded == 0
    assert np.allclose(no_acc.nll_mean, scores.nll_mean)
