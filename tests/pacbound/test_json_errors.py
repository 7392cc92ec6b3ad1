"""Errors under ``--json`` are JSON on stdout (and still one line on stderr, exit 2)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from fits.cli.main import app
from pacbound.support import error_object

runner = CliRunner()


def test_error_object_parses_the_message_template():
    obj = error_object("`delta` must be in the open interval (0, 1); got 1.5.")
    assert obj == {
        "error": "`delta` must be in the open interval (0, 1); got 1.5.",
        "input": "delta",
        "value": "1.5",
        "allowed": "in the open interval (0, 1)",
    }
    assert error_object("runs.csv: no runs found.")["input"] == "runs.csv"
    assert error_object("something else went wrong")["input"] is None


def test_bound_error_under_json_is_a_json_object(tmp_path):
    res = runner.invoke(
        app, ["bound", "kl", "--emp-risk", "0.1", "--kl", "5", "-n", "100", "--delta", "1.5", "--json"]
    )
    assert res.exit_code == 2
    obj = json.loads(res.stdout)
    assert obj["input"] == "delta" and obj["value"] == "1.5" and "(0, 1)" in obj["allowed"]
    assert res.stderr.count("error:") == 1 and "Traceback" not in res.stderr


def test_fit_error_under_json_is_a_json_object(tmp_path):
    table = tmp_path / "runs.csv"
    table.write_text("run_id,difficulty,n,seed,train_loss,test_loss\na,1,100,0,0.5,\n")
    res = runner.invoke(app, ["fit", str(table), "--out", str(tmp_path / "fit"), "--json"])
    assert res.exit_code == 2
    obj = json.loads(res.stdout)
    assert set(obj) == {"error", "input", "value", "allowed"} and obj["error"]
    # without --json, stdout stays empty and the line is on stderr
    res = runner.invoke(app, ["fit", str(table), "--out", str(tmp_path / "fit")])
    assert res.exit_code == 2 and res.stdout == "" and res.stderr.startswith("error:")
