"""Training output folders: ``checkpoint-<step>`` discovery and ``tradeoff weights`` on them."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from measurement import WeightStats, checkpoint_folders, resolve_output_folder
from measurement._cli_weights import app

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
