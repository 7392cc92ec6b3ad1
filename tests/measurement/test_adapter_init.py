"""The adapter-space prior centre: the adapter's reproducible initialisation, not A0 = 0."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
import torch
from safetensors.torch import load_file

from measurement import (
    adapter_prior_centre,
    certify,
    gaussian_kl,
    rebuild_adapter_init,
    weight_statistics,
)
from pacbound.exceptions import InvalidParameterError

pytest_plugins = ["tests.measurement._data_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")

SEED = 11


def _lora_config(r: int = 4):
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)


@pytest.fixture(scope="module")
def trained_adapter(tmp_path_factory, llama_dir):
    """A LoRA adapter made as training makes it (seed, base loaded, peft's default init), then
    moved a little from its initialisation; ``adapter_init/`` is NOT recorded in its folder."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("seeded")
    torch.manual_seed(SEED)
    base = AutoModelForCausalLM.from_pretrained(llama_dir, dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(base, _lora_config())
    model.save_pretrained(root / "true_init")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.add_(1e-3 * torch.randn(p.shape, generator=gen))
    model.save_pretrained(root / "trained")
    return root


def _sq_delta(stats) -> float:
    return float(stats.adapter_table["sq_delta"].sum())


def test_rebuilt_initialisation_is_peft_s_own(tmp_path, llama_dir, trained_adapter):
    out = rebuild_adapter_init(llama_dir, trained_adapter / "trained", SEED, tmp_path / "init")
    rebuilt = load_file(out / "adapter_model.safetensors")
    truth = load_file(trained_adapter / "true_init" / "adapter_model.safetensors")
    assert set(rebuilt) == set(truth)
    for key, value in truth.items():
        assert torch.equal(rebuilt[key], value), key
    # B0 = 0 and A0 is Kaiming-uniform, not 0: a zero centre would pay for it
    assert all(float(v.abs().max()) == 0 for k, v in truth.items() if "lora_B" in k)
    assert all(float(v.abs().max()) > 0 for k, v in truth.items() if "lora_A" in k)


def test_centre_order_and_kl(tmp_path, llama_dir, trained_adapter):
    trained = tmp_path / "trained"
    shutil.copytree(trained_adapter / "trained", trained)
    assert adapter_prior_centre(trained).kind == "zero"
    # a recorded seed is used; a given seed wins over it
    (trained / "adapter_seed.json").write_text(json.dumps({"seed": SEED}))
    seeded = adapter_prior_centre(trained)
    assert (seeded.kind, seeded.seed, seeded.seed_source) == (
        "seed",
        SEED,
        str(trained / "adapter_seed.json"),
    )
    assert adapter_prior_centre(trained, seed=5).seed == 5
    # a recorded initial adapter wins over any seed; a given one over everything
    shutil.copytree(trained_adapter / "true_init", trained / "adapter_init")
    assert adapter_prior_centre(trained, seed=5).kind == "recorded"
    given = adapter_prior_centre(trained, adapter_init=trained_adapter / "true_init")
    assert given.kind == "file" and "given" in str(given)
    # the centre at the initialisation removes the cost of A0: orders of magnitude less KL
    zero = weight_statistics(llama_dir, adapter=trained, device="cpu")
    at_init = weight_statistics(llama_dir, adapter=trained, adapter_init=trained / "adapter_init")
    kl0 = gaussian_kl(zero, sigma=0.01, space="adapter").kl
    kl1 = gaussian_kl(at_init, sigma=0.01, space="adapter").kl
    assert kl1 < 1e-3 * kl0


def test_certify_centres_at_the_initialisation_by_default(
    tmp_path, llama_dir, trained_adapter, data_jsonl
):
    trained = tmp_path / "trained"
    shutil.copytree(trained_adapter / "trained", trained)
    kw = dict(n=4, sigma=0.01, mc_samples=1, space="adapter", base_certificate=False)
    zero = certify(llama_dir, adapter=trained, data=data_jsonl, **kw)
    assert zero.prior_centre.kind == "zero" and "theta0 = 0" in str(zero)
    seeded = certify(llama_dir, adapter=trained, data=data_jsonl, adapter_seed=SEED, **kw)
    assert seeded.prior_centre.kind == "seed" and "rebuilt from seed" in str(seeded)
    assert seeded.kl < 1e-3 * zero.kl
    # the Gibbs risk does not depend on the prior: the same samples either way
    assert seeded.gibbs.sample_risks == zero.gibbs.sample_risks
    given = certify(
        llama_dir,
        adapter=trained,
        data=data_jsonl,
        adapter_init=trained_adapter / "true_init",
        **kw,
    )
    assert given.prior_centre.kind == "file"
    assert given.kl == pytest.approx(seeded.kl, rel=1e-9)
    assert given.to_dict()["prior_centre"]["path"] == str(trained_adapter / "true_init")
    # precomputed statistics fix the centre; another adapter_init beside them is refused
    stats = weight_statistics(llama_dir, adapter=trained)
    measured = certify(llama_dir, adapter=trained, data=data_jsonl, stats=stats, **kw)
    assert measured.prior_centre.kind == "statistics" and measured.kl == pytest.approx(zero.kl)
    assert "measured in the given statistics: 0" in str(measured)
    with pytest.raises(InvalidParameterError, match="must be the one `stats` were measured"):
        certify(
            llama_dir,
            adapter=trained,
            data=data_jsonl,
            stats=stats,
            adapter_init=trained_adapter / "true_init",
            **kw,
        )


def test_bad_initial_adapters(tmp_path, llama_dir, trained_adapter, data_jsonl):
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    other = AutoModelForCausalLM.from_pretrained(llama_dir, dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        get_peft_model(other, _lora_config(r=2)).save_pretrained(tmp_path / "r2")
    with pytest.raises(
        InvalidParameterError, match="`adapter_init` must have the adapter's config: `r`"
    ):
        adapter_prior_centre(trained_adapter / "trained", adapter_init=tmp_path / "r2")
    with pytest.raises(InvalidParameterError, match="must be a PEFT adapter folder"):
        adapter_prior_centre(trained_adapter / "trained", adapter_init=tmp_path)
    bad = tmp_path / "bad"
    shutil.copytree(trained_adapter / "trained", bad)
    (bad / "adapter_seed.json").write_text(json.dumps({"seed": -1}))
    with pytest.raises(InvalidParameterError, match="integer >= 0; got -1"):
        adapter_prior_centre(bad)
    with pytest.raises(InvalidParameterError, match="`adapter_init` must be used with a LoRA"):
        certify(llama_dir, llama_dir, data_jsonl, adapter_init=tmp_path / "r2", n=2, sigma=0.01)


def test_cli_certify_options(tmp_path, llama_dir, trained_adapter, data_jsonl):
    from typer.testing import CliRunner

    from fits.cli.main import app

    def invoke(*args):
        return CliRunner().invoke(app, [str(a) for a in args])

    common = ["-n", 3, "--sigma", 0.01, "--mc-samples", 1, "--no-progress"]
    res = invoke(
        "certify",
        llama_dir,
        trained_adapter / "trained",
        data_jsonl,
        "--space",
        "adapter",
        "--adapter-init",
        trained_adapter / "true_init",
        "--bound-set",
        "file",
        "--no-base-certificate",
        "--json",
        *common,
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["prior_centre"]["kind"] == "file" and out["base_certificate"] is None
    assert out["bound_set"]["rows"] == [0, 1, 2] and out["dtype"] == "float32"
    bad = invoke(
        "certify", llama_dir, llama_dir, data_jsonl, "--delta", 0.6, "--delta-mc", 0.4, *common
    )
    assert bad.exit_code == 2 and "`delta` + `delta_mc` must be < 1" in bad.stderr
    assert "Traceback" not in bad.output and len(bad.stderr.strip().splitlines()) == 1
