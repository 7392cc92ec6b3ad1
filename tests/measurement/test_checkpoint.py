"""Planning checkpoints from their headers, and refusing corrupt or quantised ones."""

from __future__ import annotations

import json
import shutil
import struct

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from measurement import open_checkpoint
from measurement._checkpoint_reader import CheckpointReader
from measurement.exceptions import CheckpointError, QuantizedCheckpointError


def test_plan_sharded_folder_matches_safetensors(sharded_base):
    ckpt = open_checkpoint(sharded_base)
    index = json.loads((sharded_base / "model.safetensors.index.json").read_text())
    assert set(ckpt.tensors) == set(index["weight_map"])
    assert len(ckpt.files) == len(set(index["weight_map"].values())) > 1
    assert ckpt.format == "safetensors" and ckpt.tie_word_embeddings is True
    with CheckpointReader(ckpt) as reader:
        for name, info in ckpt.tensors.items():
            with safe_open(info.file, "pt") as fh:
                expected = fh.get_tensor(name)
            assert info.shape == tuple(expected.shape)
            assert info.nbytes == expected.numel() * expected.element_size()
            assert torch.equal(reader.tensor(info), expected)
            assert torch.equal(reader.view(info, 3, 9), expected.reshape(-1)[3:9])


def test_single_file_index_file_and_folder_agree(full_finetune, sharded_base):
    by_folder = open_checkpoint(full_finetune)
    by_file = open_checkpoint(full_finetune / "model.safetensors")
    assert by_folder.tensors == by_file.tensors
    by_index = open_checkpoint(sharded_base / "model.safetensors.index.json")
    assert by_index.tensors == open_checkpoint(sharded_base).tensors
    assert "GB" in str(by_folder)


def test_bin_checkpoint_is_memory_mapped_and_ties_are_aliases(tmp_path, sharded_base):
    from tests._tiny import tiny_llama

    model = tiny_llama(seed=0, attention_bias=True)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    ckpt = open_checkpoint(tmp_path)
    assert ckpt.format == "torch"
    assert ckpt.aliases == {"lm_head.weight": "model.embed_tokens.weight"}
    safetensors_plan = open_checkpoint(sharded_base)
    assert set(ckpt.tensors) == set(safetensors_plan.tensors)
    with CheckpointReader(ckpt) as reader:
        info = ckpt.tensors["model.layers.0.mlp.up_proj.weight"]
        assert torch.equal(reader.tensor(info), model.model.layers[0].mlp.up_proj.weight)


def test_bin_and_safetensors_give_the_same_statistics(tmp_path, sharded_base, full_finetune):
    from measurement import weight_statistics
    from tests._tiny import tiny_llama

    torch.save(tiny_llama(seed=0, attention_bias=True).state_dict(), tmp_path / "pytorch_model.bin")
    from_bin = weight_statistics(tmp_path, full_finetune, device="cpu", chunk_bytes=4096)
    from_st = weight_statistics(sharded_base, full_finetune, device="cpu", chunk_bytes=4096)
    assert from_bin.table.drop(columns="dtype_base").equals(
        from_st.table.drop(columns="dtype_base")
    )


def test_truncated_file_is_refused_before_reading(tmp_path, full_finetune):
    src = full_finetune / "model.safetensors"
    cut = tmp_path / "model.safetensors"
    cut.write_bytes(src.read_bytes()[:-100])
    with pytest.raises(
        CheckpointError, match=r"is truncated: .*\(tensor `model.norm.weight` ends there\)"
    ):
        open_checkpoint(cut)
    tiny = tmp_path / "tiny.safetensors"
    tiny.write_bytes(b"\x01\x02")
    with pytest.raises(CheckpointError, match="fewer than the 8-byte header length"):
        open_checkpoint(tiny)
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", 10**6) + b"{}")
    with pytest.raises(CheckpointError, match="header length field says 1000000 bytes"):
        open_checkpoint(huge)


