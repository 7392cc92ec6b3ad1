"""Fixtures for the dataset, difficulty, losses, Gibbs and certificate tests.

Loaded by each of those test modules with ``pytest_plugins``. Everything is real: a byte-level
BPE tokenizer trained with ``tokenizers``, tiny Llama/GPT-2 models saved in Hugging Face format
(multi-shard) with their tokenizer, a few real AdamW fine-tuning steps, and a real PEFT LoRA
adapter with a non-zero B.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from measurement._stream_device import cpu_threads as torch_threads
from tests._tiny import build_tokenizer, finetune_steps, save_model, tiny_gpt2, tiny_llama


@pytest.fixture
def one_thread():
    """Use with ``pytestmark = pytest.mark.usefixtures("one_thread")`` in a test module.

    Tiny models gain nothing from a second thread, and on a shared 2-core machine a second
    thread that spins waiting for a busy core makes each step many times slower.
    """
    with torch_threads(1):
        yield


#: (prompt, completion, answer, split): short arithmetic items of varied lengths.
ROWS = [
    ("What is 2 + 3?", " The answer is 5.", "5", "train"),
    ("Compute 7 * 6.", " Step 1: 7 * 6 = 42. The answer is 42.", "42", "train"),
    ("If x = 4 and y = x + 2, what is y?", " y = 6. The answer is 6.", "6", "test"),
    (
        "Tom has 3 apples and buys 4 more. How many?",
        " He has 7 apples. The answer is 7.",
        "7",
        "train",
    ),
    ("Solve for z: 2z = 10.", " z = 5. The answer is 5.", "5", "test"),
    (
        "A train travels 60 km in 1 hour. How far in 3 hours?",
        " Step 1: 60 * 3 = 180. The answer is 180.",
        "180",
        "train",
    ),
    ("Question: name the capital of France.", " Answer: Paris.", "Paris", "test"),
    ("What is 2 + 3? ", "The answer is 5.", "5", "train"),
    (
        "Compute 7 * 6 and add 2.",
        " Step 1: 7 * 6 = 42. Step 2: 42 + 2 = 44. The answer is 44.",
        "44",
        "test",
    ),
    ("The quick brown fox", " jumps over the lazy dog.", None, "train"),
    ("", "The quick brown fox jumps over the lazy dog.", None, "test"),
    ("If x = 4, what is x + x?", " x + x = 8. The answer is 8.", "8", "test"),
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def rows() -> list[tuple]:
    """The (prompt, completion, answer, split) rows of the test dataset."""
    return list(ROWS)


@pytest.fixture(scope="session")
def jsonl_writer():
    """``write_jsonl(path, records)``."""
    return write_jsonl


@pytest.fixture(scope="session")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="session")
def records() -> list[dict]:
    return [
        {"id": f"ex{i}", "prompt": p, "completion": c, "answer": a, "split": s}
        for i, (p, c, a, s) in enumerate(ROWS)
    ]


@pytest.fixture(scope="session")
def data_jsonl(tmp_path_factory, records) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "sft.jsonl", records)


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory, tokenizer) -> Path:
    """A tiny Llama (tied embeddings), saved multi-shard with its tokenizer."""
    path = tmp_path_factory.mktemp("llama") / "base"
    with torch_threads(1):
        return save_model(tiny_llama(seed=0), path, tokenizer=tokenizer)


@pytest.fixture(scope="session")
def llama(llama_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(llama_dir, dtype=torch.float32).eval()


@pytest.fixture(scope="session")
def finetuned_dir(tmp_path_factory, tokenizer) -> Path:
    """The tiny Llama after a few real AdamW steps (a full fine-tune), saved."""
    with torch_threads(1):
        model = finetune_steps(tiny_llama(seed=0), tokenizer, steps=3, lr=1e-2)
    path = tmp_path_factory.mktemp("llama") / "finetuned"
    return save_model(model, path, tokenizer=tokenizer)


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory, tokenizer) -> Path:
    """A tiny GPT-2 (absolute positions, Conv1D layers), saved with the tokenizer."""
    model = tiny_gpt2(seed=1, vocab_size=len(tokenizer))
    model.config.bos_token_id = tokenizer.bos_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    path = tmp_path_factory.mktemp("gpt2") / "base"
    return save_model(model, path, tokenizer=tokenizer)


@pytest.fixture(scope="session")
def adapter_dir(tmp_path_factory, llama_dir) -> Path:
    """A real LoRA adapter on the tiny Llama, B != 0 (init_lora_weights=False), rsLoRA off."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(llama_dir, dtype=torch.float32)
    torch.manual_seed(3)
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj", "up_proj"],
        init_lora_weights=False,
        lora_dropout=0.0,
    )
    peft_model = get_peft_model(base, config)
    with torch.no_grad():  # keep the perturbation modest so losses stay comparable
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                p.mul_(0.3)
    path = tmp_path_factory.mktemp("adapter") / "lora"
    peft_model.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def memorised_dir(tmp_path_factory, tokenizer) -> Path:
    """The tiny Llama fine-tuned (full, 60 AdamW steps) on the `train` rows until it has
    memorised them: low loss and right answers on its training subset, not on held-out rows."""
    torch.manual_seed(0)
    model = tiny_llama(seed=0)
    texts = [p + c + tokenizer.eos_token for p, c, _a, s in ROWS if s == "train"]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    labels = batch["input_ids"].clone()
    labels[batch["attention_mask"] == 0] = -100
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    with torch_threads(1):
        for _ in range(60):
            model(**batch, labels=labels).loss.backward()
            opt.step()
            opt.zero_grad()
    model.eval()
    path = tmp_path_factory.mktemp("llama") / "memorised"
    return save_model(model, path, tokenizer=tokenizer)
