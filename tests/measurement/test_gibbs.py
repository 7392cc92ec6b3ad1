"""Gibbs risk by Monte Carlo and the σ search, on a real tiny fine-tune."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from measurement import AnswerChecker, load_examples
from measurement._gibbs import (
    DEFAULT_SIGMA_GRID,
    PosteriorSampler,
    RiskEvaluator,
    gibbs_risk,
    sigma_search,
)
from pacbound.exceptions import InvalidParameterError

pytest_plugins = ["tests.measurement._data_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(memorised_dir, data_jsonl, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(memorised_dir, dtype=torch.float32).eval()
    examples = load_examples(data_jsonl)
    train = examples.subset([i for i, s in enumerate(examples.table["split"]) if s == "train"])
    evaluator = RiskEvaluator(model, tokenizer, train, p_min=1e-3, batch_size=6)
    sampler = PosteriorSampler(model, source=memorised_dir)
    return model, sampler, evaluator


def state(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_gibbs_risk_restores_the_weights_exactly(setup):
    model, sampler, evaluator = setup
    before = state(model)
    res = gibbs_risk(sampler, evaluator, sigma=0.02, n_samples=3, seed=5)
    after = state(model)
    assert all(torch.equal(before[n], after[n]) for n in before)
    assert res.n_samples == 3 and res.n_examples == len(evaluator)
    assert all(0.0 <= r <= 1.0 for r in res.sample_risks)
    assert len(set(res.sample_risks)) == 3  # three different posterior samples
    assert res.restore_source == "files"
    assert res.n_parameters == sum(p.numel() for p in model.parameters())
    # seeded: the same seed gives the same samples
    again = gibbs_risk(sampler, evaluator, sigma=0.02, n_samples=3, seed=5)
    assert again.sample_risks == res.sample_risks
    assert "q_MC" in str(res) and res.to_dict()["q_mc"] == pytest.approx(res.mean)


def test_risk_grows_with_sigma_and_vanishes_at_small_sigma(setup):
    _model, sampler, evaluator = setup
    base = evaluator()
    tiny = gibbs_risk(sampler, evaluator, sigma=1e-6, n_samples=2, baseline=base)
    assert tiny.mean == pytest.approx(base.risk, abs=1e-5)
    mid = gibbs_risk(sampler, evaluator, sigma=0.03, n_samples=2, baseline=base)
    big = gibbs_risk(sampler, evaluator, sigma=0.3, n_samples=2, baseline=base)
    assert base.risk < mid.mean < big.mean


def test_sigma_search_respects_the_target(setup):
    _model, sampler, evaluator = setup
    grid = DEFAULT_SIGMA_GRID[8:]  # 1e-3 .. 1e-1
    res = sigma_search(sampler, evaluator, grid=grid, target_increase=0.5, n_samples=1)
    assert res.chosen in grid
    assert len(res.evaluated) <= int(np.ceil(np.log2(len(grid) + 1)))
    values = dict(res.evaluated)
    assert values[res.chosen] - res.baseline <= 0.5
    bigger = [s for s in values if s > res.chosen]
    assert all(values[s] - res.baseline > 0.5 for s in bigger)
    assert "chosen sigma" in str(res)
    edge = sigma_search(sampler, evaluator, grid=[1e-7, 1e-6], n_samples=1)
    assert edge.chosen == 1e-6 and "largest sigma of the grid" in edge.notes[0]
    low = sigma_search(sampler, evaluator, grid=[5.0], target_increase=1e-3, n_samples=1)
    assert low.chosen == 5.0 and "smallest sigma" in low.notes[0]


def test_journal_resumes_samples(setup, tmp_path):
    import json

    model, sampler, evaluator = setup
    journal = tmp_path / "gibbs.journal.jsonl"
    # a run killed after one sample leaves a journal with one entry
    with _KillAfterFirstSample(model, journal), pytest.raises(KeyboardInterrupt):
        gibbs_risk(sampler, evaluator, sigma=0.02, n_samples=2, seed=1, journal=journal)
    header, line = journal.read_text().splitlines()
    entry = json.loads(line)
    assert entry["key"] == "sample-0"
    entry["payload"] = [0.123, 4.5]  # marked, to see that it is read back
    journal.write_text(header + "\n" + json.dumps(entry) + "\n")
    res = gibbs_risk(sampler, evaluator, sigma=0.02, n_samples=2, seed=1, journal=journal)
    assert res.sample_risks[0] == 0.123  # reused, not recomputed
    assert res.sample_risks[1] != 0.123
    assert not journal.exists()  # removed once complete


def test_zero_one_loss(memorised_dir, data_jsonl, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(memorised_dir, dtype=torch.float32).eval()
    examples = load_examples(data_jsonl).subset([0, 1, 2, 4])
    with pytest.raises(InvalidParameterError, match="`checker` must be given for loss"):
        RiskEvaluator(model, tokenizer, examples, loss="zero_one")
    ev = RiskEvaluator(
        model, tokenizer, examples, loss="zero_one", checker=AnswerChecker(), max_new_tokens=16
    )()
    assert set(ev.per_example.tolist()) <= {0.0, 1.0}
    assert ev.per_example[0] == 0.0 and ev.per_example[1] == 0.0  # memorised training rows


def test_posterior_setups_against_weight_statistics(llama_dir, adapter_dir, finetuned_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from measurement import weight_statistics

    base = AutoModelForCausalLM.from_pretrained(llama_dir, dtype=torch.float32)
    wrapped = PeftModel.from_pretrained(base, adapter_dir)
    with pytest.raises(InvalidParameterError, match="needs the adapter merged"):
        PosteriorSampler(wrapped, space="weight")
    adapter_stats = weight_statistics(llama_dir, adapter=adapter_dir)
    sampler = PosteriorSampler(wrapped, space="adapter", stats=adapter_stats, source=adapter_dir)
    assert sampler.n_parameters == int(adapter_stats.adapter_table["numel"].sum())
    full = AutoModelForCausalLM.from_pretrained(finetuned_dir, dtype=torch.float32)
    full_stats = weight_statistics(llama_dir, finetuned_dir)
    assert PosteriorSampler(full, stats=full_stats).n_parameters == full_stats.numel
    # per-tensor scale: sigma x RMS of the base tensor, as the KL of gaussian_kl assumes
    scaled = PosteriorSampler(full, stats=full_stats, per_tensor_scale=True).noise(0.1, 0)
    table = full_stats.table.set_index("name")
    for name, std in zip(scaled.names, scaled.stds, strict=True):
        row = table.loc[name]
        assert std == pytest.approx(0.1 * np.sqrt(row["sq_base"] / row["numel"]), rel=1e-12)
    with pytest.raises(InvalidParameterError, match="`stats` must describe the perturbed"):
        PosteriorSampler(
            wrapped,
            space="adapter",
            stats=full_stats.__class__(full_stats.table, full_stats.table, {}),
        )
    with pytest.raises(InvalidParameterError, match=r"`stats` .* must be given with per_tensor"):
        PosteriorSampler(full, per_tensor_scale=True).noise(0.1, 0)


class _KillAfterFirstSample:
    """Raise KeyboardInterrupt at the first forward pass once the journal holds one sample."""

    def __init__(self, model, journal):
        self.model, self.journal = model, journal

    def __enter__(self):
        def hook(*_):
            if self.journal.exists() and len(self.journal.read_text().splitlines()) >= 2:
                raise KeyboardInterrupt

        self.handle = self.model.model.register_forward_pre_hook(hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.mark.parametrize("change", ["finetune", "data"])
def test_a_killed_run_does_not_resume_for_another_finetune_or_data(
    setup, tmp_path, llama_dir, tokenizer, data_jsonl, jsonl_writer, records, change
):
    """Rerun after a kill with another fine-tune (or data): old Monte-Carlo draws used to be
    reused, giving a too optimistic certificate (issue 15, item 1)."""
    from transformers import AutoModelForCausalLM

    model, sampler, evaluator = setup
    journal = tmp_path / "gibbs.journal.jsonl"
    with _KillAfterFirstSample(model, journal), pytest.raises(KeyboardInterrupt):
        gibbs_risk(sampler, evaluator, sigma=0.02, n_samples=3, seed=1, journal=journal)
    assert len(journal.read_text().splitlines()) == 2
    if change == "finetune":
        other = AutoModelForCausalLM.from_pretrained(llama_dir, dtype=torch.float32).eval()
        examples = evaluator.examples
        other_sampler = PosteriorSampler(other, source=llama_dir)
    else:
        other, other_sampler = model, sampler
        flipped = [{**r, "completion": r["completion"][::-1]} for r in records]
        examples = load_examples(jsonl_writer(tmp_path / "other.jsonl", flipped))
        examples = examples.subset(range(len(evaluator)))
    other_eval = RiskEvaluator(other, tokenizer, examples, p_min=1e-3, batch_size=6)
    with pytest.warns(UserWarning, match="another job"):
        resumed = gibbs_risk(other_sampler, other_eval, sigma=0.02, n_samples=3, seed=1,
                             journal=journal)
    fresh = gibbs_risk(other_sampler, other_eval, sigma=0.02, n_samples=3, seed=1)
    assert resumed.sample_risks == fresh.sample_risks
