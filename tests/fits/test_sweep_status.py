"""``sweep_status``: done, failed and pending runs of a sweep folder, as a table and JSON."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fits import SpecError, SweepSpec, sweep_status
from fits.sweep._runner import execute_run, prepare_sweep

pytestmark = pytest.mark.usefixtures("sweep_env")


def test_failed_and_pending_runs_are_reported(tmp_path):
    rows = [
        {"prompt": f"{i} + 1 =", "completion": f" {i + 1}", "difficulty": float(i % 4)}
        for i in range(12)
    ]
    data = tmp_path / "d.jsonl"
    pd.DataFrame(rows).to_json(data, orient="records", lines=True)
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}", encoding="utf-8")
    spec = SweepSpec.from_dict(
        {
            "base": {"kind": "path", "path": str(base)},
            "task": {"kind": "dataset", "train": str(data), "test_fraction": 0.2},
            "difficulty": {"kind": "bins", "bins": [[0, 2], [2, 4]]},
            "budget": {"n": [1, 2]},
        }
    )
    plan = prepare_sweep(spec, tmp_path / "sw")
    broken = plan.runs[0]
    res = execute_run(tmp_path / "sw", broken)  # a real failure: the base folder is no model
    assert res["status"] == "failed" and "tokenizer" in res["error"]
    status = sweep_status(tmp_path / "sw")
    assert status.counts == {"failed": 1, "pending": 3} and not status.complete
    failed = [r for r in status.rows if r["state"] == "failed"]
    assert failed[0]["run_id"] == broken.run_id and "tokenizer" in failed[0]["error"]
    text = str(status)
    assert "1 failed" in text and "3 pending" in text and broken.run_id in text
    assert json.loads(json.dumps(status.to_dict()))["counts"]["pending"] == 3
    big = SweepSpec.from_dict({**spec.data, "budget": {**spec.data["budget"], "n": [1, 50]}})
    with pytest.raises(SpecError, match=r"`budget.n` = 50 exceeds the \d+ training rows"):
        prepare_sweep(big, tmp_path / "other")
