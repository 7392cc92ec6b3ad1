"""LoRA and its variants against peft's own merge_and_unload, and adapter-space statistics."""

from __future__ import annotations

import json
import math
import shutil
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from measurement import weight_statistics
from measurement._lora import pattern_key, read_adapter_config
from measurement.exceptions import AdapterConfigError, NonFiniteWeightError, UnpairedTensorError
from tests._tiny import finetune_steps, tiny_gpt2, tiny_llama
from tests.measurement.conftest import LORA_CONFIGS, build_lora_case


def _check_against_merge(case, stats, *, rtol=1e-6):
    """Every moved tensor matches peft's dense merge; every frozen one is unchanged."""
    changed = {
        k
        for k in case.merged_sd
        if not torch.equal(case.merged_sd[k], case.base_sd.get(k, torch.zeros(0)))
    }
    table = stats.table.set_index("name")
    measured = set()
    for name, row in table.iterrows():
        if row["kind"] == "frozen":
            assert row["sq_delta"] == 0 and row["n_zero_delta"] == row["numel"]
            if name in case.merged_sd:
                assert torch.equal(case.merged_sd[name], case.base_sd[name]), name
            continue
        measured.add(name)
        assert row["sq_delta"] == pytest.approx(case.dense_sq_delta(name), rel=rtol), name
        assert row["numel"] == case.merged_sd[name].numel()
    emb = "model.embed_tokens.weight"
    if emb in case.merged_sd and torch.equal(case.merged_sd["lm_head.weight"], case.merged_sd[emb]):
        changed.discard("lm_head.weight")  # tied to the embedding: one tensor, counted once
    assert measured >= changed


@pytest.mark.parametrize("variant", list(LORA_CONFIGS))
def test_factored_norm_equals_peft_merge(lora_cases, variant):
    case = lora_cases[variant]
    stats = weight_statistics(case.base, adapter=case.adapter, device="cpu")
    _check_against_merge(case, stats)
    kinds = set(stats.table["kind"])
    expected = {"dora": "dora", "modules_to_save": "modules_to_save"}.get(variant, "lora")
    assert expected in kinds and "frozen" in kinds
    assert stats.numel == sum(
        v.numel() for k, v in case.base_sd.items() if k != "lm_head.weight"
    ) + (case.merged_sd["lm_head.weight"].numel() if variant == "modules_to_save" else 0)


def test_fan_in_fan_out_gpt2(gpt2_lora):
    stats = weight_statistics(gpt2_lora.base, adapter=gpt2_lora.adapter, device="cpu")
    _check_against_merge(gpt2_lora, stats)
    assert set(stats.table.query("kind == 'lora'")["module"]) == {"attention", "mlp"}


def test_dora_on_fan_in_fan_out_layers(tmp_path, gpt2_lora):
    case = build_lora_case(tmp_path, gpt2_lora.base, "dora", tiny_gpt2(seed=0),
                           target_modules=["c_attn"], fan_in_fan_out=True, use_dora=True)  # fmt: skip
    stats = weight_statistics(case.base, adapter=case.adapter, device="cpu", chunk_bytes=2048)
    _check_against_merge(case, stats)


def test_base_norms_fill_every_column(lora_cases):
    case = lora_cases["plain"]
    light = weight_statistics(case.base, adapter=case.adapter, device="cpu")
    full = weight_statistics(
        case.base, adapter=case.adapter, device="cpu", base_norms=True, chunk_bytes=3000
    )
    lora_light = light.table.query("kind == 'lora'").set_index("name")
    lora_full = full.table.query("kind == 'lora'").set_index("name")
    assert lora_light["sq_base"].isna().all() and lora_light["n_zero_delta"].isna().all()
    np.testing.assert_array_equal(lora_full["sq_delta"], lora_light["sq_delta"])  # factored
    for name, row in lora_full.iterrows():
        base, merged = case.base_sd[name], case.merged_sd[name]
        assert row["sq_base"] == pytest.approx(float(base.square().sum()), rel=1e-6)
        assert row["sq_finetuned"] == pytest.approx(float(merged.square().sum()), rel=1e-6)
        assert row["max_abs_delta"] == pytest.approx(float((merged - base).abs().max()), rel=1e-5)
        assert row["n_zero_delta"] == 0


def test_scaling_and_patterns_follow_peft(lora_cases):
    cfg = read_adapter_config(lora_cases["rslora"].adapter)
    assert cfg.use_rslora and cfg.scaling(8, 16) == pytest.approx(16 / math.sqrt(8))
    cfg = read_adapter_config(lora_cases["pattern"].adapter)
    assert cfg.rank_alpha("model.layers.0.self_attn.q_proj") == (2, 8.0)
    assert cfg.rank_alpha("model.layers.1.self_attn.v_proj") == (6, 3.0)
    assert cfg.rank_alpha("model.layers.0.self_attn.v_proj") == (4, 3.0)
    assert cfg.rank_alpha("model.layers.0.mlp.down_proj") == (4, 8.0)
    assert pattern_key(["q_proj"], "model.layers.0.self_attn.xq_proj") is None


