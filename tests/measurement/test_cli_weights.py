"""``tradeoff weights`` and ``tradeoff kl``: outputs, JSON keys and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from measurement import WeightStats, open_checkpoint
from measurement._cli_weights import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture(scope="module")
def stats_dir(tmp_path_factory, sharded_base, full_finetune):
    out = tmp_path_factory.mktemp("cli") / "stats"
    result = _run("weights", sharded_base, full_finetune, "--out", out, "--json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["out"] == str(out)
    assert summary["n_tensors"] == len(open_checkpoint(sharded_base).tensors)
    assert {"sq_dist", "numel", "by_module", "meta"} <= set(summary)
    return out


def test_weights_writes_the_table(stats_dir, sharded_base, full_finetune):
    assert (stats_dir / "weight_stats.parquet").is_file()
    assert not (stats_dir / ".weight_stats.journal.jsonl").exists()
    stats = WeightStats.load(stats_dir)
    assert stats.meta["base"] == str(sharded_base)
    assert len(stats.table) == len(open_checkpoint(sharded_base).tensors)
    text = _run("weights", sharded_base, full_finetune, "-o", stats_dir, "--no-progress")
    assert text.exit_code == 0 and "written:" in text.stdout and "WeightStats" in text.stdout


def test_kl_from_saved_statistics(stats_dir):
    result = _run("kl", "--stats", stats_dir, "--sigma", "0.01", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert {"kl", "sq_dist", "per_layer", "per_module", "numel", "space"} <= set(payload)
    assert isinstance(payload["per_layer"], list) and payload["space"] == "weight"
    assert payload["kl"] == pytest.approx(payload["sq_dist"] / (2 * 0.01**2), rel=1e-12)
    text = _run("kl", "--stats", stats_dir, "--sigma", "0.01")
    assert text.exit_code == 0 and "nats" in text.stdout


def test_kl_with_bound_and_grid(stats_dir):
    result = _run(
        "kl", "--stats", stats_dir, "--sigma", "0.03", "--sigma-grid", "0.01,0.03,0.1",
        "--emp-risk", "0.1", "-n", "2000", "--delta", "0.05", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload["bound"]["bounds"]) == {"kl", "mcallester", "catoni"}
    assert [e["sigma"] for e in payload["sigma_grid"]] == [0.01, 0.03, 0.1]
    assert payload["bound"]["sigma"]["kl"] == 0.03


def test_kl_directly_from_an_adapter(lora_cases):
    case = lora_cases["plain"]
    result = _run(
        "kl", case.base, "--adapter", case.adapter, "--sigma", "0.01", "--space", "adapter",
        "--json", "--device", "cpu",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["space"] == "adapter" and payload["stats"]["adapter"] == str(case.adapter)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["kl", "--stats", "{stats}", "--sigma", "-1"], "`sigma` must be in (0, inf)"),
        (["kl", "--stats", "{stats}"], "`--sigma` must be given"),
        (
            ["kl", "{base}", "{ft}", "--stats", "{stats}", "--sigma", "1"],
            "instead of BASE FINETUNED",
        ),
        (["kl", "{base}", "--sigma", "1"], "Exactly one of `finetuned`"),
        (["kl", "--sigma", "1"], "or `--stats DIR`; got nothing"),
        (["kl", "--stats", "{stats}", "--sigma", "1", "-n", "100"], "must be given together"),
        (["kl", "--stats", "{base}", "--sigma", "1"], "holds no weight statistics"),
        (
            ["weights", "{base}", "{ft}", "-o", "{tmp}", "--device", "tpu"],
            "`device` must be one of",
        ),
        (
            ["weights", "{base}", "{ft}", "-o", "{tmp}", "--adapter", "{ft}"],
            "Exactly one of `finetuned`",
        ),
        (
            ["weights", "{base}", "{ft}", "-o", "{tmp}", "--chunk-mb", "0"],
            "`--chunk-mb` must be > 0",
        ),
        (["weights", "{base}", "{tmp}/missing", "-o", "{tmp}"], "does not exist"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    tmp_path, stats_dir, sharded_base, full_finetune, args, message
):
    fill = {"stats": stats_dir, "base": sharded_base, "ft": full_finetune, "tmp": tmp_path}
    result = _run(*[a.format(**{k: str(v) for k, v in fill.items()}) for a in args])
    assert result.exit_code == 2
    assert message in _error_line(result)


def test_corrupt_checkpoint_and_unpaired_tensors_exit_2(
    tmp_path, sharded_base, full_finetune, gpt2_lora
):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes((full_finetune / "model.safetensors").read_bytes()[:-10])
    result = _run("weights", sharded_base, cut, "-o", tmp_path / "o")
    assert result.exit_code == 2 and "is truncated" in _error_line(result)
    result = _run("weights", sharded_base, gpt2_lora.base, "-o", tmp_path / "o")
    assert result.exit_code == 2 and "Checkpoints do not pair" in _error_line(result)
    assert not (tmp_path / "o" / "weight_stats.json").exists()


def test_allow_unpaired(tmp_path, sharded_base, resized_finetune, full_finetune):
    from safetensors.torch import load_file, save_file

    sd = load_file(full_finetune / "model.safetensors")
    sd.pop("model.norm.weight")
    save_file(sd, tmp_path / "ft.safetensors")
    result = _run(
        "weights",
        sharded_base,
        tmp_path / "ft.safetensors",
        "-o",
        tmp_path / "o",
        "--allow-unpaired",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["meta"]["unpaired"]["base_only"] == ["model.norm.weight"]


def test_help_is_fast_and_does_not_import_torch():
    code = (
        "import sys, measurement._cli_weights, measurement.cli; "
        "assert 'torch' not in sys.modules and 'pandas' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    result = _run("kl", "--help")
    assert result.exit_code == 0 and "--sigma-grid" in result.stdout and "Examples" in result.stdout


def test_allow_unpaired_with_nothing_paired_exits_2(tmp_path, sharded_base, full_finetune):
    """Used to write "0 tensors", and `kl --stats` then certified with KL = 0 (issue 15, 5)."""
    from safetensors.torch import load_file, save_file

    sd = load_file(full_finetune / "model.safetensors")
    save_file({f"other.{k}": v for k, v in sd.items()}, tmp_path / "renamed.safetensors")
    out = tmp_path / "o"
    result = _run("weights", sharded_base, tmp_path / "renamed.safetensors", "-o", out,
                  "--allow-unpaired", "--device", "cpu")
    assert result.exit_code == 2
    assert "nothing to compare" in _error_line(result)
    assert not (out / "weight_stats.json").exists()


def test_weights_over_an_adapter_output_leaves_no_stale_adapter_table(
    tmp_path, lora_cases, full_finetune
):
    """`kl --stats X --space adapter` used to return the old adapter's KL (issue 15, 2)."""
    case = lora_cases["plain"]
    out = tmp_path / "X"
    first = _run("weights", case.base, case.adapter, "-o", out, "--device", "cpu")
    assert first.exit_code == 0, first.output
    assert _run("kl", "--stats", out, "--sigma", "0.01", "--space", "adapter").exit_code == 0
    second = _run("weights", case.base, full_finetune, "-o", out, "--device", "cpu")
    assert second.exit_code == 0, second.output
    assert not (out / "adapter_stats.parquet").exists()
    result = _run("kl", "--stats", out, "--sigma", "0.01", "--space", "adapter")
    assert result.exit_code == 2
    _error_line(result)
