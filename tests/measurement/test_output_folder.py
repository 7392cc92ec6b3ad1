"""Training output folders: ``checkpoint-<step>`` discovery and ``tradeoff weights`` on them."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from measurement import (
    WeightStats,
    checkpoint_folders,
    resolve_model_path,
    resolve_output_folder,
)
from measurement._cli_weights import app

pytest_plugins = ["tests.measurement._data_fixtures"]

runner = CliRunner()


def test_checkpoints_sort_by_step_not_by_name(tmp_path):
    for name in ("checkpoint-900", "checkpoint-1000", "checkpoint-50", "checkpoint-x", "other"):
        (tmp_path / name).mkdir()
    (tmp_path / "checkpoint-2000").write_text("a file, not a folder")
    assert [p.name for p in checkpoint_folders(tmp_path)] == [
        "checkpoint-50",
        "checkpoint-900",
        "checkpoint-1000",
    ]
    assert checkpoint_folders(tmp_path / "missing") == []


def test_resolve_prefers_the_folders_own_weights(tmp_path):
    out = tmp_path / "out"
    (out / "checkpoint-10").mkdir(parents=True)
    (out / "checkpoint-20").mkdir()
    path, note = resolve_output_folder(out)
    assert path == out / "checkpoint-20"
    assert (
        note == f"{out}: no weights of its own; using its latest checkpoint, checkpoint-20 (of 2)."
    )
    (out / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    assert resolve_output_folder(out) == (out, None)
    assert resolve_output_folder(tmp_path / "x.safetensors") == (tmp_path / "x.safetensors", None)
    assert resolve_output_folder(tmp_path) == (tmp_path, None)  # no weights, no checkpoints


def test_weights_accepts_an_output_folder_with_checkpoints(tmp_path, sharded_base, full_finetune):
    out = tmp_path / "trainer-out"
    shutil.copytree(full_finetune, out / "checkpoint-8")
    (out / "checkpoint-4").mkdir()  # an older, empty checkpoint is not the one used
    (out / "trainer_state.json").write_text(json.dumps({"log_history": []}))
    res = runner.invoke(
        app,
        [
            "weights",
            str(sharded_base),
            str(out),
            "--out",
            str(tmp_path / "s"),
            "--json",
            "--device",
            "cpu",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "using its latest checkpoint, checkpoint-8 (of 2)" in res.stderr
    stats = WeightStats.load(tmp_path / "s")
    assert stats.meta["finetuned"] == str(out / "checkpoint-8")


def _hf_cache(root, model_dir, repo="org/tiny"):
    """A Hugging Face hub cache holding ``repo`` at one snapshot (the layout hf writes)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = root / f"models--{repo.replace('/', '--')}"
    shutil.copytree(model_dir, repo_dir / "snapshots" / commit)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    return repo_dir, repo_dir / "snapshots" / commit


def test_hub_ids_and_cache_folders_resolve_offline(tmp_path, monkeypatch, sharded_base):
    from huggingface_hub import constants

    repo_dir, snap = _hf_cache(tmp_path / "hub", sharded_base)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    path, note = resolve_model_path("org/tiny")
    assert path == snap and "from the local Hugging Face cache" in note
    assert resolve_model_path(repo_dir)[0] == snap  # the repo-root folder
    assert resolve_model_path(snap) == (snap, None)  # a snapshot folder is a model folder
    with pytest.raises(FileNotFoundError, match=r"`org/absent` is not a local path.*nothing is"):
        resolve_model_path("org/absent")
    assert resolve_model_path(tmp_path / "no-such") == (tmp_path / "no-such", None)


def test_weights_takes_a_hub_id_base_from_the_cache(
    tmp_path, monkeypatch, sharded_base, full_finetune
):
    from huggingface_hub import constants

    _hf_cache(tmp_path / "hub", sharded_base)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    args = ["weights", "org/tiny", str(full_finetune), "--out", str(tmp_path / "s")]
    res = runner.invoke(app, [*args, "--json", "--device", "cpu", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "org/tiny: from the local Hugging Face cache" in res.stderr
    res = runner.invoke(
        app, ["weights", "org/absent", str(full_finetune), "--out", str(tmp_path / "t")]
    )
    assert res.exit_code == 2 and "not in the local Hugging Face cache" in res.stderr


def test_models_by_hub_id_and_an_adapters_named_base_load_offline(tmp_path, monkeypatch, llama_dir):
    import json

    import torch
    from huggingface_hub import constants
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from measurement import adapter_base, load_causal_lm

    _, snap = _hf_cache(tmp_path / "hub", llama_dir, repo="org/llama")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    # a hub id in the local cache loads as the folder itself (nothing downloaded)
    lm, _ = load_causal_lm("org/llama", dtype="float32", device="cpu")
    ref = AutoModelForCausalLM.from_pretrained(llama_dir, dtype=torch.float32)
    assert all(
        torch.equal(a, b)
        for a, b in zip(lm.state_dict().values(), ref.state_dict().values(), strict=True)
    )
    # an adapter that names its base by hub id: the base is its default
    peft_model = get_peft_model(
        ref, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False)
    )
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "org/llama"
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    path, note = adapter_base(adapter)
    assert path == snap and "org/llama" in note
    lm, _ = load_causal_lm(None, adapter=adapter, dtype="float32", device="cpu")
    assert hasattr(lm, "peft_config")
    cfg["base_model_name_or_path"] = "org/absent"
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(FileNotFoundError, match="not in the local Hugging Face cache"):
        adapter_base(adapter)
