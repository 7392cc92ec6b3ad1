"""Models by hub id from the local HF cache on the CLI, and an adapter's named base as BASE.

A fake but real-layout Hugging Face hub cache is built in ``tmp_path``
(``models--org--llama/{blobs, refs/main, snapshots/<hash>/<file> -> ../../blobs/<sha>}``)
holding the tiny Llama saved with ``save_pretrained``, and a real PEFT adapter
(``init_lora_weights=False``) whose ``adapter_config.json`` names it by hub id. Nothing may be
downloaded: the hub ids resolve from that cache only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from measurement import WeightStats
from measurement.cli import app

pytest_plugins = ["tests.measurement._data_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")

runner = CliRunner()
COMMIT = "89abcdef0123456789abcdef0123456789abcdef"
QUIET = ("--device", "cpu", "--no-progress")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def build_hub_cache(root: Path, model_dir: Path, repo: str) -> tuple[Path, Path]:
    """``repo`` in a hub cache at ``root``, as ``hf download`` lays it out: content-addressed
    blobs, snapshot files symlinked to them, and ``refs/main`` naming the snapshot."""
    repo_dir = root / f"models--{repo.replace('/', '--')}"
    snap = repo_dir / "snapshots" / COMMIT
    (repo_dir / "blobs").mkdir(parents=True)
    for src in sorted(model_dir.rglob("*")):
        if not src.is_file():
            continue
        digest = hashlib.sha256(src.read_bytes()).hexdigest()
        shutil.copyfile(src, repo_dir / "blobs" / digest)
        link = snap / src.relative_to(model_dir)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(repo_dir / "blobs" / digest, link.parent))
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(COMMIT)
    return repo_dir, snap


@pytest.fixture
def hub(tmp_path, monkeypatch, llama_dir):
    """The local hub cache (HF_HUB_CACHE) holding the tiny Llama as ``org/llama``."""
    from huggingface_hub import constants

    cache = tmp_path / "hf" / "hub"
    repo_dir, snap = build_hub_cache(cache, llama_dir, "org/llama")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))  # already imported in-process
    return cache, repo_dir, snap


def adapter_naming(tmp_path: Path, adapter_dir: Path, base_name: str) -> Path:
    """A copy of the real LoRA adapter whose adapter_config.json names ``base_name``."""
    adapter = tmp_path / f"adapter{len(list(tmp_path.glob('adapter*')))}"
    shutil.copytree(adapter_dir, adapter)
    config = adapter / "adapter_config.json"
    cfg = json.loads(config.read_text())
    assert cfg["init_lora_weights"] is False
    cfg["base_model_name_or_path"] = base_name
    config.write_text(json.dumps(cfg))
    return adapter


def error_line(res) -> str:
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


def test_weights_and_kl_without_base_use_the_base_the_adapter_names(
    tmp_path, hub, llama_dir, adapter_dir
):
    _, _, snap = hub
    adapter = adapter_naming(tmp_path, adapter_dir, "org/llama")
    res = invoke("weights", "--adapter", adapter, "--out", tmp_path / "implicit", "--json", *QUIET)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["out"] == str(tmp_path / "implicit")  # the note is on stderr
    note = [line for line in res.stderr.splitlines() if line.startswith("note: ")]
    assert note == [
        f"note: BASE not given, so using the base model from {adapter / 'adapter_config.json'}: "
        f"org/llama (org/llama: from the local Hugging Face cache, {snap})"
    ]
    implicit = WeightStats.load(tmp_path / "implicit")
    assert implicit.meta["base"] == str(snap)

    # the same statistics as with the base given explicitly (backward-compatible order)
    res = invoke("weights", llama_dir, "--adapter", adapter, "--out", tmp_path / "explicit", *QUIET)
    assert res.exit_code == 0, res.output
    assert "BASE not given" not in res.stderr
    explicit = WeightStats.load(tmp_path / "explicit")
    assert implicit.sq_dist == pytest.approx(explicit.sq_dist, rel=1e-12) and implicit.sq_dist > 0
    pd.testing.assert_frame_equal(implicit.table, explicit.table)

    # kl measures straight from the adapter, base left out
    kl = invoke("kl", "--adapter", adapter, "--sigma", 0.01, "--json", *QUIET)
    assert kl.exit_code == 0, kl.output
    assert "BASE not given" in kl.stderr
    from_stats = invoke("kl", "--stats", tmp_path / "explicit", "--sigma", 0.01, "--json")
    assert json.loads(kl.stdout)["kl"] == pytest.approx(json.loads(from_stats.stdout)["kl"])


def test_an_adapter_whose_base_is_not_local_is_one_line_exit_2(tmp_path, hub, adapter_dir):
    for name in ("org/absent", str(tmp_path / "trained-on-another-machine" / "base")):
        adapter = adapter_naming(tmp_path, adapter_dir, name)
        config = adapter / "adapter_config.json"
        for args in (
            ("weights", "--adapter", adapter, "--out", tmp_path / "w", *QUIET),
            ("kl", "--adapter", adapter, "--sigma", 0.01, *QUIET),
            ("losses", tmp_path / "d.jsonl", "--adapter", adapter, "--out", tmp_path / "l.csv"),
            ("certify", adapter, tmp_path / "d.jsonl", "--sigma", 0.01, "--no-progress"),
        ):
            line = error_line(invoke(*args))
            what = "MODEL" if args[0] == "losses" else "BASE"
            via = "FINETUNED (a PEFT adapter)" if args[0] == "certify" else "--adapter"
            assert f"`{what}` must be given, or the base that {via} names" in line
            assert f"{config} names base_model_name_or_path={name!r}" in line
            assert "local Hugging Face cache" in line and "`hf download " in line
            assert (f"`hf download {name}`" in line) == (name == "org/absent")
            assert "nothing is downloaded" in line
    assert not (tmp_path / "w").exists() and not (tmp_path / "l.csv").exists()

    no_name = adapter_naming(tmp_path, adapter_dir, "")
    line = error_line(invoke("weights", "--adapter", no_name, "--out", tmp_path / "w", *QUIET))
    assert "`BASE` must be given when the adapter names no base model" in line
    line = error_line(invoke("weights", "--out", tmp_path / "w", *QUIET))
    assert "got no BASE and no --adapter" in line
    line = error_line(invoke("losses", tmp_path / "d.jsonl", "--out", tmp_path / "l.csv"))
    assert "`MODEL DATA` must be given" in line


def test_weights_from_the_command_line_finds_the_base_offline(tmp_path, hub, adapter_dir):
    """The installed entry point, in a fresh process, with HF_HUB_CACHE and HF_HUB_OFFLINE."""
    cache, _, snap = hub
    adapter = adapter_naming(tmp_path, adapter_dir, "org/llama")
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HOME", None)
    exe = Path(sys.executable).with_name("tradeoff")
    cmd = [str(exe), "weights", "--adapter", str(adapter), "--out", str(tmp_path / "s"), *QUIET]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"from the local Hugging Face cache, {snap}" in done.stderr
    assert WeightStats.load(tmp_path / "s").meta["base"] == str(snap)
    env["HF_HUB_CACHE"] = str(tmp_path / "empty-cache")
    done = subprocess.run(
        [*cmd[:-4], str(tmp_path / "t"), *QUIET], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "base_model_name_or_path='org/llama'" in done.stderr
    assert not (tmp_path / "t").exists()


def test_losses_take_hub_ids_cache_folders_and_an_adapters_base(
    tmp_path, hub, llama_dir, adapter_dir, data_jsonl
):
    _, repo_dir, snap = hub

    def losses(*args):
        out = tmp_path / f"l{len(list(tmp_path.glob('l*.jsonl')))}.jsonl"
        res = invoke("losses", *args, "--out", out, "--no-progress", "--json")
        assert res.exit_code == 0, res.output
        return res, pd.read_json(out, lines=True)

    _, local = losses(llama_dir, data_jsonl)
    res, by_id = losses("org/llama", data_jsonl)
    assert "org/llama: from the local Hugging Face cache" in res.stderr
    assert set(by_id["model"]) == {"org/llama"}  # the hub id stays the label
    assert by_id["nll_sum"].to_numpy() == pytest.approx(local["nll_sum"].to_numpy(), rel=1e-6)
    res, by_root = losses(repo_dir, data_jsonl)  # the repo-root cache folder
    assert f"using snapshot {COMMIT}" in res.stderr
    assert by_root["nll_sum"].to_numpy() == pytest.approx(local["nll_sum"].to_numpy(), rel=1e-6)
    res, side = losses(snap, data_jsonl, "--base", "org/llama")  # --base by hub id
    assert list(dict.fromkeys(side["model"])) == ["base", "finetuned"]

    adapter = adapter_naming(tmp_path, adapter_dir, "org/llama")
    _, explicit = losses(llama_dir, data_jsonl, "--adapter", adapter)
    res, implicit = losses(data_jsonl, "--adapter", adapter, "--with-base")
    assert "MODEL not given, so using the base model from" in res.stderr
    ft = implicit[implicit.model == "finetuned"]["nll_sum"].to_numpy()
    base = implicit[implicit.model == "base"]["nll_sum"].to_numpy()
    assert ft == pytest.approx(explicit["nll_sum"].to_numpy(), rel=1e-6)
    assert base == pytest.approx(local["nll_sum"].to_numpy(), rel=1e-6)
    assert abs(ft - base).max() > 1e-3  # the adapter was applied


def test_certify_takes_a_hub_id_base_and_an_adapters_base(
    tmp_path, hub, llama_dir, finetuned_dir, adapter_dir, data_jsonl
):
    common = ("-n", 4, "--sigma", 0.01, "--mc-samples", 2, "--json", "--no-progress")

    def certify(*args):
        res = invoke("certify", *args, *common)
        assert res.exit_code == 0, res.output
        return res, json.loads(res.stdout)

    _, local = certify(llama_dir, finetuned_dir, data_jsonl)
    res, by_id = certify("org/llama", finetuned_dir, data_jsonl)
    assert "org/llama: from the local Hugging Face cache" in res.stderr
    assert by_id["kl"] == pytest.approx(local["kl"], rel=1e-9) and by_id["kl"] > 0

    adapter = adapter_naming(tmp_path, adapter_dir, "org/llama")
    _, explicit = certify(llama_dir, adapter, data_jsonl, "--space", "adapter")
    res, implicit = certify(adapter, data_jsonl, "--space", "adapter")
    assert "BASE not given, so using the base model from" in res.stderr
    assert implicit["space"] == "adapter"
    assert implicit["kl"] == pytest.approx(explicit["kl"], rel=1e-9)

    line = error_line(invoke("certify", finetuned_dir, data_jsonl, "--no-progress"))
    assert "BASE may be left out only when FINETUNED is a PEFT adapter folder" in line
    assert f"got 2 argument(s), {finetuned_dir} {data_jsonl}." in line


def test_difficulty_scores_with_a_hub_id_model(tmp_path, hub, llama_dir, data_jsonl):
    _, repo_dir, _ = hub
    scored = {}
    for by in ("length", "nll"):
        for name, model in (("local", llama_dir), ("id", "org/llama"), ("root", repo_dir)):
            out = tmp_path / f"{by}-{name}.parquet"
            res = invoke(
                "difficulty",
                "score",
                data_jsonl,
                "--by",
                by,
                "--model",
                model,
                "--out",
                out,
                *QUIET,
            )
            assert res.exit_code == 0, res.output
            scored[by, name] = pd.read_parquet(out)[f"difficulty_{by}"].to_numpy()
        assert scored[by, "id"] == pytest.approx(scored[by, "local"], rel=1e-6)
        assert scored[by, "root"] == pytest.approx(scored[by, "local"], rel=1e-6)
    line = error_line(
        invoke(
            "difficulty",
            "score",
            data_jsonl,
            "--by",
            "length",
            "--model",
            "org/absent",
            "--out",
            tmp_path / "x.parquet",
        )
    )
    assert "`org/absent` is not a local path" in line and "nothing is downloaded" in line


def test_tokenizers_load_by_hub_id_from_the_cache_only(hub, llama_dir):
    from measurement._lm import load_tokenizer
    from pacbound.exceptions import InputFileError

    _, repo_dir, _ = hub
    text = "What is 2 + 3? The answer is 5."
    want = load_tokenizer(llama_dir)(text)["input_ids"]
    assert load_tokenizer("org/llama")(text)["input_ids"] == want
    assert load_tokenizer(repo_dir)(text)["input_ids"] == want  # the repo-root cache folder
    with pytest.raises(InputFileError, match="not in the local Hugging Face cache"):
        load_tokenizer("org/absent")
