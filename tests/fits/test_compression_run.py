"""The compression certificate on the synthetic task, through fits.experiments (shipped base)."""

from __future__ import annotations

import json

import pytest

from fits.experiments import compression_run
from fits.experiments._compression_run import main
from fits.synthetic import find_synthetic_base
from measurement import CompressionConfig, occam_code_allowed


@pytest.fixture(scope="module")
def base():
    folder = find_synthetic_base()
    if folder is None:
        pytest.skip("the shipped synthetic base is not present")
    return folder


def test_compression_run_records(base):
    cfg = CompressionConfig(
        dimension=128, levels=3, steps=2, qat_steps=1, full_steps=0, batch_size=4
    )
    lines: list[str] = []
    (record,) = compression_run([2.0], 8, heldout=8, config=cfg, base=base, log=lines.append)
    assert record["difficulty"] == 2.0 and record["n"] == 8
    assert 0.0 <= record["result"]["train_error"] <= record["certificate"] <= 1.0
    assert record["result"]["full_error"] is None  # skipped with full_steps = 0
    assert record["result"]["n_heldout"] == 8
    assert any("Compression certificate" in line for line in lines)
    json.dumps(record)


def test_compression_run_script_writes_json(base, tmp_path, capsys):
    out = tmp_path / "c.json"
    main(
        [
            "--d",
            "4",
            "--n",
            "4",
            "--heldout",
            "4",
            "--dimension",
            "128",
            "--levels",
            "3",
            "--steps",
            "1",
            "--qat-steps",
            "1",
            "--full-steps",
            "1",
            "--out",
            str(out),
        ]
    )
    (record,) = json.loads(out.read_text())
    assert record["difficulty"] == 4.0 and record["config"]["dimension"] == 128
    assert record["result"]["full_error"] is not None


def test_compression_run_script_bad_input_is_one_line_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--dimension", "64", "--out", str(tmp_path / "c.json")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: `dimension` must be on its grid") and "got 64" in err
    assert "Traceback" not in err and not (tmp_path / "c.json").exists()


@pytest.mark.usefixtures("sweep_env")
def test_compression_run_on_a_sweep_cell(tmp_path):
    """With a sweep folder: the sweep's base (the shipped calibrated one), its difficulty
    mixture and the run's own rows; a difficulty the sweep does not have is refused."""
    from fits.sweep._runner import prepare_sweep
    from fits.sweep._spec import SweepSpec
    from pacbound.exceptions import InvalidParameterError

    spec = SweepSpec.from_dict(
        {
            "base": {"ops": "1-2", "pretrain_steps": 800},
            "task": {"max_ops": 6},
            "difficulty": {"centers": [2, 4]},
            "budget": {"n": [8]},
        }
    )
    folder = tmp_path / "sw"
    prepare_sweep(spec, folder)
    cfg = CompressionConfig(
        dimension=128, levels=3, steps=1, qat_steps=1, full_steps=0, batch_size=4
    )
    quiet = dict(config=cfg, sweep=folder, log=lambda line: None)
    (rec,) = compression_run([4.0], 8, heldout=6, data_seed=1, **quiet)
    assert rec["label"] == "mix4" and rec["seed"] == 1 and rec["sweep"] == str(folder)
    assert rec["result"]["n"] == 8 and rec["result"]["n_heldout"] == 6
    assert 0.0 <= rec["result"]["train_error"] <= rec["certificate"] <= 1.0
    assert 0.0 <= rec["base_certificate"] <= 1.0
    # the code a certificate below guessing (1 - 1/7) would allow at this training error
    assert rec["guess_error"] == pytest.approx(6 / 7)
    allowed = occam_code_allowed(rec["result"]["train_error"], 6 / 7, 8, cfg.delta)
    assert rec["code_allowed_nats"] == pytest.approx(max(allowed, 0.0))
    with pytest.raises(InvalidParameterError, match="one of the sweep's difficulties"):
        compression_run([3.0], 8, **quiet)

    # the same through ``tradeoff sweep compress``: records on disk, one line per cell
    from typer.testing import CliRunner

    from fits.cli.main import app

    runner = CliRunner()
    out = tmp_path / "c.json"
    args = ["sweep", "compress", str(folder), "--d", "4", "--n", "8", "--seed", "1"]
    small = ["--dimension", "128", "--levels", "3", "--steps", "1", "--qat-steps", "1"]
    last = ["--qat-select-every", "0", "--heldout", "6", "--out", str(out)]
    res = runner.invoke(app, [*args, *small, *last])
    assert res.exit_code == 0, res.output
    (saved,) = json.loads(out.read_text())
    assert saved["certificate"] == pytest.approx(rec["certificate"])  # same rows, same seeds
    assert f"d = 4, n = 8: certificate {saved['certificate']:.4f}" in res.stdout
    # a rerun keeps the finished cell and computes only the new one, in the order asked
    before = out.read_text()
    res = runner.invoke(app, [*args, "--d", "2", *small, *last])
    assert res.exit_code == 0, res.output
    assert "[d=4] finished in" in res.output and "[d=2] base:" in res.output
    assert "[d=4] base:" not in res.output
    first, second = json.loads(out.read_text())
    assert first == json.loads(before)[0] and second["difficulty"] == 2.0
    # records made with other settings are not silently replaced
    res = runner.invoke(app, [*args, *small, "--qat-select-every", "1", "--out", str(out)])
    assert res.exit_code == 2 and "holds 2 record(s) made with other options" in res.output
    assert "Traceback" not in res.output
    # keeping the certified best of the quantised iterates (the default) is never worse
    cache = ["--subspace-cache", str(tmp_path / "zc")]
    res = runner.invoke(
        app, [*args, *small, *cache, "--heldout", "6", "--out", str(out), "--overwrite"]
    )
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "zc").glob("subspace-*.pt"))) == 1
    (picked,) = json.loads(out.read_text())
    assert picked["certificate"] <= saved["certificate"]
    assert [step for step, _, _ in picked["result"]["qat_trace"]] == [0, 1]
    # bad input: one line, exit 2, nothing written
    bad = tmp_path / "bad.json"
    for extra, expected in (
        (["--d", "3"], "one of the sweep's difficulties"),
        (["--dimension", "100"], "`dimension` must be on its grid"),
        (["--projection-seed", "4"], "`seed` must be below n_seeds = 4"),
    ):
        res = runner.invoke(app, [*args, *small, *extra, "--out", str(bad)])
        assert res.exit_code == 2 and expected in res.output, res.output
        assert "Traceback" not in res.output and not bad.exists()
