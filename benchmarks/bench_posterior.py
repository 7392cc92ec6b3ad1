"""Benchmarks of posterior training against the bound and of the Monte-Carlo risk (issue 11).

Run with ``python -m pytest benchmarks/bench_posterior.py --benchmark-enable -s``. Each figure
is a ratio against a baseline timed in the same process, interleaved (the box is shared):

* one posterior training step (a sample θ = μ + s ⊙ ε, ``functional_call``, clipped NLL, the
  KL of every parameter in float64, the f_quad objective, backward, Adam on μ, log s, log λ)
  against one plain training step of the same model on the same batch (forward, token
  cross-entropy, backward, Adam); goal ≤ 2x;
* the Monte-Carlo Gibbs risk of m posterior samples: ``samples_per_call = m`` (the samples'
  parameters stacked and evaluated by :func:`torch.func.vmap`) against the same evaluation one
  sample at a time in a Python loop, and against the toolkit's in-place sampler
  (:class:`measurement._gibbs.PosteriorSampler` with :class:`measurement._gibbs.RiskEvaluator`,
  batches of 8); goal ≥ 3x faster than the loop. Beside them, the ceiling of any batching: one
  forward of all m x n rows at the mean, the same FLOPs with no per-call overhead at all (on a
  2-core CPU it is itself slower than the loop, so no batching of samples can reach 3x there).

Models: the shipped synthetic base (530k parameters, vocabulary 44) on synthetic-length
sequences (59 prompt + 21 completion tokens), and the tiny test Llama (60k parameters) on short
sequences, where per-call overhead dominates.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch

from benchmarks._common import REPO, best_time
from measurement import (
    PosteriorConfig,
    TokenData,
    evaluate_model,
    mc_sample_risks,
    train_posterior,
)
from tests._tiny import build_tokenizer, tiny_llama


def _synthetic_base():
    from transformers import AutoModelForCausalLM

    path = REPO / "fits" / "data" / "synthetic-base-ops1-4"
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def _tokens(n: int, prompt: int, completion: int, vocab: int, seed: int = 0) -> TokenData:
    rng = np.random.default_rng(seed)
    prompts = [rng.integers(3, vocab, prompt).tolist() for _ in range(n)]
    comps = [rng.integers(3, vocab, completion).tolist() for _ in range(n)]
    return TokenData.from_ids(prompts, comps, pad_id=0)


MODELS = {
    "synthetic base (530k params), 80-token sequences": (_synthetic_base, (59, 21, 44)),
    "tiny Llama (60k params), 16-token sequences": (lambda: tiny_llama(seed=0), (10, 6, 300)),
}


def _training_step_ratio(make, shape, batch: int = 32, steps: int = 10) -> dict:
    model = make()
    data = _tokens(batch, *shape)
    centre = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = PosteriorConfig(steps=steps, batch_size=batch)

    def ours():
        train_posterior(
            model, data, prior_centre=centre, n_bound=4096, provenance="base", config=cfg
        )

    plain_model = make().train()
    for p in plain_model.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(plain_model.parameters(), lr=1e-5)

    def plain():
        for _ in range(steps):
            out = plain_model(
                input_ids=data.input_ids, attention_mask=data.attention_mask, labels=data.labels
            )
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()

    t_ours, t_plain = [], []
    for _ in range(3):
        t_plain.append(best_time(plain, 1))
        t_ours.append(best_time(ours, 1))
    return {
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "batch": batch,
        "seconds per plain step": min(t_plain) / steps,
        "seconds per posterior step": min(t_ours) / steps,
        "ratio (goal <= 2)": min(t_ours) / min(t_plain),
    }


def _toolkit_loop(model, data_shape, n: int, m: int):
    """The in-place sampler and evaluator of :func:`measurement.gibbs_risk` (batches of 8)."""
    from measurement import ExampleSet
    from measurement._gibbs import PosteriorSampler, RiskEvaluator, gibbs_risk

    tok = build_tokenizer()
    rng = np.random.default_rng(0)
    words = ["The", "answer", "is", "5", "apples", "train", "x", "y", "=", "+"]
    prompts = tuple(" ".join(rng.choice(words, data_shape[0] // 2)) for _ in range(n))
    comps = tuple(" " + " ".join(rng.choice(words, data_shape[1] // 2)) for _ in range(n))
    examples = ExampleSet("bench", pd.DataFrame({"example_id": np.arange(n)}), prompts, comps)
    sampler = PosteriorSampler(model)
    evaluator = RiskEvaluator(model, tok, examples, loss="nll_clipped", batch_size=8)
    base = evaluator()
    return lambda: gibbs_risk(sampler, evaluator, sigma=1e-3, n_samples=m, baseline=base)


def _mc_ratio(make, shape, n: int, m: int) -> dict:
    model = make()
    data = _tokens(n, *shape)
    centre = {k: p.detach().clone() for k, p in model.named_parameters()}
    post = train_posterior(
        model, data, prior_centre=centre, n_bound=n, provenance="base",
        config=PosteriorConfig(steps=1),
    )  # fmt: skip
    kw = dict(m=m, loss="nll_clipped", seed=0, batch_size=n)

    def loop():
        return mc_sample_risks(model, post, data, samples_per_call=1, **kw)

    def batched():
        return mc_sample_risks(model, post, data, samples_per_call=m, **kw)

    stacked_rows = TokenData(
        data.input_ids.repeat(m, 1), data.attention_mask.repeat(m, 1), data.labels.repeat(m, 1)
    )

    def ceiling():
        """One forward of the m x n rows at the mean: the same FLOPs as m samples with no
        per-call overhead at all, so loop / ceiling bounds what any batching can gain."""
        evaluate_model(model, stacked_rows, batch_size=m * n)

    np.testing.assert_allclose(batched(), loop(), rtol=1e-4, atol=1e-6)
    out = {"examples": n, "samples m": m}
    toolkit = None
    if shape[2] == 300:  # the tiny test tokenizer's vocabulary
        toolkit = _toolkit_loop(tiny_llama(seed=0), shape, n, m)
    t_loop, t_batch, t_tool, t_ceil = [], [], [], []
    for _ in range(2):
        t_loop.append(best_time(loop, 1))
        t_batch.append(best_time(batched, 1))
        t_ceil.append(best_time(ceiling, 1))
        if toolkit is not None:
            t_tool.append(best_time(toolkit, 1))
    out["seconds loop"] = min(t_loop)
    out["seconds batched (vmap)"] = min(t_batch)
    out["speed-up over the loop (goal >= 3)"] = min(t_loop) / min(t_batch)
    out["seconds one forward of m x n rows (no per-call overhead)"] = min(t_ceil)
    out["speed-up ceiling of any batching (loop / one forward)"] = min(t_loop) / min(t_ceil)
    if t_tool:
        out["seconds toolkit in-place loop (batches of 8)"] = min(t_tool)
        out["speed-up of the loop over the toolkit loop"] = min(t_tool) / min(t_loop)
    return out


def test_posterior_step_and_monte_carlo_against_baselines(benchmark):
    torch.set_num_threads(1)
    figures = {}
    for name, (make, shape) in MODELS.items():
        figures[f"training step, {name}"] = _training_step_ratio(make, shape)
        n, m = (128, 16) if shape[2] == 44 else (64, 32)
        figures[f"Monte-Carlo risk, {name}"] = _mc_ratio(make, shape, n, m)
    model, shape = MODELS["tiny Llama (60k params), 16-token sequences"]
    benchmark.pedantic(lambda: _training_step_ratio(model, shape, steps=2), rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    print(json.dumps(figures, indent=2))
    steps = [v["ratio (goal <= 2)"] for k, v in figures.items() if k.startswith("training")]
    # the KL of every parameter, the sampling and the float64 objective may not dominate
    assert max(steps) <= 3.0
