"""Per-example losses of saved checkpoints: columns, adapters, correctness, resume, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from measurement import AnswerChecker, ExampleLosses, example_losses, load_examples
from measurement._jobs import journal_path
from measurement.exceptions import AdapterConfigError, CheckpointError, DatasetError
from pacbound.exceptions import InvalidParameterError

pytest_plugins = ["tests.measurement._data_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def base_losses(llama_dir, data_jsonl) -> ExampleLosses:
    return example_losses(llama_dir, data_jsonl, batch_size=4, p_min=1e-3, carry=["split"])


def test_columns_and_summary(base_losses, rows):
    t = base_losses.table
    for col in (
        "example_id",
        "model",
        "n_tokens",
        "nll_sum",
        "nll_mean",
        "bounded_loss",
        "greedy_match",
        "truncated",
        "split",
    ):
        assert col in t.columns
    assert len(t) == len(rows)
    assert list(t["example_id"]) == [f"ex{i}" for i in range(len(rows))]
    np.testing.assert_allclose(t["nll_mean"], t["nll_sum"] / t["n_tokens"])
    assert ((t["bounded_loss"] >= 0) & (t["bounded_loss"] <= 1)).all()
    assert base_losses.token_nll == pytest.approx(t["nll_sum"].sum() / t["n_tokens"].sum())
    assert base_losses.settings["dtype"] == "float32"
    assert base_losses.settings["device"] == "cpu"
    assert base_losses.accuracy is None
    text = str(base_losses)
    assert "mean NLL per token" in text and "tokens/s" in text
    d = base_losses.to_dict()
    assert d["n_examples"] == len(rows) and len(d["records"]) == len(rows)


def test_same_losses_from_a_loaded_model(base_losses, llama, tokenizer, data_jsonl):
    again = example_losses(llama, data_jsonl, tokenizer=tokenizer, batch_size=7, p_min=1e-3)
    np.testing.assert_allclose(again.table["nll_sum"], base_losses.table["nll_sum"], rtol=1e-5)


def test_lora_adapter_losses_equal_the_merged_model(llama_dir, adapter_dir, data_jsonl, tokenizer):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapted = example_losses(llama_dir, data_jsonl, adapter=adapter_dir, batch_size=5)
    base = AutoModelForCausalLM.from_pretrained(llama_dir, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload().eval()
    ref = example_losses(merged, data_jsonl, tokenizer=tokenizer, batch_size=3)
    np.testing.assert_allclose(adapted.table["nll_sum"], ref.table["nll_sum"], rtol=1e-5)
    plain = example_losses(llama_dir, data_jsonl, batch_size=5)
    # the adapter really changes the model
    assert np.abs(adapted.table["nll_sum"] - plain.table["nll_sum"]).max() > 1e-3
    assert " + " in adapted.model


def test_checker_marks_correct_generations(llama, tokenizer, tmp_path, jsonl_writer):
    prompts = ["What is 2 + 3?", "Compute 7 * 6."]
    with torch.no_grad():
        ids = tokenizer.encode(prompts[0], add_special_tokens=False)
        out = llama.generate(torch.tensor([ids]), max_new_tokens=6, do_sample=False, pad_token_id=0)
    greedy = tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)
    data = jsonl_writer(
        tmp_path / "d.jsonl",
        [
            {"prompt": prompts[0], "completion": greedy},
            {"prompt": prompts[1], "completion": " something else entirely"},
        ],
    )
    res = example_losses(
        llama, data, tokenizer=tokenizer, checker=AnswerChecker(mode="exact"), max_new_tokens=6
    )
    assert list(res.table["correct"]) == [True, False]
    assert res.table["generated"][0] == greedy
    assert res.accuracy == 0.5


def test_truncation_is_flagged(llama, tokenizer, data_jsonl):
    res = example_losses(llama, data_jsonl, tokenizer=tokenizer, max_length=12)
    t = res.table
    assert t["truncated"].any() and not t["truncated"].all()
    assert (t["n_tokens"] <= 12).all()


def test_resume_from_a_journal(llama_dir, data_jsonl, tmp_path, base_losses):
    journal = journal_path(tmp_path / "losses.parquet")
    first = example_losses(llama_dir, data_jsonl, batch_size=4, p_min=1e-3, journal=journal)
    assert journal.exists()
    again = example_losses(llama_dir, data_jsonl, batch_size=4, p_min=1e-3, journal=journal)
    np.testing.assert_array_equal(again.table["nll_sum"], first.table["nll_sum"])
    np.testing.assert_allclose(first.table["nll_sum"], base_losses.table["nll_sum"], rtol=1e-6)


def test_save_round_trip(base_losses, tmp_path):
    path = base_losses.save(tmp_path / "losses.parquet")
    back = pd.read_parquet(path)
    np.testing.assert_array_equal(back["nll_sum"], base_losses.table["nll_sum"])


def test_bad_inputs(llama, llama_dir, data_jsonl, tokenizer, tmp_path, adapter_dir):
    with pytest.raises(DatasetError, match=r"column 'difficulty' is missing"):
        example_losses(llama, data_jsonl, tokenizer=tokenizer, carry=["difficulty"])
    with pytest.raises(InvalidParameterError, match="`tokenizer` must be given"):
        example_losses(llama, data_jsonl)
    with pytest.raises(CheckpointError, match="no such model folder"):
        example_losses(tmp_path / "nope", data_jsonl)
    with pytest.raises(CheckpointError, match="pass it as `adapter`"):
        example_losses(adapter_dir, data_jsonl)
    with pytest.raises(AdapterConfigError, match="not a PEFT adapter folder"):
        example_losses(llama_dir, data_jsonl, adapter=tmp_path)
    with pytest.raises(InvalidParameterError, match="`batch_size` must be an integer >= 1"):
        example_losses(llama, data_jsonl, tokenizer=tokenizer, batch_size=0)
    with pytest.raises(InvalidParameterError, match="`dtype` must be one of"):
        example_losses(llama_dir, data_jsonl, dtype="int8")
    ex = load_examples(data_jsonl)
    with pytest.raises(InvalidParameterError, match="`padding_side` must be one of"):
        example_losses(llama, ex, tokenizer=tokenizer, padding_side="up")


def _kill_after_first_batch(model, journal):
    def hook(*_):
        if journal.exists() and len(journal.read_text().splitlines()) >= 2:
            raise KeyboardInterrupt

    return model.model.register_forward_pre_hook(hook)


def test_journal_keyed_on_the_model_not_its_label(llama, finetuned_dir, data_jsonl, tokenizer,
                                                   tmp_path):
    """`losses --base`: the journal was keyed on the label "finetuned", so a rerun with another
    fine-tune after a kill kept the first model's losses (issue 15, item 1)."""
    from transformers import AutoModelForCausalLM

    journal = tmp_path / "losses.finetuned.jsonl"
    handle = _kill_after_first_batch(llama, journal)
    try:
        with pytest.raises(KeyboardInterrupt):
            example_losses(llama, data_jsonl, tokenizer=tokenizer, label="finetuned",
                           batch_size=4, journal=journal)
    finally:
        handle.remove()
    assert len(journal.read_text().splitlines()) == 2
    other = AutoModelForCausalLM.from_pretrained(finetuned_dir, dtype=torch.float32).eval()
    with pytest.warns(UserWarning, match="another job"):
        resumed = example_losses(other, data_jsonl, tokenizer=tokenizer, label="finetuned",
                                 batch_size=4, journal=journal)
    fresh = example_losses(other, data_jsonl, tokenizer=tokenizer, label="finetuned",
                           batch_size=4)
    np.testing.assert_array_equal(resumed.table["nll_sum"], fresh.table["nll_sum"])