def test_index_inconsistencies(tmp_path, sharded_base):
    broken = tmp_path / "broken"
    shutil.copytree(sharded_base, broken)
    index = json.loads((broken / "model.safetensors.index.json").read_text())
    first_shard = sorted(set(index["weight_map"].values()))[0]
    (broken / first_shard).unlink()
    with pytest.raises(CheckpointError, match=f"lists shard `{first_shard}`.* does not exist"):
        open_checkpoint(broken)
    ghost = tmp_path / "ghost"
    shutil.copytree(sharded_base, ghost)
    index["weight_map"]["model.ghost.weight"] = first_shard
    (ghost / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"tensor `model\.ghost\.weight` is in shard"):
        open_checkpoint(ghost)


def test_missing_paths_and_adapter_folders(tmp_path, lora_cases):
    with pytest.raises(CheckpointError, match="does not exist"):
        open_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="No weights found in folder"):
        open_checkpoint(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="is a PEFT adapter folder"):
        open_checkpoint(lora_cases["plain"].adapter)
    (tmp_path / "weights.npz").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"must be a \.safetensors"):
        open_checkpoint(tmp_path / "weights.npz")


def test_quantised_checkpoints_are_refused(tmp_path, full_finetune):
    cfg_dir = tmp_path / "cfg"
    shutil.copytree(full_finetune, cfg_dir)
    config = json.loads((cfg_dir / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gptq", "bits": 4}
    (cfg_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(QuantizedCheckpointError, match="quant_method 'gptq'"):
        open_checkpoint(cfg_dir)
    save_file(
        {"layer.qweight": torch.zeros(4, 4, dtype=torch.int32), "layer.bias": torch.zeros(4)},
        tmp_path / "gptq.safetensors",
    )
    with pytest.raises(QuantizedCheckpointError, match=r"tensor `layer\.qweight`"):
        open_checkpoint(tmp_path / "gptq.safetensors")
    save_file(
        {"w": torch.zeros(4, 4).to(torch.float8_e4m3fn), "w.weight_scale_inv": torch.ones(1)},
        tmp_path / "fp8.safetensors",
    )
    with pytest.raises(QuantizedCheckpointError, match="weight_scale_inv"):
        open_checkpoint(tmp_path / "fp8.safetensors")
    save_file({"w": torch.zeros(4, 4).to(torch.float8_e5m2)}, tmp_path / "f8.safetensors")
    with pytest.raises(QuantizedCheckpointError, match="low-precision F8_E5M2 weights"):
        open_checkpoint(tmp_path / "f8.safetensors")


@pytest.mark.parametrize("where", ["parent", "absolute", "nested-escape"])
def test_index_shard_outside_the_folder_is_refused(tmp_path, sharded_base, where):
    """A shard name in the index that leaves the checkpoint folder is never read (issue 15)."""
    ckpt = tmp_path / "ckpt"
    shutil.copytree(sharded_base, ckpt)
    index_file = ckpt / "model.safetensors.index.json"
    index = json.loads(index_file.read_text())
    shard = sorted(set(index["weight_map"].values()))[0]
    outside = tmp_path / shard
    shutil.move(ckpt / shard, outside)
    (ckpt / "sub").mkdir()
    entry = {
        "parent": f"../{shard}",
        "absolute": str(outside),
        "nested-escape": f"sub/../../{shard}",
    }[where]
    index["weight_map"] = {k: (entry if v == shard else v) for k, v in index["weight_map"].items()}
    index_file.write_text(json.dumps(index))
    with pytest.raises(CheckpointError) as info:
        open_checkpoint(ckpt)
    message = str(info.value)
    assert "\n" not in message
    assert str(index_file) in message and f"`{entry}`" in message
    assert "inside the checkpoint folder" in message


def test_index_shard_symlinked_inside_the_folder_is_accepted(tmp_path, sharded_base):
    """Hugging Face cache snapshots link shards to blobs elsewhere: the name is what is confined."""
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    ckpt = tmp_path / "snapshot"
    ckpt.mkdir()
    for item in sharded_base.iterdir():
        shutil.copy(item, blobs / item.name)
        (ckpt / item.name).symlink_to(blobs / item.name)
    assert open_checkpoint(ckpt).tensors.keys() == open_checkpoint(sharded_base).tensors.keys()
