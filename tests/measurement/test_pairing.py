"""Pairing by name: shards vs single files, prefixes, tied heads, vocabulary resize, errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from measurement import open_checkpoint
from measurement._pairing import (
    NameResolver,
    canonical_name,
    classify_module,
    layer_index,
    pair_checkpoints,
)
from measurement.exceptions import UnpairedTensorError


@pytest.mark.parametrize(
    ("name", "module", "layer"),
    [
        ("model.layers.3.self_attn.q_proj.weight", "attention", 3),
        ("model.layers.0.post_attention_layernorm.weight", "norm", 0),
        ("model.layers.12.mlp.experts.7.down_proj.weight", "mlp", 12),
        ("model.embed_tokens.weight", "embedding", None),
        ("lm_head.weight", "lm_head", None),
        ("transformer.h.1.attn.c_attn.weight", "attention", 1),
        ("transformer.h.1.ln_2.bias", "norm", 1),
        ("transformer.h.0.mlp.c_fc.weight", "mlp", 0),
        ("transformer.wpe.weight", "embedding", None),
        ("model.norm.weight", "norm", None),
        ("score.weight", "other", None),
    ],
)
def test_module_kinds_and_layers(name, module, layer):
    assert classify_module(name) == module
    assert layer_index(name) == layer


def test_canonical_names_and_resolver():
    assert (
        canonical_name("module.model.layers.0.mlp.up_proj.weight") == "layers.0.mlp.up_proj.weight"
    )
    assert canonical_name("base_model.model.model.norm.weight") == "norm.weight"
    resolver = NameResolver(["model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight"])
    assert resolver.resolve("layers.0.mlp.up_proj.weight") == (
        "model.layers.0.mlp.up_proj.weight",
        "canonical",
    )
    assert resolver.resolve("lm_head.weight") == ("model.embed_tokens.weight", "tied")
    assert resolver.resolve("lm_head.weight", tied=False) == (None, "")


def test_shards_pair_with_single_file_by_name(sharded_base, full_finetune):
    base, ft = open_checkpoint(sharded_base), open_checkpoint(full_finetune)
    assert len(base.files) > 1 and len(ft.files) == 1
    plan = pair_checkpoints(base, ft)
    assert sorted(p.name for p in plan.pairs) == sorted(base.tensors)
    assert all(p.kind == "full" and p.base.name == p.name for p in plan.pairs)
    # fine-tune file order, so that one side is read sequentially
    offsets = [p.finetuned.data_start for p in plan.pairs]
    assert offsets == sorted(offsets)
    assert not plan.base_only and not plan.finetuned_only and not plan.notes


def test_prefix_differences_pair_by_canonical_name(tmp_path, sharded_base, full_finetune):
    sd = load_file(full_finetune / "model.safetensors")
    save_file({k.removeprefix("model."): v for k, v in sd.items()}, tmp_path / "bare.safetensors")
    plan = pair_checkpoints(
        open_checkpoint(sharded_base), open_checkpoint(tmp_path / "bare.safetensors")
    )
    assert len(plan.pairs) == len(sd)
    pair = next(p for p in plan.pairs if p.name == "layers.0.mlp.up_proj.weight")
    assert pair.base.name == "model.layers.0.mlp.up_proj.weight"
    assert any("canonical" in n for n in plan.notes)


def test_head_only_in_finetune_pairs_with_base_embedding(sharded_base, untied_finetune):
    plan = pair_checkpoints(open_checkpoint(sharded_base), open_checkpoint(untied_finetune))
    head = next(p for p in plan.pairs if p.name == "lm_head.weight")
    assert head.base.name == "model.embed_tokens.weight"
    assert "tied" in head.note
    assert sum(p.name == "model.embed_tokens.weight" for p in plan.pairs) == 1


def test_head_only_in_base_pairs_with_finetune_embedding(sharded_base, untied_finetune):
    plan = pair_checkpoints(open_checkpoint(untied_finetune), open_checkpoint(sharded_base))
    head = next(p for p in plan.pairs if p.name == "lm_head.weight")
    assert head.base.name == "lm_head.weight"
    assert head.finetuned.name == "model.embed_tokens.weight"


def test_tied_head_stored_on_both_sides_is_counted_once(tmp_path, full_finetune):
    sides = []
    for name in ("a", "b"):
        folder = tmp_path / name
        shutil.copytree(full_finetune, folder)
        sd = load_file(folder / "model.safetensors")
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"].clone() + (name == "b")
        save_file(sd, folder / "model.safetensors")
        sides.append(open_checkpoint(folder))
    assert json.loads((tmp_path / "a" / "config.json").read_text())["tie_word_embeddings"]
    plan = pair_checkpoints(*sides)
    assert "lm_head.weight" not in [p.name for p in plan.pairs]
    assert any("counted once" in n for n in plan.notes)


def test_vocabulary_resize_reports_new_rows(sharded_base, resized_finetune):
    plan = pair_checkpoints(open_checkpoint(sharded_base), open_checkpoint(resized_finetune))
    emb = [p for p in plan.pairs if p.name == "model.embed_tokens.weight"]
    assert [(p.kind, p.start, p.stop) for p in emb] == [
        ("full", 0, 320 * 64),
        ("new_rows", 320 * 64, 328 * 64),
    ]
    assert emb[1].base is None
    assert any("320 -> 328" in n for n in plan.notes)


def test_unpaired_and_mismatched_tensors_are_listed(tmp_path, sharded_base, full_finetune):
    sd = load_file(full_finetune / "model.safetensors")
    sd.pop("model.layers.1.mlp.up_proj.weight")
    sd["model.layers.0.extra.weight"] = torch.zeros(3)
    sd["model.layers.0.self_attn.q_proj.weight"] = torch.zeros(64, 32)
    sd["model.position_ids"] = torch.arange(5)
    save_file(sd, tmp_path / "odd.safetensors")
    base, ft = open_checkpoint(sharded_base), open_checkpoint(tmp_path / "odd.safetensors")
    with pytest.raises(UnpairedTensorError) as info:
        pair_checkpoints(base, ft)
    message = str(info.value)
    assert "1 only in base" in message and "`model.layers.1.mlp.up_proj.weight`" in message
    assert "1 only in fine-tune" in message and "`model.layers.0.extra.weight`" in message
    assert "`model.layers.0.self_attn.q_proj.weight` base [64, 64] vs fine-tune [64, 32]" in message
    assert "--allow-unpaired" in message and "\n" not in message
    assert info.value.base_only == ["model.layers.1.mlp.up_proj.weight"]
    with pytest.warns(UserWarning, match="Only part of the checkpoints is compared"):
        plan = pair_checkpoints(base, ft, allow_unpaired=True)
    assert plan.finetuned_only == ["model.layers.0.extra.weight"]
    assert plan.shape_mismatch[0][0] == "model.layers.0.self_attn.q_proj.weight"
    assert plan.skipped == ["fine-tune:model.position_ids"]
    assert len(plan.pairs) == len(base.tensors) - 2


def _numel(ckpt, names):
    return sum(ckpt.tensors[n].numel for n in names)


def test_allow_unpaired_refuses_when_nothing_pairs(tmp_path, sharded_base, full_finetune):
    """Zero paired tensors must not become a KL of 0 (issue 15, item 5)."""
    sd = load_file(full_finetune / "model.safetensors")
    save_file({f"other.{k}": v for k, v in sd.items()}, tmp_path / "renamed.safetensors")
    base, ft = open_checkpoint(sharded_base), open_checkpoint(tmp_path / "renamed.safetensors")
    with pytest.raises(UnpairedTensorError) as info:
        pair_checkpoints(base, ft, allow_unpaired=True)
    message = str(info.value)
    assert "no floating tensor pairs" in message and "\n" not in message
    assert "nothing to compare" in message


def test_allow_unpaired_warns_with_the_share_of_parameters(tmp_path, sharded_base, full_finetune):
    """Only some tensors pair: a warning gives the share of parameters compared (item 5)."""
    sd = load_file(full_finetune / "model.safetensors")
    gone = ["model.layers.1.mlp.up_proj.weight", "model.norm.weight"]
    for name in gone:
        sd.pop(name)
    save_file(sd, tmp_path / "ft.safetensors")
    base, ft = open_checkpoint(sharded_base), open_checkpoint(tmp_path / "ft.safetensors")
    with pytest.warns(UserWarning, match="parameters") as caught:
        plan = pair_checkpoints(base, ft, allow_unpaired=True)
    total = _numel(base, base.tensors)
    compared = total - _numel(base, gone)
    assert plan.coverage.compared == compared and plan.coverage.total == total
    text = str(caught[0].message)
    assert f"compared {compared:,} of {total:,} floating parameters" in text
    assert f"({100 * compared / total:.2f}%)" in text and "\n" not in text
    assert "2 tensors did not pair" in text


def test_integer_and_bool_tensors_are_named_as_such(tmp_path, sharded_base, full_finetune):
    """A tensor that is integer or bool in the fine-tune is not "only in base" (item 6)."""
    sd = load_file(full_finetune / "model.safetensors")
    sd["model.norm.weight"] = sd["model.norm.weight"].to(torch.int8)
    sd["model.layers.0.input_layernorm.weight"] = sd["model.layers.0.input_layernorm.weight"] > 0
    sd["model.position_ids"] = torch.arange(5)
    save_file(sd, tmp_path / "ft.safetensors")
    base, ft = open_checkpoint(sharded_base), open_checkpoint(tmp_path / "ft.safetensors")
    with pytest.raises(UnpairedTensorError) as info:
        pair_checkpoints(base, ft)
    message = str(info.value)
    assert "only in base" not in message and "\n" not in message
    assert "2 integer/bool in fine-tune but floating in base" in message
    assert "`model.norm.weight` (int8)" in message and "(bool)" in message
    assert "skipped" in message
    with pytest.warns(UserWarning) as caught:
        plan = pair_checkpoints(base, ft, allow_unpaired=True)
    text = " ".join(str(w.message) for w in caught)
    assert "3 integer/bool tensors skipped" in text and "only in base" not in text
    assert plan.base_only == []
    n_dropped = base.tensors["model.norm.weight"].numel + base.tensors[
        "model.layers.0.input_layernorm.weight"
    ].numel
    assert plan.coverage.compared == plan.coverage.total - n_dropped
    assert plan.coverage.skipped_tensors == 3
    assert "fine-tune:model.position_ids" in plan.skipped