def _edited(tmp_path, case, **changes):
    folder = tmp_path / "edited"
    shutil.copytree(case.adapter, folder)
    cfg = json.loads((folder / "adapter_config.json").read_text())
    for key, value in changes.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    return folder


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"r": None}, "`r` in `.*adapter_config.json` must be given"),
        ({"r": 0}, "`r` in .* must be an integer >= 1; got 0"),
        ({"peft_type": "IA3"}, "`peft_type` .* must be 'LORA'.*got 'IA3'"),
        ({"init_lora_weights": "pissa"}, "must not modify the base weights; got 'pissa'"),
        (
            {"target_parameters": ["experts.gate_up_proj"]},
            r"`target_parameters` .* must be empty \(not supported yet\)",
        ),
        ({"r": 8}, "adapter_config.json gives r = 8 .* but lora_A has 4 rows"),
        ({"lora_alpha": "eight"}, "`lora_alpha` .* must be a finite number"),
    ],
)
def test_adapter_config_errors(tmp_path, lora_cases, changes, match):
    folder = _edited(tmp_path, lora_cases["plain"], **changes)
    with pytest.raises(AdapterConfigError, match=match):
        weight_statistics(lora_cases["plain"].base, adapter=folder, device="cpu")


def test_adapter_files_missing_or_broken(tmp_path, lora_cases, gpt2_lora):
    case = lora_cases["plain"]
    folder = tmp_path / "nofile"
    shutil.copytree(case.adapter, folder)
    (folder / "adapter_model.safetensors").unlink()
    with pytest.raises(AdapterConfigError, match=r"has no adapter_model\.safetensors"):
        weight_statistics(case.base, adapter=folder, device="cpu")
    (tmp_path / "notjson").mkdir()
    (tmp_path / "notjson" / "adapter_config.json").write_text("{r: 4")
    with pytest.raises(AdapterConfigError, match="is not valid JSON"):
        read_adapter_config(tmp_path / "notjson")
    bad = tmp_path / "nan"
    shutil.copytree(case.adapter, bad)
    sd = load_file(bad / "adapter_model.safetensors")
    key = next(k for k in sd if k.endswith("lora_B.weight"))
    sd[key][0, 0] = float("nan")
    save_file(sd, bad / "adapter_model.safetensors")
    with pytest.raises(NonFiniteWeightError, match=f"`{key}` .* 1 NaN"):
        weight_statistics(case.base, adapter=bad, device="cpu")
    no_fifo = _edited(tmp_path, gpt2_lora, fan_in_fan_out=False)
    with pytest.raises(AdapterConfigError, match=r"has shape \[96, 32\] .*check fan_in_fan_out"):
        weight_statistics(gpt2_lora.base, adapter=no_fifo, device="cpu")
    with pytest.raises(UnpairedTensorError, match="only in adapter"):
        weight_statistics(case.base, adapter=gpt2_lora.adapter, device="cpu")


def test_adapter_space_rows(lora_cases):
    case = lora_cases["dora"]
    stats = weight_statistics(case.base, adapter=case.adapter, device="cpu")
    sd = load_file(case.adapter / "adapter_model.safetensors")
    rows = stats.adapter_table.set_index("name")
    assert int(rows["numel"].sum()) == sum(v.numel() for v in sd.values())
    for key, value in sd.items():
        row = rows.loc[key.removeprefix("base_model.model.")]
        if key.endswith("lora_magnitude_vector"):
            w = case.base_sd[
                key.removeprefix("base_model.model.").replace("lora_magnitude_vector", "weight")
            ]
            centre = w.norm(dim=1)  # the data-free magnitude, at B0 = 0
            assert row["kind"] == "dora_magnitude"
            assert row["sq_delta"] == pytest.approx(
                float((value.double() - centre).square().sum()), rel=1e-6
            )
        else:
            assert row["kind"] in ("lora_A", "lora_B")
            assert row["sq_delta"] == pytest.approx(float(value.double().square().sum()), rel=1e-12)
            assert row["sq_base"] == 0
    # the families are separate tables, never summed together
    assert stats.sq_dist != pytest.approx(float(stats.adapter_table["sq_delta"].sum()))


def test_adapter_init_centres_the_adapter_space_prior(tmp_path, weights_tokenizer, sharded_base):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(
            tiny_llama(seed=0, attention_bias=True),
            LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], init_lora_weights=True),
        )
        model.save_pretrained(tmp_path / "init")
        init = {
            k: v.clone()
            for k, v in load_file(tmp_path / "init" / "adapter_model.safetensors").items()
        }
        finetune_steps(model, weights_tokenizer, steps=2, lr=1e-2)
        model.save_pretrained(tmp_path / "trained")
    trained = load_file(tmp_path / "trained" / "adapter_model.safetensors")
    stats = weight_statistics(
        sharded_base, adapter=tmp_path / "trained", adapter_init=tmp_path / "init", device="cpu"
    )
    expected = sum(float((trained[k].double() - init[k].double()).square().sum()) for k in trained)
    assert float(stats.adapter_table["sq_delta"].sum()) == pytest.approx(expected, rel=1e-12)
    zero_centred = weight_statistics(sharded_base, adapter=tmp_path / "trained", device="cpu")
    assert float(zero_centred.adapter_table["sq_delta"].sum()) > float(
        stats.adapter_table["sq_delta"].sum()
    )
    assert stats.meta["families"]["adapter"].endswith("(θ0 from adapter_init)")


def test_lora_on_a_tied_head_is_counted_once(tmp_path, sharded_base):
    case = build_lora_case(
        tmp_path, sharded_base, "head", tiny_llama(seed=0, attention_bias=True),
        target_modules=["lm_head"],
    )  # fmt: skip
    stats = weight_statistics(case.base, adapter=case.adapter, device="cpu")
    table = stats.table.set_index("name")
    assert table.loc["lm_head.weight", "kind"] == "lora"
    assert table.loc["model.embed_tokens.weight", "kind"] == "frozen"
    # peft's merge writes the delta into the one tied tensor: one tensor's worth of change
    assert stats.sq_dist == pytest.approx(case.dense_sq_delta("lm_head.weight"), rel=1e-6)
