"""Model loading, device/dtype choice and lm-eval-harness tokenization of (prompt, completion)."""

from __future__ import annotations

import pytest
import torch

from measurement import encode_examples, load_causal_lm
from measurement._lm import load_tokenizer, resolve_device, resolve_dtype, unwrap_causal_lm
from measurement.exceptions import DatasetError, DeviceUnavailableError
from pacbound.exceptions import InputFileError, InvalidParameterError

pytest_plugins = ["tests.measurement._data_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")


def test_completion_tokens_are_the_tail_of_the_joint_encoding(tokenizer):
    prompt, completion = "What is 2 + 3?", " The answer is 5."
    (enc,) = encode_examples(tokenizer, [prompt], [completion])
    whole = tokenizer.encode(prompt + completion, add_special_tokens=False)
    ctx = tokenizer.encode(prompt, add_special_tokens=False)
    assert list(enc.ids) == whole
    assert enc.n_completion == len(whole) - len(ctx) and enc.n_prompt == len(ctx)
    assert not enc.truncated


def test_trailing_space_of_the_prompt_moves_into_the_completion(tokenizer):
    a, b = encode_examples(
        tokenizer, ["What is 2 + 3? ", "What is 2 + 3?"], ["The answer is 5.", " The answer is 5."]
    )
    assert list(a.ids) == list(b.ids) and a.n_completion == b.n_completion


def test_empty_prompt_bos_and_truncation(tokenizer):
    (enc,) = encode_examples(tokenizer, [""], ["The quick brown fox"])
    assert enc.ids[0] == tokenizer.bos_token_id
    assert enc.n_completion == len(tokenizer.encode("The quick brown fox"))
    (bos,) = encode_examples(tokenizer, ["Hi"], [" there"], add_bos=True)
    assert bos.ids[0] == tokenizer.bos_token_id
    assert list(bos.ids[1:]) == tokenizer.encode("Hi there", add_special_tokens=False)
    long = "Step 1: 7 * 6 = 42. " * 6
    (cut,) = encode_examples(tokenizer, ["Compute 7 * 6."], [long], max_length=10)
    assert len(cut.ids) == 11 and cut.truncated and cut.n_completion == 10
    with pytest.raises(DatasetError, match=r"data\.jsonl: row 1, the completion encodes to no"):
        encode_examples(tokenizer, ["a", "b"], ["c", ""], source="data.jsonl")
    with pytest.raises(InvalidParameterError, match="`max_length` must be an integer >= 2"):
        encode_examples(tokenizer, ["a"], ["b"], max_length=1)


def test_device_and_dtype():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(InvalidParameterError, match="`dtype` must be one of"):
        resolve_dtype("int4", torch.device("cpu"))
    with pytest.raises(
        InvalidParameterError,
        match=r"^`device` must be one of 'auto', 'cpu', 'cuda'; got 'tpu:0'\.$",
    ):
        resolve_device("tpu:0")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError, match="no CUDA"):
            resolve_device("cuda")


def test_load_folder_adapter_and_tokenizer_fallback(llama_dir, adapter_dir, tmp_path):
    model, tok = load_causal_lm(llama_dir, dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16 and not model.training
    assert tok.pad_token_id is not None
    wrapped, _ = load_causal_lm(llama_dir, adapter=adapter_dir)
    assert hasattr(wrapped, "peft_config")
    assert unwrap_causal_lm(wrapped).__class__.__name__ == "LlamaForCausalLM"
    merged, _ = load_causal_lm(llama_dir, adapter=adapter_dir, merge_adapter=True)
    assert not hasattr(merged, "peft_config")
    # a model folder without a tokenizer: the adapter's is not there either -> clear error
    bare = tmp_path / "bare"
    model.save_pretrained(bare)
    with pytest.raises(InputFileError, match="no tokenizer could be loaded"):
        load_causal_lm(bare)
    assert load_tokenizer(bare, fallback=llama_dir).pad_token == "<pad>"
