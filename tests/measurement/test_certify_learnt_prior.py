"""``certify`` with a learnt prior (``--prior`` + ``--prior-rows``) on real tiny Llama models.

The data file (``ROWS`` of the fixtures) has 12 rows; rows 0 and 7 have the same text
("What is 2 + 3? The answer is 5.") split at a different prompt/completion boundary, which the
overlap check must catch when they fall on both sides of the split.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

import pacbound
from fits.cli.main import app
from measurement import certificate_bounds, certify
from pacbound.exceptions import InvalidParameterError
from tests._tiny import save_model, tiny_llama

pytest_plugins = ["tests.measurement._data_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")

runner = CliRunner()
PRIOR_ROWS = [0, 1, 2, 3, 7]  # rows 0 and 7 (same text) both on the prior's side
SIGMA = 0.01


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def write_rows(path, rows, **extra):
    path.write_text(json.dumps({"rows": rows, **extra}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def rows_file(tmp_path_factory):
    return write_rows(
        tmp_path_factory.mktemp("split") / "prior_rows.json", PRIOR_ROWS, fraction=0.4, seed=3
    )


@pytest.fixture(scope="module")
def perturbed_prior(tmp_path_factory, finetuned_dir):
    """A prior checkpoint: the fine-tune moved by 1e-3 N(0, 1) per weight; and ‖w_ft − w_P‖²."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(finetuned_dir, dtype=torch.float32)
    ft = {n: p.detach().double().clone() for n, p in model.named_parameters()}
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1e-3 * torch.randn(p.shape, generator=gen))
    sq = sum(float((ft[n] - p.detach().double()).pow(2).sum()) for n, p in model.named_parameters())
    return save_model(model, tmp_path_factory.mktemp("prior") / "prior"), sq


def _learnt(llama_dir, finetuned_dir, data_jsonl, prior, rows, **extra):
    kw = dict(sigma=SIGMA, mc_samples=3, delta=0.05, delta_mc=0.05, base_certificate=False)
    return certify(
        llama_dir, finetuned_dir, data_jsonl, prior=prior, prior_rows=rows, **{**kw, **extra}
    )


def test_prior_at_the_finetune_certifies_at_kl_zero(
    llama_dir, finetuned_dir, data_jsonl, rows_file
):
    cert = _learnt(llama_dir, finetuned_dir, data_jsonl, finetuned_dir, rows_file)
    # n is the bound part's size: the 12 rows minus the prior's 5, none of them drawn
    assert cert.n == 12 - len(PRIOR_ROWS) == cert.gibbs.n_examples
    assert sorted(cert.bound_set["rows"]) == [r for r in range(12) if r not in PRIOR_ROWS]
    assert cert.bound_set["excluded"] == len(PRIOR_ROWS)
    # Q = P exactly: KL 0, and the certificate is the Gibbs-risk bound at KL 0 with n = 7
    assert cert.kl == pytest.approx(0.0, abs=1e-9)
    q_upper, bounds = certificate_bounds(
        cert.gibbs.mean, 3, 0.0, 7, delta=0.05, delta_mc=0.05, catoni_grid=cert.catoni_grid
    )
    assert cert.q_upper == pytest.approx(q_upper, rel=1e-12)
    assert cert.best == pytest.approx(min(float(b.value) for b in bounds.values()), rel=1e-12)
    expect = float(pacbound.kl_inv_upper(q_upper, math.log(2 * math.sqrt(7) / 0.05) / 7))
    assert float(cert.bounds["kl"].value) == pytest.approx(expect, rel=1e-9)
    # provenance, kind and assumptions are stated
    assert cert.prior["kind"] == "learnt" and cert.prior["centre"] == str(finetuned_dir)
    assert cert.prior["n_rows"] == 5 and cert.prior["fraction"] == 0.4 and cert.prior["seed"] == 3
    assert cert.kind.startswith("learnt prior (tightness only")
    assumed = dict(cert.assumptions)
    assert "w_prior" in assumed["prior"] and "not from the base" in assumed["prior"]
    assert "fraction 0.4, seed 3" in assumed["bound set"]
    text = str(cert)
    assert f"learnt prior from {finetuned_dir} on 5 rows (fraction 0.4, seed 3" in text
    assert "tightness only" in text


def test_kl_is_the_move_from_the_prior_and_n_follows_the_draw(
    llama_dir, finetuned_dir, data_jsonl, rows_file, perturbed_prior
):
    prior, sq = perturbed_prior
    cert = _learnt(
        llama_dir, finetuned_dir, data_jsonl, prior, rows_file, n=4, data_seed=5, mc_samples=2
    )
    # KL(N(w_ft, s^2) || N(w_P, s^2)) = ||w_ft - w_P||^2 / (2 s^2), not the move from the base
    assert cert.kl == pytest.approx(sq / (2 * SIGMA**2), rel=1e-6)
    base_centred = certify(
        llama_dir, finetuned_dir, data_jsonl, sigma=SIGMA, mc_samples=1, base_certificate=False
    )
    assert base_centred.prior["kind"] == "base" and "paper's meaning" in base_centred.kind
    assert base_centred.kl > 10 * cert.kl  # 3 steps at lr 1e-2 move far more than 1e-3 noise
    assert cert.n == 4 and not set(cert.bound_set["rows"]) & set(PRIOR_ROWS)
    assert "4 of the 7 rows outside the prior's 5" in cert.bound_set["text"]


