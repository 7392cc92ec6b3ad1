"""The compression certificate on the synthetic task, through fits.experiments (shipped base)."""

from __future__ import annotations

import json

import pytest

from fits.experiments import compression_run
from fits.experiments._compression_run import main
from fits.synthetic import find_synthetic_base
from measurement import CompressionConfig


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
