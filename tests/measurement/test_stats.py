"""The weight-statistics table: totals against a float64 reference, dtypes, files."""

from __future__ import annotations

import glob
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from measurement import WeightStats, weight_statistics
from measurement._stats import TABLE_COLUMNS
from pacbound.exceptions import InputFileError, InvalidParameterError


def _state(folder) -> dict[str, torch.Tensor]:
    out = {}
    for f in sorted(glob.glob(str(folder / "*.safetensors"))):
        out.update({k: v.double() for k, v in load_file(f).items()})
    return out


def _reference(base_dir, ft_dir):
    base, ft = _state(base_dir), _state(ft_dir)
    deltas = {k: ft[k] - base[k] for k in ft}
    return base, ft, deltas


@pytest.mark.parametrize("pair", ["float32", "bfloat16"])
def test_totals_equal_float64_reference(pair, sharded_base, full_finetune, bf16_pair):
    base_dir, ft_dir = (sharded_base, full_finetune) if pair == "float32" else bf16_pair
    stats = weight_statistics(base_dir, ft_dir, device="cpu")
    base, ft, deltas = _reference(base_dir, ft_dir)
    table = stats.table.set_index("name")
    assert list(stats.table.columns) == list(TABLE_COLUMNS)
    assert set(table.index) == set(deltas)
    for name, d in deltas.items():
        row = table.loc[name]
        assert row["numel"] == d.numel()
        assert row["sq_delta"] == pytest.approx(float(d.square().sum()), rel=1e-6)
        assert row["sq_base"] == pytest.approx(float(base[name].square().sum()), rel=1e-6)
        assert row["sq_finetuned"] == pytest.approx(float(ft[name].square().sum()), rel=1e-6)
        assert row["max_abs_delta"] == float(d.abs().max())
        assert row["n_zero_delta"] == int((d == 0).sum())
        assert row["dtype_base"] == row["dtype_finetuned"] == pair
    total = sum(float(d.square().sum()) for d in deltas.values())
    assert stats.sq_dist == pytest.approx(total, rel=1e-6)  # fp32 delta: <= 2.4e-7
    if pair == "bfloat16":  # updates below half an ulp are lost in bf16: they show up here
        assert stats.table["n_zero_delta"].sum() > 0


def test_unchanged_tensors_and_untied_head(sharded_base, untied_finetune):
    stats = weight_statistics(sharded_base, untied_finetune, device="cpu")
    table = stats.table.set_index("name")
    moved = table[table["sq_delta"] > 0].index
    assert set(moved) == {"lm_head.weight", "model.layers.0.mlp.up_proj.weight"}
    unmoved = table.drop(moved)
    assert (unmoved["n_zero_delta"] == unmoved["numel"]).all() and (
        unmoved["max_abs_delta"] == 0
    ).all()
    head = table.loc["lm_head.weight"]
    assert head["module"] == "lm_head" and head["max_abs_delta"] == pytest.approx(0.01, rel=1e-5)
    assert head["sq_delta"] == pytest.approx(head["numel"] * 1e-4, rel=1e-4)