def test_overlapping_text_other_architecture_and_bad_splits_are_refused(
    tmp_path, llama_dir, finetuned_dir, data_jsonl, rows_file
):
    # row 0 in the prior, row 7 (the same text) left in the bound set
    with pytest.raises(InvalidParameterError, match=r"disjoint.*1 of the 11.*What is 2 \+ 3\?"):
        _learnt(llama_dir, finetuned_dir, data_jsonl, finetuned_dir, [0])
    wider = save_model(tiny_llama(seed=1, intermediate_size=96), tmp_path / "wider")
    with pytest.raises(InvalidParameterError, match=r"architecture.*first mismatch: `model\.lay"):
        _learnt(llama_dir, finetuned_dir, data_jsonl, wider, rows_file)
    untied = save_model(tiny_llama(seed=1, tie=False), tmp_path / "untied")
    with pytest.raises(InvalidParameterError, match=r"`lm_head\.weight` is in the prior"):
        _learnt(llama_dir, finetuned_dir, data_jsonl, untied, rows_file)
    cases = [
        ({"prior_rows": None}, "must be given together"),
        ({"prior_rows": [3, 12]}, r"indices into .* \(0 to 11\); got 12"),
        ({"prior_rows": {"rows": [1], "of": 100}}, "drawn from 100 rows"),
        ({"prior_rows": list(range(12))}, "leaving no bound set"),
        ({"prior_rows": [-1]}, "0-based row indices"),
        (
            {"prior_rows": {"rows": [1], "fraction": 1.5}},
            r"`fraction` must be a number in \(0, 1\)",
        ),
        ({"prior_rows": PRIOR_ROWS, "n": 8}, "outside the prior's 5 rows \\(7\\); got 8"),
    ]
    for extra, message in cases:
        kw = {"prior_rows": rows_file, **extra}
        rows = kw.pop("prior_rows")
        with pytest.raises(InvalidParameterError, match=message):
            _learnt(llama_dir, finetuned_dir, data_jsonl, finetuned_dir, rows, **kw)


@pytest.fixture(scope="module")
def lora_prior(tmp_path_factory, adapter_dir):
    """A LoRA prior of the adapter's family: its A and B moved by 1e-3 N(0, 1); and
    ‖θ_ft − θ_prior‖² over the adapter's parameters."""
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path_factory.mktemp("lora-prior") / "prior"
    shutil.copytree(adapter_dir, folder)
    file = folder / "adapter_model.safetensors"
    tensors = load_file(file)
    gen = torch.Generator().manual_seed(5)
    moved = {k: v + 1e-3 * torch.randn(v.shape, generator=gen) for k, v in tensors.items()}
    save_file(moved, file, metadata={"format": "pt"})
    sq = sum(float((moved[k].double() - tensors[k].double()).pow(2).sum()) for k in tensors)
    return folder, sq


def test_learnt_lora_prior_in_adapter_space(
    llama_dir, adapter_dir, data_jsonl, rows_file, lora_prior
):
    kw = dict(
        adapter=adapter_dir,
        data=data_jsonl,
        prior_rows=rows_file,
        space="adapter",
        sigma=SIGMA,
        mc_samples=2,
        base_certificate=False,
    )
    same = certify(llama_dir, prior=adapter_dir, **kw)
    assert same.kl == pytest.approx(0.0, abs=1e-9) and same.n == 12 - len(PRIOR_ROWS)
    assert same.prior_centre.kind == "learnt" and same.prior["kind"] == "learnt"
    folder, sq = lora_prior
    moved = certify(llama_dir, prior=folder, **kw)
    # KL(N(θ_ft, σ²) ‖ N(θ_prior, σ²)) = ‖θ_ft − θ_prior‖² / (2σ²), over A and B only
    assert moved.kl == pytest.approx(sq / (2 * SIGMA**2), rel=1e-6)
    assert "theta_prior" in dict(moved.assumptions)["prior"]
    assert "learnt prior's adapter" in str(moved.prior_centre)


