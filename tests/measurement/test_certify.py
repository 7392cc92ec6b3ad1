"""The PAC-Bayes certificate: δ accounting, monotonicity, and real tiny fine-tunes (full, LoRA)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import pacbound
from measurement import Certificate, CertifyConfig, certificate_bounds, certify
from pacbound.exceptions import InvalidParameterError
from tests._tiny import finetune_steps, save_model, tiny_llama

pytest_plugins = ["tests.measurement._data_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def nearby_dir(tmp_path_factory, tokenizer):
    """A fine-tune one tiny AdamW step away from the base: a small KL, a non-vacuous bound."""
    model = finetune_steps(tiny_llama(seed=0), tokenizer, steps=1, lr=1e-5)
    return save_model(model, tmp_path_factory.mktemp("nearby") / "ft", tokenizer=tokenizer)


@pytest.mark.parametrize("q_mc", [0.0, 0.05, 0.3, 0.9])
@pytest.mark.parametrize("kl", [0.0, 5.0, 500.0])
def test_certificate_is_never_below_the_gibbs_estimate(q_mc, kl):
    q_upper, bounds = certificate_bounds(
        q_mc, 20, kl, 1000, delta=0.05, delta_mc=0.01, union={"sigma grid": 17}
    )
    assert q_upper == pytest.approx(float(pacbound.kl_inv_upper(q_mc, math.log(100) / 20)))
    assert q_upper >= q_mc
    for b in bounds.values():
        assert float(b.value) >= q_upper - 1e-12
        assert float(b.delta) == pytest.approx(0.06)  # delta + delta_mc, all accounted
        assert b.union["sigma grid"] == 17
        assert b.deltas["monte carlo"] == pytest.approx(0.01)
    assert "C grid" in bounds["catoni"].union


def test_certificate_tightens_as_n_grows():
    values = {"kl": [], "catoni": []}
    for n in (50, 200, 1000, 5000, 50000):
        _, bounds = certificate_bounds(0.1, 50, 20.0, n, delta=0.05, delta_mc=0.01)
        for name, b in bounds.items():
            values[name].append(float(b.value))
    for seq in values.values():
        assert all(a > b for a, b in itertools.pairwise(seq))
    # more posterior samples tighten the Monte-Carlo step
    q10, _ = certificate_bounds(0.1, 10, 20.0, 1000, delta=0.05, delta_mc=0.01)
    q1000, _ = certificate_bounds(0.1, 1000, 20.0, 1000, delta=0.05, delta_mc=0.01)
    assert q1000 < q10


def test_full_finetune_certificate(llama_dir, nearby_dir, data_jsonl):
    def full(**extra):
        return certify(
            llama_dir,
            nearby_dir,
            data_jsonl,
            n=8,
            delta=0.05,
            delta_mc=0.05,
            sigma=0.01,
            mc_samples=4,
            **extra,
        )

    cert = full()
    assert isinstance(cert, Certificate)
    assert cert.union == {} and cert.search is None  # sigma fixed in advance: no grid cost
    g = cert.gibbs
    assert g.n_samples == 4 and g.n_examples == 8 and cert.n == 8
    assert cert.q_upper >= g.mean
    assert cert.best >= cert.q_upper
    assert 0 < cert.kl < 5  # one tiny step away from the base
    # the kl bound is kl^-1(q_upper, (KL + ln(2 sqrt(n) / delta)) / n), q_upper from the MC step
    budget = (cert.kl + math.log(2 * math.sqrt(8) / 0.05)) / 8
    expect = float(pacbound.kl_inv_upper(cert.q_upper, budget))
    assert float(cert.bounds["kl"].value) == pytest.approx(expect, rel=1e-9)
    assert cert.q_upper == pytest.approx(
        float(pacbound.kl_inv_upper(g.mean, math.log(1 / 0.05) / 4)), rel=1e-9
    )
    assert cert.confidence_each == pytest.approx(0.9)
    assert cert.confidence_all == pytest.approx(0.85)
    d = cert.to_dict()
    assert set(d) >= {"kl", "gibbs", "q_upper", "bounds", "union", "confidence_each", "best"}
    assert d["bounds"]["kl"]["deltas"]["monte carlo"] == pytest.approx(0.05)
    text = str(cert)
    assert "PAC-Bayes certificate" in text and "MC kl-inverse" in text
    # a sigma grid fixed in advance is charged
    charged = full(sigma_grid=[0.003, 0.01, 0.03])
    assert charged.union == {"sigma grid": 3}
    # ln 3 more in the kl budget, and the same Monte-Carlo estimate (same seed)
    gap = float(charged.bounds["kl"].complexity) - float(cert.bounds["kl"].complexity)
    assert gap == pytest.approx(math.log(3) / 8, rel=1e-9)
    assert charged.gibbs.sample_risks == cert.gibbs.sample_risks


def test_sigma_search_and_lora_families(llama_dir, adapter_dir, data_jsonl):
    searched = certify(
        llama_dir,
        adapter=adapter_dir,
        data=data_jsonl,
        n=6,
        delta=0.05,
        space="adapter",
        sigma_grid=list(np.geomspace(1e-3, 1e-1, 5)),
        target_increase=0.05,
        search_samples=1,
        mc_samples=3,
    )
    assert searched.search is not None and searched.sigma in searched.search.grid
    assert searched.union == {"sigma grid": 5}
    assert searched.space == "adapter"
    assert searched.gibbs.restore_source == "files"
    weight = certify(
        llama_dir,
        adapter=adapter_dir,
        data=data_jsonl,
        n=6,
        delta=0.05,
        space="weight",
        sigma=0.01,
        mc_samples=2,
    )
    # adapter space perturbs far fewer parameters than the whole merged model
    assert searched.gibbs.n_parameters < weight.gibbs.n_parameters
    assert weight.gibbs.restore_source == "copy"  # merged weights exist on no file


def test_bad_certify_inputs(llama_dir, nearby_dir, adapter_dir, data_jsonl):
    kw = dict(n=4, sigma=0.01, mc_samples=1)
    with pytest.raises(InvalidParameterError, match="Exactly one of `finetuned`"):
        certify(llama_dir, nearby_dir, data_jsonl, adapter=adapter_dir, **kw)
    with pytest.raises(InvalidParameterError, match="`space` must be 'weight' for a full"):
        certify(llama_dir, nearby_dir, data_jsonl, space="adapter", **kw)
    with pytest.raises(InvalidParameterError, match=r"`delta` must be in \(0, 1\)"):
        certify(llama_dir, nearby_dir, data_jsonl, delta=0.0, **kw)
    with pytest.raises(InvalidParameterError, match="must leave a positive confidence"):
        certify(llama_dir, nearby_dir, data_jsonl, delta=0.45, delta_mc=0.2, **kw)
    with pytest.raises(InvalidParameterError, match="`n` must be at most the number"):
        certify(llama_dir, nearby_dir, data_jsonl, n=99, sigma=0.01)
    with pytest.raises(InvalidParameterError, match="`sigma` must be one of the sigma grid"):
        certify(llama_dir, nearby_dir, data_jsonl, sigma=0.02, sigma_grid=[0.01, 0.03])
    with pytest.raises(InvalidParameterError, match="`loss` must be one of 'nll_clipped'"):
        certify(llama_dir, nearby_dir, data_jsonl, loss="hinge", **kw)
    with pytest.raises(TypeError, match="unexpected keyword argument 'sigmas'"):
        certify(llama_dir, nearby_dir, data_jsonl, sigmas=[0.01])


def test_zero_one_loss_defaults_to_the_final_answer_checker(llama_dir, nearby_dir, data_jsonl):
    config = CertifyConfig(n=4, sigma=0.01, mc_samples=1, loss="zero_one")
    cert = certify(llama_dir, nearby_dir, data_jsonl, config)
    assert cert.gibbs.loss == "zero_one"
    # keyword options replace the config's fields
    again = certify(llama_dir, nearby_dir, data_jsonl, config, loss="nll_clipped")
    assert again.gibbs.loss == "nll_clipped" and again.n == 4