def test_new_rows_are_reported_apart(sharded_base, resized_finetune):
    stats = weight_statistics(sharded_base, resized_finetune, device="cpu")
    rows = stats.table.query("name == 'model.embed_tokens.weight'").set_index("kind")
    new = load_file(resized_finetune / "model.safetensors")["model.embed_tokens.weight"][
        320:
    ].double()
    assert rows.loc["full", "sq_delta"] == 0 and rows.loc["full", "numel"] == 320 * 64
    assert rows.loc["new_rows", "numel"] == 8 * 64
    assert rows.loc["new_rows", "sq_delta"] == pytest.approx(float(new.square().sum()), rel=1e-6)
    assert pd_isna(rows.loc["new_rows", "dtype_base"])


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_save_and_load_round_trip(tmp_path, lora_cases):
    case = lora_cases["dora"]
    stats = weight_statistics(case.base, adapter=case.adapter, device="cpu")
    folder = stats.save(tmp_path / "stats")
    assert sorted(p.name for p in folder.iterdir()) == [
        ".sft-tradeoff-output",  # the marker: the toolkit wrote this folder
        "adapter_stats.parquet",
        "weight_stats.json",
        "weight_stats.manifest.json",
        "weight_stats.parquet",
    ]
    loaded = WeightStats.load(folder)
    assert loaded.table.equals(stats.table)
    assert loaded.adapter_table.equals(stats.adapter_table)
    assert loaded.meta["adapter_config"]["use_dora"] is True
    data = json.loads((folder / "weight_stats.json").read_text())
    assert data["summary"]["sq_dist"] == pytest.approx(stats.sq_dist)
    assert data["columns"] == list(TABLE_COLUMNS) and len(data["rows"]) == len(stats.table)
    for parquet in folder.glob("*.parquet"):  # the JSON alone suffices
        parquet.unlink()
    from_json = WeightStats.load(folder)
    np.testing.assert_allclose(from_json.table["sq_delta"], stats.table["sq_delta"], rtol=1e-15)
    assert from_json.table["sq_base"].isna().sum() == stats.table["sq_base"].isna().sum()
    assert from_json.table.dtypes.equals(stats.table.dtypes)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(InputFileError, match=r"weight_stats\.json` is missing"):
        WeightStats.load(tmp_path)
    (tmp_path / "weight_stats.json").write_text("{oops")
    with pytest.raises(InputFileError, match="is not valid JSON"):
        WeightStats.load(tmp_path)
    (tmp_path / "weight_stats.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(InputFileError, match="must be a weight-statistics file"):
        WeightStats.load(tmp_path)
    (tmp_path / "weight_stats.json").write_text(
        json.dumps(
            {"format": "sft-tradeoff weight statistics", "rows": [{"name": "w", "numel": 3}]}
        )
    )
    with pytest.raises(InputFileError, match="missing layer, module, kind"):
        WeightStats.load(tmp_path)


def test_summary_text_and_json(sharded_base, full_finetune):
    stats = weight_statistics(sharded_base, full_finetune, device="cpu")
    text = str(stats)
    assert "full fine-tune" in text and "attention" in text and "GB/s" in text
    summary = json.loads(json.dumps(stats.to_dict(), allow_nan=False))
    assert summary["sq_dist"] == pytest.approx(stats.sq_dist)
    assert set(summary["by_module"]) == {"attention", "embedding", "mlp", "norm"}
    assert summary["meta"]["versions"]["torch"] == torch.__version__


def test_argument_errors(sharded_base, full_finetune, lora_cases):
    with pytest.raises(InvalidParameterError, match="Exactly one of `finetuned`"):
        weight_statistics(sharded_base)
    with pytest.raises(InvalidParameterError, match="Exactly one of `finetuned`"):
        weight_statistics(sharded_base, full_finetune, adapter=lora_cases["plain"].adapter)
    with pytest.raises(
        InvalidParameterError, match="`chunk_bytes` must be an integer >= 256; got 10"
    ):
        weight_statistics(sharded_base, full_finetune, chunk_bytes=10)
    with pytest.raises(InvalidParameterError, match="`adapter_init` must be used with `adapter`"):
        weight_statistics(sharded_base, full_finetune, adapter_init=lora_cases["plain"].adapter)
    # an adapter folder given as the fine-tune is recognised
    auto = weight_statistics(sharded_base, lora_cases["plain"].adapter, device="cpu")
    assert auto.adapter_table is not None and auto.meta["adapter"]


def test_allow_unpaired_with_nothing_paired_is_refused(tmp_path, sharded_base, full_finetune,
                                                       gpt2_lora):
    """Zero paired tensors used to give "0 tensors" and a KL of 0 (issue 15, item 5)."""
    from safetensors.torch import save_file

    from measurement.exceptions import UnpairedTensorError

    sd = load_file(full_finetune / "model.safetensors")
    save_file({f"other.{k}": v for k, v in sd.items()}, tmp_path / "renamed.safetensors")
    with pytest.raises(UnpairedTensorError, match="nothing to compare"):
        weight_statistics(sharded_base, tmp_path / "renamed.safetensors", allow_unpaired=True,
                          device="cpu")
    with pytest.raises(UnpairedTensorError, match="nothing to compare"):
        weight_statistics(sharded_base, adapter=gpt2_lora.adapter, allow_unpaired=True,
                          device="cpu")


def test_partial_pairing_reports_its_coverage(tmp_path, sharded_base, full_finetune):
    """Only some tensors pair: a warning and the metadata give the share compared (items 5, 6)."""
    from safetensors.torch import save_file

    sd = load_file(full_finetune / "model.safetensors")
    dropped = sd.pop("model.layers.1.mlp.up_proj.weight").numel()
    sd["model.position_ids"] = torch.arange(7)
    save_file(sd, tmp_path / "ft.safetensors")
    with pytest.warns(UserWarning, match=r"compared [\d,]+ of [\d,]+ floating parameters"):
        stats = weight_statistics(sharded_base, tmp_path / "ft.safetensors",
                                  allow_unpaired=True, device="cpu")
    cov = stats.meta["coverage"]
    assert cov["total"] - cov["compared"] == dropped and cov["compared"] == stats.numel
    assert cov["skipped_tensors"] == 1 and cov["skipped_numel"] == 7
    assert "1 integer/bool tensors skipped" in str(stats)
    assert f"{100 * cov['share']:.2f}%" in str(stats)


@pytest.fixture(scope="module")
def two_stats(lora_cases, sharded_base, full_finetune):
    adapter = weight_statistics(lora_cases["plain"].base, adapter=lora_cases["plain"].adapter,
                                device="cpu")
    full = weight_statistics(sharded_base, full_finetune, device="cpu")
    return adapter, full


def test_save_replaces_an_earlier_output_as_a_unit(tmp_path, two_stats):
    """No stale adapter_stats.parquet stays beside a later full fine-tune (issue 15, item 2)."""
    adapter, full = two_stats
    out = tmp_path / "stats"
    adapter.save(out)
    full.save(out)
    assert not (out / "adapter_stats.parquet").exists()
    loaded = WeightStats.load(out)
    assert loaded.adapter_table is None
    assert loaded.sq_dist == pytest.approx(full.sq_dist, rel=1e-12)
    assert not [p for p in tmp_path.iterdir() if p.name != "stats"]  # no temporary siblings


def test_save_beside_other_files_keeps_them_and_drops_stale_parts(tmp_path, two_stats):
    """A run folder holds the model too: only the statistics files are replaced (item 2)."""
    adapter, full = two_stats
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes(b"weights")
    adapter.save(run)
    full.save(run)
    assert (run / "model.safetensors").read_bytes() == b"weights"
    assert not (run / "adapter_stats.parquet").exists()
    assert WeightStats.load(run).adapter_table is None


def test_load_refuses_a_folder_mixing_two_outputs(tmp_path, two_stats):
    """New parquet files beside the old JSON (an interrupted write) are refused (item 2)."""
    adapter, full = two_stats
    old, new = tmp_path / "old", tmp_path / "new"
    adapter.save(old)
    full.save(new)
    (old / "weight_stats.parquet").write_bytes((new / "weight_stats.parquet").read_bytes())
    with pytest.raises(InputFileError) as info:
        WeightStats.load(old)
    message = str(info.value)
    assert "weight_stats.parquet" in message and "sha256" in message and "\n" not in message
    # a stale part that the manifest does not list is refused too
    full.save(old)
    (old / "adapter_stats.parquet").write_bytes((new / "weight_stats.parquet").read_bytes())
    with pytest.raises(InputFileError, match=r"adapter_stats\.parquet.*not part of"):
        WeightStats.load(old)
    # the JSON of a newer writer without its manifest (cut before the manifest) is refused
    full.save(new)
    (new / "weight_stats.manifest.json").unlink()
    with pytest.raises(InputFileError, match="manifest"):
        WeightStats.load(new)


def test_statistics_over_zero_tensors_are_refused_on_load(tmp_path, two_stats):
    """A folder written by an older version with "0 tensors" must not give KL = 0 (item 5)."""
    _adapter, full = two_stats
    empty = WeightStats(full.table.iloc[:0], None, dict(full.meta))
    empty.save(tmp_path / "s")
    with pytest.raises(InputFileError, match="0 tensors"):
        WeightStats.load(tmp_path / "s")