def test_learnt_lora_prior_refusals(llama_dir, adapter_dir, data_jsonl, rows_file, tmp_path):
    import shutil

    def run(prior, **extra):
        kw = dict(space="adapter", sigma=SIGMA, mc_samples=1, base_certificate=False)
        return certify(
            llama_dir,
            adapter=adapter_dir,
            data=data_jsonl,
            prior=prior,
            prior_rows=rows_file,
            **{**kw, **extra},
        )

    with pytest.raises(InvalidParameterError, match="must be a PEFT adapter folder"):
        run(llama_dir)
    with pytest.raises(InvalidParameterError, match="certified in adapter space"):
        run(adapter_dir, space="weight")
    with pytest.raises(InvalidParameterError, match="both set the adapter-space prior's centre"):
        run(adapter_dir, adapter_init=adapter_dir)
    other = tmp_path / "other"
    shutil.copytree(adapter_dir, other)
    cfg = json.loads((other / "adapter_config.json").read_text())
    cfg["r"] = 8
    (other / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(InvalidParameterError, match=r"`prior` must have the adapter's config: `r`"):
        run(other)


def test_cli_prints_the_provenance_and_refuses_overlap(
    tmp_path, llama_dir, finetuned_dir, data_jsonl, rows_file
):
    common = ["--sigma", SIGMA, "--mc-samples", 2, "--no-base-certificate", "--no-progress"]
    res = invoke(
        "certify",
        llama_dir,
        finetuned_dir,
        data_jsonl,
        "--prior",
        finetuned_dir,
        "--prior-rows",
        rows_file,
        "--json",
        *common,
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["n"] == 7 and payload["kl"] == pytest.approx(0.0, abs=1e-9)
    assert payload["kind"].startswith("learnt prior (tightness only")
    assert payload["prior"]["kind"] == "learnt" and payload["prior"]["n_rows"] == 5
    assert payload["prior"]["rows_file"] == str(rows_file)
    assert set(payload["assumptions"]) >= {
        "bound set",
        "loss",
        "prior",
        "union costs",
        "delta split",
    }
    assert "w_prior" in payload["assumptions"]["prior"]
    # the rows file names row 0 only: row 7 repeats its text in the bound set
    overlap = write_rows(tmp_path / "overlap.json", [0])
    bad = invoke(
        "certify",
        llama_dir,
        finetuned_dir,
        data_jsonl,
        "--prior",
        finetuned_dir,
        "--prior-rows",
        overlap,
        *common,
    )
    assert bad.exit_code == 2, bad.output
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "disjoint" in lines[0] and "1 of the 11" in lines[0]
    wider = save_model(tiny_llama(seed=1, intermediate_size=96), tmp_path / "wider")
    arch = invoke(
        "certify", llama_dir, finetuned_dir, data_jsonl, "--prior", wider, "--prior-rows",
        rows_file, *common,
    )  # fmt: skip
    assert arch.exit_code == 2 and "first mismatch" in arch.stderr
    assert len(arch.stderr.strip().splitlines()) == 1


def test_rows_file_forms(tmp_path):
    from measurement._prior_split import PriorSplit

    plain = tmp_path / "plain.json"
    plain.write_text("[4, 1, 1]", encoding="utf-8")
    split = PriorSplit.load(plain)
    assert split.rows == (1, 4) and split.fraction is None and split.source == str(plain)
    assert split.describe() == f"2 rows (rows file {plain})"
    full = PriorSplit.load(write_rows(tmp_path / "full.json", [2], fraction=0.5, seed=7, of=9))
    assert full.to_dict() == {
        "n_rows": 1,
        "fraction": 0.5,
        "seed": 7,
        "of": 9,
        "rows_file": str(tmp_path / "full.json"),
    }
    broken = tmp_path / "broken.json"
    broken.write_text("{rows: 1", encoding="utf-8")
    for bad, message in [
        (broken, "must be JSON"),
        (tmp_path / "missing.json", "is not a file"),
        (write_rows(tmp_path / "extra.json", [1], sead=2), r"unknown keys \['sead'\]"),
        (write_rows(tmp_path / "float.json", [1.5]), "0-based row indices"),
    ]:
        with pytest.raises(InvalidParameterError, match=message):
            PriorSplit.load(bad)


def test_cli_learnt_lora_prior(llama_dir, adapter_dir, data_jsonl, rows_file, lora_prior):
    folder, sq = lora_prior
    res = invoke(
        "certify",
        llama_dir,
        adapter_dir,
        data_jsonl,
        "--space",
        "adapter",
        "--prior",
        folder,
        "--prior-rows",
        rows_file,
        "--sigma",
        SIGMA,
        "--mc-samples",
        1,
        "--no-base-certificate",
        "--no-progress",
        "--json",
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["kl"] == pytest.approx(sq / (2 * SIGMA**2), rel=1e-6)
    assert payload["prior"]["kind"] == "learnt" and payload["prior_centre"]["kind"] == "learnt"
    bad = invoke(
        "certify",
        llama_dir,
        adapter_dir,
        data_jsonl,
        "--prior",
        folder,
        "--prior-rows",
        rows_file,
        "--sigma",
        SIGMA,
        "--no-progress",
    )
    assert bad.exit_code == 2 and "certified in adapter space" in bad.stderr
    assert "Traceback" not in bad.output
