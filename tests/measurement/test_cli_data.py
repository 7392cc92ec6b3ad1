"""``tradeoff difficulty score|bins``, ``tradeoff losses`` and ``tradeoff certify``."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from fits.cli.main import app

pytest_plugins = ["tests.measurement._data_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def score(data, by, model, out, *extra):
    """`tradeoff difficulty score DATA --by BY --model MODEL --out OUT ...`."""
    return invoke("difficulty", "score", data, "--by", by, "--model", model, "--out", out, *extra)


def assert_user_error(result, fragment):
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def binned(tmp_path_factory, data_jsonl, llama_dir):
    folder = tmp_path_factory.mktemp("cli")
    scored = folder / "scored.parquet"
    res = score(data_jsonl, "length", llama_dir, scored, "--no-progress")
    assert res.exit_code == 0, res.output
    out = folder / "binned.parquet"
    res = invoke("difficulty", "bins", scored, "--by", "difficulty_length", "--out", out)
    assert res.exit_code == 0, res.output
    assert "robust:" in res.stdout
    return out


def test_score_and_bins_write_their_columns(binned, rows):
    table = pd.read_parquet(binned)
    assert len(table) == len(rows)
    assert {"difficulty_length", "n_completion_tokens", "bin", "prompt"} <= set(table.columns)
    assert list(table["bin"].cat.categories) == ["easy", "medium", "hard"]


def test_score_json_and_bins_json(tmp_path, data_jsonl, llama_dir):
    out = tmp_path / "s.jsonl"
    res = score(data_jsonl, "nll", llama_dir, out, "--json", "--no-progress")
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["by"] == "nll" and payload["column"] == "difficulty_nll"
    assert payload["out"] == str(out) and out.exists()
    res = invoke(
        "difficulty",
        "bins",
        out,
        "--by",
        "difficulty_nll",
        "--thresholds",
        "5.7,5.8",
        "--labels",
        "low,mid,high",
        "--out",
        tmp_path / "b.csv",
        "--json",
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["bins"]["thresholds"] == [5.7, 5.8]
    assert payload["bins"]["labels"] == ["low", "mid", "high"]
    assert set(payload["robustness"]) >= {"sizes", "moved", "changes", "robust"}


def test_losses_side_by_side_with_gap_tables(tmp_path, binned, llama_dir, memorised_dir):
    def side_by_side(out, resamples, *extra):
        """The memorised fine-tune beside its base, on the binned data."""
        base = ("--base", llama_dir, "--bins", "bin", "--no-progress", "--n-resamples", resamples)
        return invoke("losses", memorised_dir, binned, *base, "--out", out, *extra)

    out = tmp_path / "losses.parquet"
    res = side_by_side(out, 100, "--trained-bin", "easy", "--json")
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert [m["model"] for m in payload["models"]] == ["base", "finetuned"]
    report = payload["report"]
    assert {r["model"] for r in report["bins"]["rows"]} == {"base", "finetuned"}
    assert report["generalization"]["kind"] == "generalization"
    assert report["extrapolation"]["reference"] == "easy"
    table = pd.read_parquet(out)
    assert len(table) == 2 * 12
    assert {
        "example_id",
        "model",
        "n_tokens",
        "nll_sum",
        "nll_mean",
        "bin",
        "split",
        "difficulty_length",
    } <= set(table.columns)
    assert not list(tmp_path.glob(".*journal*"))  # journals removed once the output exists
    text = side_by_side(tmp_path / "l.csv", 50)
    assert text.exit_code == 0, text.output
    assert "Generalization gap" in text.stdout and "finetuned" in text.stdout


def test_losses_with_an_adapter_and_its_base(tmp_path, data_jsonl, llama_dir, adapter_dir):
    out = tmp_path / "l.jsonl"
    res = invoke(
        "losses",
        llama_dir,
        data_jsonl,
        "--adapter",
        adapter_dir,
        "--with-base",
        "--out",
        out,
        "--no-progress",
        "--json",
    )
    assert res.exit_code == 0, res.output
    models = [m["model"] for m in json.loads(res.stdout)["models"]]
    assert models == ["base", "finetuned"]
    table = pd.read_json(out, lines=True)
    base = table[table.model == "base"]["nll_sum"].to_numpy()
    ft = table[table.model == "finetuned"]["nll_sum"].to_numpy()
    assert abs(base - ft).max() > 1e-3


def test_numeric_bins_column_is_cut_in_tertiles(tmp_path, jsonl_writer, llama_dir):
    recs = [
        {
            "prompt": f"What is {i} + {i}?",
            "completion": f" The answer is {2 * i}.",
            "score": float(i),
        }
        for i in range(12)
    ]
    data = jsonl_writer(tmp_path / "d.jsonl", recs)
    res = invoke(
        "losses",
        llama_dir,
        data,
        "--bins",
        "score",
        "--out",
        tmp_path / "l.parquet",
        "--no-progress",
        "--n-resamples",
        "20",
    )
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(tmp_path / "l.parquet")
    assert table["bin"].value_counts().to_dict() == {"easy": 4, "medium": 4, "hard": 4}


def test_user_errors_exit_2_with_one_line(tmp_path, data_jsonl, llama_dir, binned):
    assert_user_error(
        score(tmp_path / "none.jsonl", "length", llama_dir, tmp_path / "o.parquet"),
        "no such file",
    )
    assert_user_error(
        score(data_jsonl, "size", llama_dir, tmp_path / "o.parquet"), "`by` must be one of"
    )
    assert_user_error(
        invoke("difficulty", "bins", binned, "--by", "nope", "--out", tmp_path / "o.csv"),
        "`--by` must be a column",
    )
    assert_user_error(
        invoke(
            "difficulty",
            "bins",
            binned,
            "--by",
            "difficulty_length",
            "--thresholds",
            "a,b",
            "--out",
            tmp_path / "o.csv",
        ),
        "`--thresholds` must be a number",
    )
    assert_user_error(
        invoke("losses", llama_dir, data_jsonl, "--bins", "level", "--out", tmp_path / "o.csv"),
        "`bins` must be a column",
    )
    assert_user_error(
        invoke("losses", llama_dir, data_jsonl, "--with-base", "--out", tmp_path / "o.csv"),
        "`with_base` needs `adapter`",
    )
    (tmp_path / "not_a_model").mkdir()
    assert_user_error(
        invoke("losses", tmp_path / "not_a_model", data_jsonl, "--out", tmp_path / "o.csv"),
        "config.json is missing",
    )
    assert_user_error(  # an output inside an input (issue 15, item 3)
        invoke("losses", tmp_path, data_jsonl, "--out", tmp_path / "o.csv"),
        "must not be, contain or lie inside an input",
    )
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "o.parquet").exists()


def test_certify_prints_and_writes_the_certificate(tmp_path, data_jsonl, llama_dir, finetuned_dir):
    out = tmp_path / "cert.json"
    res = invoke(
        "certify",
        llama_dir,
        finetuned_dir,
        data_jsonl,
        "-n",
        8,
        "--delta",
        0.05,
        "--sigma",
        0.01,
        "--mc-samples",
        2,
        "--out",
        out,
        "--json",
        "--no-progress",
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["n"] == 8 and payload["space"] == "weight" and payload["union"] == {}
    assert payload["best"] >= payload["q_upper"] >= payload["gibbs"]["q_mc"]
    assert json.loads(out.read_text())["kl"] == payload["kl"]
    assert not list(tmp_path.glob(".*journal*"))
    text = invoke(
        "certify",
        llama_dir,
        finetuned_dir,
        data_jsonl,
        "-n",
        6,
        "--sigma",
        0.01,
        "--sigma-grid",
        "0.003,0.01",
        "--mc-samples",
        2,
        "--no-progress",
    )
    assert text.exit_code == 0, text.output
    assert "PAC-Bayes certificate" in text.stdout and "sigma grid 2" in text.stdout


def test_certify_detects_an_adapter_and_rejects_bad_input(
    tmp_path, data_jsonl, llama_dir, adapter_dir, finetuned_dir
):
    res = invoke(
        "certify",
        llama_dir,
        adapter_dir,
        data_jsonl,
        "-n",
        4,
        "--space",
        "adapter",
        "--sigma",
        0.01,
        "--mc-samples",
        2,
        "--json",
        "--no-progress",
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["space"] == "adapter"
    assert_user_error(
        invoke("certify", llama_dir, finetuned_dir, data_jsonl, "--delta", 1.5, "--no-progress"),
        "`delta` must be in (0, 1)",
    )
    assert_user_error(
        invoke(
            "certify",
            llama_dir,
            finetuned_dir,
            data_jsonl,
            "--space",
            "adapter",
            "--sigma",
            0.01,
            "--no-progress",
        ),
        "`space` must be 'weight' for a full fine-tune",
    )
