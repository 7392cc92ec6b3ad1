"""Tests of pacbound.support._environment and the ``tradeoff env`` / ``tradeoff --version`` commands."""

from __future__ import annotations

import json
from importlib import metadata

import torch
from typer.testing import CliRunner

from fits.cli.main import app
from pacbound import kl_inverse_backend
from pacbound.support._environment import EnvironmentReport, environment_report, installed_version

runner = CliRunner()


def test_report_reads_this_installation() -> None:
    report = environment_report()
    assert isinstance(report, EnvironmentReport)
    assert report.version == metadata.version("sft-tradeoff")
    assert report.packages["torch"] == metadata.version("torch")
    assert report.kl_inverse_backend == kl_inverse_backend()
    assert report.cpus >= 1
    assert len(report.gpus) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    text = str(report)
    assert text.splitlines()[0] == f"sft-tradeoff {report.version}"
    assert "kl-inverse" in text and "torch " in text


def test_installed_version_of_a_missing_distribution_is_none() -> None:
    assert installed_version("surely-not-an-installed-distribution-xyz") is None
    assert installed_version("numpy") == metadata.version("numpy")


def test_env_command_text_and_json() -> None:
    text = runner.invoke(app, ["env"])
    assert text.exit_code == 0, text.output
    assert text.output.startswith("sft-tradeoff ")
    out = runner.invoke(app, ["env", "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output)
    assert payload["version"] == metadata.version("sft-tradeoff")
    assert payload["packages"]["numpy"] == metadata.version("numpy")
    assert set(payload) == {
        "version",
        "python",
        "platform",
        "cpus",
        "kl_inverse_backend",
        "cuda",
        "gpus",
        "packages",
    }


def test_version_option() -> None:
    out = runner.invoke(app, ["--version"])
    assert out.exit_code == 0
    assert out.output == f"sft-tradeoff {metadata.version('sft-tradeoff')}\n"
