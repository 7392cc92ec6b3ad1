"""Real tiny models and tokenizers for tests, built in-process (no hub, no downloads).

Models are genuine ``transformers`` Llama/GPT-2 models from a config with random weights;
tokenizers are genuine byte-level BPE tokenizers trained with the ``tokenizers`` library on a
small fixed corpus and wrapped as ``PreTrainedTokenizerFast``. Everything is saved and
reloaded in real Hugging Face format by the tests that use them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

CORPUS = [
    "What is 2 + 3? The answer is 5.",
    "Compute 7 * 6. Step 1: 7 * 6 = 42. The answer is 42.",
    "If x = 4 and y = x + 2, what is y? y = 6. The answer is 6.",
    "A train travels 60 km in 1 hour. How far in 3 hours? 180 km.",
    "Question: name the capital of France. Answer: Paris.",
    "Solve for z: 2z = 10. z = 5.",
    "The quick brown fox jumps over the lazy dog.",
    "Tom has 3 apples and buys 4 more. He has 7 apples.",
] * 4

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}</s>"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tokenizer(vocab_size: int = 320) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on :data:`CORPUS` and wrap it for transformers."""
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_llama_config(vocab_size: int = 320, *, tie: bool = True, **overrides) -> LlamaConfig:
    """A 2-layer Llama config small enough for CPU tests (about 60k parameters)."""
    kw = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=tie,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    kw.update(overrides)
    return LlamaConfig(**kw)


def tiny_llama(seed: int = 0, **config_kw) -> LlamaForCausalLM:
    """A randomly initialised tiny Llama model (float32, eval mode)."""
    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_llama_config(**config_kw))
    return model.eval()


def tiny_gpt2(seed: int = 0, vocab_size: int = 320) -> GPT2LMHeadModel:
    """A randomly initialised tiny GPT-2 (its ``Conv1D`` layers are ``fan_in_fan_out``)."""
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab_size, n_positions=128, n_embd=32, n_layer=2, n_head=2)
    return GPT2LMHeadModel(cfg).eval()


def save_model(model, path: Path, *, max_shard_size: str | None = "100KB", tokenizer=None) -> Path:
    """Save ``model`` in Hugging Face format (multi-shard when ``max_shard_size`` is small)."""
    path = Path(path)
    kwargs = {} if max_shard_size is None else {"max_shard_size": max_shard_size}
    model.save_pretrained(path, **kwargs)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
    return path


def finetune_steps(model, tokenizer, *, steps: int = 3, lr: float = 1e-2, seed: int = 0):
    """A few real AdamW steps of causal-LM training on :data:`CORPUS` (in place)."""
    torch.manual_seed(seed)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    batch = tokenizer(CORPUS[:8], return_tensors="pt", padding=True)
    labels = batch["input_ids"].clone()
    labels[batch["attention_mask"] == 0] = -100
    for _ in range(steps):
        out = model(**batch, labels=labels)
        out.loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    return model
