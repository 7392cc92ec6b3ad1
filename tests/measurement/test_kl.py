"""Gaussian KL from the statistics table, its breakdowns, and the bounds through pacbound."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from measurement import gaussian_kl, weight_bound, weight_statistics
from pacbound.exceptions import InvalidParameterError


@pytest.fixture(scope="module")
def full_stats(sharded_base, full_finetune):
    return weight_statistics(sharded_base, full_finetune, device="cpu")


@pytest.fixture(scope="module")
def lora_stats(lora_cases):
    case = lora_cases["plain"]
    return weight_statistics(case.base, adapter=case.adapter, device="cpu", base_norms=True)


def _load_weights(folder) -> dict[str, torch.Tensor]:
    """Every tensor of a saved checkpoint, read straight from its safetensors files (float64)."""
    out: dict[str, torch.Tensor] = {}
    for f in sorted(Path(folder).glob("*.safetensors")):
        out.update({k: v.double() for k, v in load_file(f).items()})
    return out


def _dense_reference(base_dir, ft_dir, sigma_q, sigma_p) -> float:
    """KL(N(w_ft, diag σ_q²) ‖ N(w_base, diag σ_p²)) from the raw weights, element by element.

    ``torch.distributions`` evaluates the closed form per weight on dense float64 tensors;
    ``sigma_q(name, base)`` and ``sigma_p(name, base)`` give each tensor's standard deviations.
    Nothing here goes through :mod:`measurement`.
    """
    from torch.distributions import Normal, kl_divergence

    base, ft = _load_weights(base_dir), _load_weights(ft_dir)
    assert set(base) == set(ft)
    total = 0.0
    for name, w0 in base.items():
        q = Normal(ft[name], torch.full_like(w0, sigma_q(name, w0)))
        p = Normal(w0, torch.full_like(w0, sigma_p(name, w0)))
        total += float(kl_divergence(q, p).sum())
    return total


def test_isotropic_equal_variances_is_half_squared_distance_over_sigma2(full_stats):
    result = gaussian_kl(full_stats, sigma=1e-2)
    assert result.kl == pytest.approx(full_stats.sq_dist / (2 * 1e-4), rel=1e-12)
    assert result.sq_dist == pytest.approx(full_stats.sq_dist, rel=1e-15)
    assert result.numel == full_stats.numel and result.space == "weight"


def test_isotropic_with_prior_variance(full_stats, sharded_base, full_finetune):
    result = gaussian_kl(full_stats, sigma=1e-3, sigma_prior=3e-2)
    expected = _dense_reference(
        sharded_base, full_finetune, lambda name, w: 1e-3, lambda name, w: 3e-2
    )
    assert result.kl == pytest.approx(expected, rel=1e-10)
    # dimension term: every weight pays (1/2)(ρ − 1 − ln ρ) > 0 when σ_q ≠ σ_p
    assert result.kl > gaussian_kl(full_stats, sigma=3e-2).kl


def test_per_tensor_scale(full_stats, sharded_base, full_finetune):
    t = full_stats.table
    result = gaussian_kl(full_stats, sigma=0.1, sigma_prior=0.2, per_tensor_scale=True)
    n, sq, sb = (t[c].to_numpy(float) for c in ("numel", "sq_delta", "sq_base"))
    # the base's attention biases are zero-initialised: they take the RMS of all base weights
    zero = sb == 0
    assert zero.sum() == 8 and (sq[zero] > 0).all()  # q, k, v, o biases of 2 layers
    base = _load_weights(sharded_base)
    all_rms = math.sqrt(
        sum(float((w**2).sum()) for w in base.values()) / sum(w.numel() for w in base.values())
    )

    def tensor_rms(w):
        r = float(w.pow(2).mean().sqrt())
        return r if r > 0 else all_rms

    expected = _dense_reference(
        sharded_base,
        full_finetune,
        lambda name, w: 0.1 * tensor_rms(w),
        lambda name, w: 0.2 * tensor_rms(w),
    )
    # the statistics sum squares in float32 per row of 4096 elements (float64 across rows),
    # so a sum of squares of the deltas carries ~1e-7 relative error against the exact sum
    assert result.kl == pytest.approx(expected, rel=1e-7)
    assert "8 moved tensors have base RMS 0" in result.notes[0]
    per = result.per_tensor.set_index("name")
    name = "model.layers.0.mlp.up_proj.weight"
    row = t.set_index("name").loc[name]
    assert per.loc[name, "sigma_q"] == pytest.approx(0.1 * math.sqrt(row["sq_base"] / row["numel"]))
    floored = gaussian_kl(full_stats, sigma=0.1, per_tensor_scale=True, rms_floor=0.5)
    rms = np.maximum(np.sqrt(sb / n), 0.5)
    assert floored.kl == pytest.approx(float(np.sum(sq / (2 * (0.1 * rms) ** 2))), rel=1e-10)


def test_breakdowns_add_up(full_stats):
    result = gaussian_kl(full_stats, sigma=5e-3, sigma_prior=1e-2)
    for table in (result.per_layer, result.per_module, result.per_kind):
        assert table["kl"].sum() == pytest.approx(result.kl, rel=1e-12)
        assert table["numel"].sum() == result.numel
    assert set(result.per_module["module"]) == {"attention", "mlp", "embedding", "norm"}
    layers = result.per_layer["layer"].tolist()
    assert layers[:2] == [0, 1] and result.per_layer["layer"].isna().sum() == 1
    payload = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert {"kl", "sq_dist", "per_layer", "per_module"} <= set(payload)
    assert payload["per_layer"][-1]["layer"] is None
    assert "nats" in str(result)


def test_new_rows_use_their_tensors_rms(sharded_base, resized_finetune):
    stats = weight_statistics(sharded_base, resized_finetune, device="cpu")
    result = gaussian_kl(stats, sigma=0.5, per_tensor_scale=True)
    per = result.per_tensor.query("kind == 'new_rows'").iloc[0]
    emb = stats.table.query("name == 'model.embed_tokens.weight' and kind == 'full'").iloc[0]
    rms = math.sqrt(emb["sq_base"] / emb["numel"])
    assert per["sigma_q"] == pytest.approx(0.5 * rms)
    assert per["kl"] == pytest.approx(per["sq_delta"] / (2 * (0.5 * rms) ** 2), rel=1e-12)


def test_lora_weight_and_adapter_space_are_separate(lora_stats):
    weight = gaussian_kl(lora_stats, sigma=1e-2)
    adapter = gaussian_kl(lora_stats, sigma=1e-2, space="adapter")
    assert weight.sq_dist == pytest.approx(lora_stats.sq_dist)
    assert adapter.sq_dist == pytest.approx(float(lora_stats.adapter_table["sq_delta"].sum()))
    assert adapter.numel < weight.numel
    # with σ_q ≠ σ_p the frozen weights count in weight space
    ratio = gaussian_kl(lora_stats, sigma=1e-2, sigma_prior=2e-2)
    frozen = ratio.per_kind.set_index("kind").loc["frozen", "kl"]
    rho = 0.25
    n_frozen = int(lora_stats.table.query("kind == 'frozen'")["numel"].sum())
    assert frozen == pytest.approx(0.5 * n_frozen * (rho - 1 - math.log(rho)), rel=1e-12)
    scaled = gaussian_kl(lora_stats, sigma=0.1, per_tensor_scale=True)
    assert scaled.kl > 0


def test_kl_argument_errors(full_stats, lora_cases):
    with pytest.raises(InvalidParameterError, match=r"`sigma` must be in \(0, inf\); got 0.0"):
        gaussian_kl(full_stats, sigma=0)
    with pytest.raises(
        InvalidParameterError, match=r"`sigma_prior` must be in \(0, inf\); got -1.0"
    ):
        gaussian_kl(full_stats, sigma=1, sigma_prior=-1)
    with pytest.raises(
        InvalidParameterError, match="`space` must be 'weight' for a full fine-tune"
    ):
        gaussian_kl(full_stats, sigma=1, space="adapter")
    light = weight_statistics(
        lora_cases["plain"].base, adapter=lora_cases["plain"].adapter, device="cpu"
    )
    with pytest.raises(InvalidParameterError, match="base_norms=True"):
        gaussian_kl(light, sigma=0.1, per_tensor_scale=True)
    with pytest.raises(InvalidParameterError, match="RMS 0"):
        gaussian_kl(light, sigma=0.1, per_tensor_scale=True, space="adapter")


def test_bound_charges_the_sigma_grid(full_stats):
    import pacbound

    grid = [1e-2, 3e-2, 1e-1]
    single = weight_bound(full_stats, emp_risk=0.1, n=2000, delta=0.05, sigma=3e-2)
    charged = weight_bound(
        full_stats, emp_risk=0.1, n=2000, delta=0.05, sigma=3e-2, sigma_grid=grid
    )
    kl = gaussian_kl(full_stats, sigma=3e-2).kl
    assert single.kl["kl"].kl == pytest.approx(kl)
    direct = pacbound.kl_bound(0.1, kl, 2000, 0.05, union={"sigma grid": 3})
    assert float(charged.bounds["kl"].value) == pytest.approx(float(direct.value), rel=1e-12)
    for name in ("kl", "mcallester", "catoni"):
        assert float(charged.bounds[name].value) > float(single.bounds[name].value)
    assert float(single.bounds["kl"].value) == pytest.approx(
        float(pacbound.kl_bound(0.1, kl, 2000, 0.05).value), rel=1e-12
    )
    payload = json.loads(json.dumps(charged.to_dict(), allow_nan=False))
    assert payload["sigma_grid"] == grid and "kl" in payload["bounds"]


def test_bound_picks_the_best_sigma_of_the_grid(full_stats):
    grid = [1e-2, 3e-2, 1e-1]
    risks = [0.10, 0.12, 0.60]
    result = weight_bound(full_stats, emp_risk=risks, n=2000, delta=0.05, sigma_grid=grid)
    values = [entry["bounds"]["kl"] for entry in result.grid]
    best = int(np.argmin(values))
    assert result.sigma["kl"] == grid[best]
    assert float(result.bounds["kl"].value) == pytest.approx(values[best])
    assert [e["emp_risk"] for e in result.grid] == risks
    with pytest.raises(InvalidParameterError, match="one value per sigma in the grid"):
        weight_bound(full_stats, emp_risk=[0.1, 0.2], n=2000, delta=0.05, sigma_grid=grid)
    with pytest.raises(
        InvalidParameterError, match="must be one of the sigma grid fixed in advance"
    ):
        weight_bound(full_stats, emp_risk=0.1, n=2000, delta=0.05, sigma=0.5, sigma_grid=grid)
    with pytest.raises(InvalidParameterError, match="`sigma` must be given"):
        weight_bound(full_stats, emp_risk=0.1, n=2000, delta=0.05)
