"""Every command on a table of bad inputs: exit status 2, one line on stderr, no traceback.

Modelled on scikit-learn's common tests (one check run over every estimator): each row of
:data:`CASES` is a command line run on a workspace of real bad inputs (truncated, empty and
Git-LFS-pointer checkpoints, a config that is not JSON, a truncated adapter, non-zip pickles, a
symlink loop, UTF-16 and Latin-1 CSV files, NaN on the command line and in CSV cells, outputs
that are inputs) and the fragment its one error line must hold (issue 15, items 3, 7, 8, 9).
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from fits.cli.main import app
from tests._tiny import build_tokenizer, save_model, tiny_llama

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """Bad (and a few good) inputs for every command, built once."""
    torch.set_num_threads(1)
    w = tmp_path_factory.mktemp("bad")
    tok = build_tokenizer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = save_model(tiny_llama(seed=0), w / "base", max_shard_size=None, tokenizer=tok)
        save_model(tiny_llama(seed=1), w / "ft", max_shard_size=None, tokenizer=tok)
    (w / "data.jsonl").write_text(
        "".join(
            json.dumps({"prompt": f"What is {i} + 1?", "completion": f" {i + 1}", "score": i})
            + "\n"
            for i in range(4)
        )
    )
    blob = (base / "model.safetensors").read_bytes()
    for name, content in (
        ("truncated", blob[: len(blob) // 2]),
        ("lfs", b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\n"),
        ("zero", b""),
    ):
        shutil.copytree(base, w / name)
        (w / name / "model.safetensors").write_bytes(content)
    shutil.copytree(base, w / "badjson")
    (w / "badjson" / "config.json").write_text("{not json")
    # a genuine PEFT adapter, then cut short
    from peft import LoraConfig, get_peft_model

    lora = get_peft_model(
        tiny_llama(seed=0), LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False)
    )
    lora.save_pretrained(w / "adapter")
    adapter_file = w / "adapter" / "adapter_model.safetensors"
    adapter_file.write_bytes(adapter_file.read_bytes()[:-100])
    with open(w / "plain.bin", "wb") as fh:
        pickle.dump({"a": np.arange(3)}, fh)
    (w / "loop").symlink_to(w / "loop")
    # bound --csv inputs
    good = "emp_risk,kl,n,delta\n0.1,10,1000,0.05\n"
    (w / "utf16.csv").write_bytes(good.encode("utf-16"))
    (w / "latin1.csv").write_bytes(b"emp_risk,kl,n,delta,label\n0.1,10,1000,0.05,caf\xe9\n")
    (w / "nan.csv").write_text("emp_risk,kl,n,delta\n0.1,10,1000,nan\n")
    (w / "dup.csv").write_text("emp_risk,kl,kl,n,delta\n0.1,10,5,1000,0.05\n")
    # fit / select inputs
    rng = np.random.default_rng(0)
    rows = [
        {
            "run_id": f"d{d}n{n}s{s}",
            "difficulty": d,
            "n": n,
            "seed": s,
            "train_loss": 0.1 * d + rng.normal(0, 0.01),
            "test_loss": 0.1 * d + (d / n) ** 0.5 + 0.3 / d + rng.normal(0, 0.01),
        }
        for d in (1, 2, 3)
        for n in (100, 1000)
        for s in (0, 1)
    ]
    pd.DataFrame(rows).to_csv(w / "runs.csv", index=False)
    (w / "rundir").mkdir()
    shutil.copy(w / "runs.csv", w / "rundir" / "runs.csv")
    (w / "other").mkdir()
    (w / "other" / "keep.txt").write_text("not the toolkit's")
    (w / "afile").write_text("a file")
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["fit", str(w / "runs.csv"), "--out", str(w / "fitout"), "--no-cv", "--no-baselines",
         "--n-resamples", "10", "--no-plots", "--no-progress"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    # weight statistics, then one with its parquet cut short
    res = runner.invoke(app, ["weights", str(base), str(w / "ft"), "--out", str(w / "stats")])
    assert res.exit_code == 0, res.output
    shutil.copytree(w / "stats", w / "stats_cut")
    parquet = w / "stats_cut" / "weight_stats.parquet"
    parquet.write_bytes(parquet.read_bytes()[:-200])
    return w


_BOUND = ["bound", "kl", "--emp-risk", "0.1", "--kl", "10", "-n", "1000", "--delta", "0.05"]
_KL = ["kl", "--stats", "stats", "--sigma", "0.01", "-n", "100"]

#: (id, command line, fragment of the one error line)
CASES = [
    # item 7: derive without an interior optimum
    ("derive-K-decreasing", ["derive", "--K", "1/d"], "no interior optimum"),
    ("derive-T-increasing", ["derive", "--T", "d"], "no interior optimum"),
    # item 8: NaN at the command-line boundary
    ("derive-timeout-nan", ["derive", "--solve-timeout", "nan"], "`--solve-timeout`"),
    ("kl-inv-q-nan", ["kl-inv", "nan", "0.1"], "`q`"),
    ("kl-inv-c-nan", ["kl-inv", "0.1", "nan"], "`c`"),
    ("bound-emp-risk-nan", [*_BOUND[:3], "nan", *_BOUND[4:]], "`emp_risk`"),
    ("bound-kl-nan", [*_BOUND[:5], "nan", *_BOUND[6:]], "`kl`"),
    ("bound-delta-nan", [*_BOUND[:9], "nan"], "`delta`"),
    ("bound-csv-nan-cell", ["bound", "kl", "--csv", "nan.csv"], "row 2, field `delta`"),
    ("kl-delta-nan", [*_KL, "--emp-risk", "0.1", "--delta", "nan"], "`--delta`"),
    ("kl-emp-risk-nan", [*_KL, "--emp-risk", "nan", "--delta", "0.05"], "`--emp-risk`"),
    ("kl-sigma-nan", ["kl", "--stats", "stats", "--sigma", "nan"], "`--sigma`"),
    # item 7 / 9: CSV files
    ("bound-csv-utf16", ["bound", "kl", "--csv", "utf16.csv"], "not UTF-8"),
    ("bound-csv-latin1", ["bound", "kl", "--csv", "latin1.csv"], "not UTF-8"),
    ("bound-csv-duplicate", ["bound", "kl", "--csv", "dup.csv"], "must be unique"),
    ("bound-csv-symlink-loop", ["bound", "kl", "--csv", "loop"], "symbolic links"),
    # item 7: checkpoints
    ("losses-truncated", ["losses", "truncated", "data.jsonl", "--out", "l.jsonl"], "truncated"),
    ("losses-lfs", ["losses", "lfs", "data.jsonl", "--out", "l.jsonl"], "Git LFS pointer"),
    ("losses-zero", ["losses", "zero", "data.jsonl", "--out", "l.jsonl"], "empty (0 bytes)"),
    ("losses-bad-json", ["losses", "badjson", "data.jsonl", "--out", "l.jsonl"], "config"),
    (
        "losses-truncated-adapter",
        ["losses", "base", "data.jsonl", "--adapter", "adapter", "--out", "l.jsonl"],
        "adapter_model.safetensors",
    ),
    (
        "score-truncated",
        ["difficulty", "score", "data.jsonl", "--by", "nll", "--model", "truncated", "--out", "s.jsonl"],
        "truncated",
    ),
    ("score-lfs", ["difficulty", "score", "data.jsonl", "--by", "nll", "--model", "lfs", "--out", "s.jsonl"], "Git LFS"),
    ("weights-non-zip-pickle", ["weights", "base", "plain.bin", "--out", "w1"], "weights_only"),
    ("weights-symlink-loop", ["weights", "base", "loop", "--out", "w2"], "cannot be resolved"),
    ("weights-out-existing-file", ["weights", "base", "ft", "--out", "afile"], "existing file"),
    ("kl-stats-truncated-parquet", ["kl", "--stats", "stats_cut", "--sigma", "0.01"], "weight_stats.parquet"),
    # item 9
    (
        "losses-max-length",
        ["losses", "base", "data.jsonl", "--out", "l.jsonl", "--max-length", "100000"],
        "max_position_embeddings",
    ),
    (
        "bins-overwrites-scores",
        ["difficulty", "bins", "data.jsonl", "--by", "score", "--bin-column", "score", "--out", "b.jsonl"],
        "`--bin-column`",
    ),
    # item 3: outputs that are inputs, or folders the toolkit did not write
    ("fit-out-is-input-folder", ["fit", "rundir", "--out", "rundir"], "input rundir"),
    ("fit-out-is-input-file", ["fit", "runs.csv", "--out", "runs.csv"], "input runs.csv"),
    ("fit-out-inside-input", ["fit", "rundir", "--out", "rundir/fit"], "is inside"),
    ("fit-out-dot", ["fit", "runs.csv", "--out", "."], "--out"),
    ("fit-out-foreign-folder", ["fit", "runs.csv", "--out", "other"], "--overwrite"),
    ("fit-out-existing-file", ["fit", "runs.csv", "--out", "afile"], "existing file"),
    ("select-out-is-input", ["select", "data.jsonl", "--budget", "2", "--fit", "x", "--out", "data.jsonl"], "input data.jsonl"),
    ("losses-out-is-data", ["losses", "base", "data.jsonl", "--out", "data.jsonl"], "input data.jsonl"),
    ("weights-out-is-input", ["weights", "base", "ft", "--out", "ft"], "input ft"),
    ("score-out-is-data", ["difficulty", "score", "data.jsonl", "--by", "length", "--model", "base", "--out", "data.jsonl"], "input"),
    ("bins-out-is-data", ["difficulty", "bins", "data.jsonl", "--by", "score", "--out", "data.jsonl"], "input"),
    ("certify-out-is-data", ["certify", "base", "ft", "data.jsonl", "-n", "4", "--out", "data.jsonl"], "input"),
    ("sweep-run-out-is-spec", ["sweep", "run", "data.jsonl", "--out", "data.jsonl"], "input"),
    ("sweep-examples-out-is-input", ["sweep", "examples", "rundir", "--out", "rundir"], "input"),
    ("sweep-theory-out-is-input", ["sweep", "theory", "rundir", "--out", "rundir"], "input"),
    ("synth-out-is-folder", ["data", "synth", "-n", "5", "--out", "other"], "a folder"),
    ("pretrain-out-foreign", ["data", "pretrain", "--out", "other"], "--overwrite"),
    ("demo-out-existing-file", ["demo", "--out", "afile"], "existing file"),
]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink() and "stats" not in p.parts[len(folder.parts)]
    }


@pytest.mark.parametrize(("argv", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line(workspace, monkeypatch, argv, fragment):
    monkeypatch.chdir(workspace)
    before = _snapshot(workspace)
    result = CliRunner().invoke(app, argv)
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    assert fragment in lines[0], lines[0]
    assert _snapshot(workspace) == before  # no input touched, nothing half-written


def test_the_console_command_reports_like_the_runner(workspace):
    """The installed entry point exits 2 with the same one line as CliRunner."""
    argv = ["fit", "runs.csv", "--out", "runs.csv"]
    proc = subprocess.run(
        [sys.executable, "-m", "fits.cli.main", *argv],
        cwd=workspace,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    cwd = Path.cwd()
    try:
        os.chdir(workspace)
        inline = CliRunner().invoke(app, argv)
    finally:
        os.chdir(cwd)
    assert proc.returncode == inline.exit_code == 2
    assert proc.stderr == inline.stderr
    assert proc.stdout == ""


def _file_size_limit() -> None:  # runs in the child before exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


def test_file_size_limit_gives_one_line_and_no_partial_output(tmp_path):
    """EFBIG (a file-size limit; ENOSPC is reported the same way): a clean line, exit 2,
    and no partial output left behind."""
    proc = subprocess.run(
        [sys.executable, "-m", "fits.cli.main", "data", "synth", "-n", "2000", "--out", "big.jsonl"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=_file_size_limit,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "error: file too large (a file-size limit was reached); the partial output was removed."
    ]
    assert list(tmp_path.iterdir()) == []


def test_select_does_not_shrink_its_pool(workspace, monkeypatch):
    monkeypatch.chdir(workspace)
    before = (workspace / "data.jsonl").read_bytes()
    argv = ["select", "data.jsonl", "--budget", "2", "--fit", "fitout", "--column", "score"]
    assert CliRunner().invoke(app, [*argv, "--out", "sel.jsonl"]).exit_code == 0  # it can run
    result = CliRunner().invoke(app, [*argv, "--out", "./data.jsonl"])
    assert result.exit_code == 2
    assert (workspace / "data.jsonl").read_bytes() == before


def test_library_warnings_print_as_one_line_each(workspace, tmp_path):
    """`weights --allow-unpaired` with a tensor missing: the coverage warning is one
    `warning:` line on stderr (follow-up a), and the command succeeds."""
    sd = load_file(workspace / "ft" / "model.safetensors")
    sd.pop("model.norm.weight")
    save_file(sd, tmp_path / "ft.safetensors", metadata={"format": "pt"})
    result = CliRunner().invoke(
        app,
        [
            "weights",
            str(workspace / "base"),
            str(tmp_path / "ft.safetensors"),
            "--allow-unpaired",
            "--no-progress",
            "--out",
            str(tmp_path / "stats"),
        ],
    )
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1, result.stderr
    assert "parameters" in warned[0] and "did not pair" in warned[0]


# ------------------------------------------------------------------ item 9, and the libraries


def test_bound_csv_strips_a_utf8_byte_order_mark(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfemp_risk,kl,n,delta\n0.1,10,1000,0.05\n")
    result = CliRunner().invoke(app, ["bound", "kl", "--csv", str(path), "--json"])
    assert result.exit_code == 0, result.output
    plain = CliRunner().invoke(app, [*_BOUND, "--json"])
    assert json.loads(result.stdout)[0]["value"] == json.loads(plain.stdout)["value"]


def test_assign_bins_never_overwrites_the_scores():
    from measurement import assign_bins, make_bins
    from pacbound.exceptions import InvalidParameterError

    table = pd.DataFrame({"score": np.arange(9.0), "bin": ["x"] * 9})
    binning = make_bins(table["score"].to_numpy(), column="score", quantiles=3)
    with pytest.raises(InvalidParameterError, match="overwrite the scores"):
        assign_bins(table, binning, out_column="score")
    with pytest.warns(UserWarning, match="'bin' already exists"):
        out = assign_bins(table, binning, out_column="bin")
    assert out["score"].tolist() == list(np.arange(9.0))


def test_max_length_above_the_models_positions_is_refused():
    from measurement._lm import check_max_length
    from pacbound.exceptions import InvalidParameterError

    model = tiny_llama(seed=0)  # 256 positions
    assert check_max_length(model, None) == 256
    assert check_max_length(model, 128) == 128
    with pytest.raises(InvalidParameterError, match="at most the model's 256 positions"):
        check_max_length(model, 257)


def test_negative_losses_warn_and_negative_accuracies_are_refused():
    from fits.exceptions import InsufficientDataError
    from fits.model import prepare_data

    rows = [
        {"run_id": f"r{d}{n}", "difficulty": d, "n": n, "train_loss": 0.1 * d - 0.25,
         "test_loss": 0.2 * d, "train_acc": 0.5, "test_acc": -0.1}
        for d in (1, 2) for n in (10, 100)
    ]  # fmt: skip
    with pytest.warns(UserWarning, match="`train_loss` should be >= 0"):
        prepare_data(pd.DataFrame(rows), target="loss")
    with pytest.raises(InsufficientDataError, match=r"must be in \[0, 1\]"):
        prepare_data(pd.DataFrame(rows), target="error")


def test_derive_without_an_interior_optimum_says_why():
    from pacbound import derive_tradeoff
    from pacbound.exceptions import InvalidParameterError

    with pytest.raises(InvalidParameterError, match=r"K'\(d\) > 0 \(K increasing\) does not hold"):
        derive_tradeoff("mcallester", "1/d", "power")
    with pytest.raises(InvalidParameterError, match=r"T'\(d\) < 0 \(T decreasing\) does not hold"):
        derive_tradeoff("mcallester", "power", "d")


def test_an_output_folder_the_toolkit_wrote_is_replaced(workspace, monkeypatch):
    """The marker lets a rerun replace its own output without --overwrite; --overwrite
    replaces a foreign folder."""
    from pacbound.support import OUTPUT_MARKER, check_output_path

    monkeypatch.chdir(workspace)
    assert (workspace / "fitout" / OUTPUT_MARKER).is_file()
    assert check_output_path("fitout", ["runs.csv"], kind="dir")
    assert check_output_path("other", ["runs.csv"], kind="dir", overwrite=True)
