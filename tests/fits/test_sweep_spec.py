"""Sweep spec files: parsing (TOML/YAML/JSON), defaults, and clear validation errors."""

from __future__ import annotations

import json

import pytest

from fits import SpecError, SweepSpec, load_spec
from fits.sweep._spec import FIELDS

MINIMAL = {"difficulty": {"centers": [2, 4]}, "budget": {"n": [16, 32]}}


def test_defaults_are_filled_and_every_field_is_present():
    spec = SweepSpec.from_dict(MINIMAL)
    for f in FIELDS:
        section, _, key = f.path.rpartition(".")
        assert key in (spec.data[section] if section else spec.data)
        if f.path not in ("difficulty.centers", "budget.n"):
            assert spec[f.path] == f.default
    assert spec["train.lr"] == 1e-3 and spec["budget.modes"] == ["epochs"]
    assert spec["difficulty.centers"] == [2.0, 4.0]  # ints become floats
    assert "mixture" in str(spec)


def test_toml_yaml_and_json_files_give_the_same_spec(tmp_path):
    (tmp_path / "s.toml").write_text(
        "[difficulty]\ncenters = [2, 4]\n[budget]\nn = [16, 32]\n", encoding="utf-8"
    )
    (tmp_path / "s.yaml").write_text(
        "difficulty:\n  centers: [2, 4]\nbudget:\n  n: [16, 32]\n", encoding="utf-8"
    )
    (tmp_path / "s.json").write_text(json.dumps(MINIMAL), encoding="utf-8")
    specs = [load_spec(tmp_path / f"s.{ext}") for ext in ("toml", "yaml", "json")]
    assert specs[0].data == specs[1].data == specs[2].data


def test_relative_paths_resolve_against_the_spec_folder(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "s.toml").write_text(
        '[base]\nkind = "path"\npath = "model"\n[task]\nkind = "dataset"\ntrain = "t.csv"\n'
        '[difficulty]\nkind = "bins"\nquantiles = 3\n[budget]\nn = [8]\n',
        encoding="utf-8",
    )
    spec = load_spec(tmp_path / "d" / "s.toml")
    assert spec["base.path"] == str((tmp_path / "d" / "model").resolve())
    assert spec["task.train"] == str((tmp_path / "d" / "t.csv").resolve())


@pytest.mark.parametrize(
    "change,message",
    [
        (
            {"budget": {"n": [0, 16]}},
            "`budget.n` must be a non-empty list of distinct integers >= 1; got [0, 16].",
        ),
        ({"budget": {"n": []}}, "`budget.n` must be a non-empty list of integers; got []."),
        (
            {"budget": {"n": [16], "modes": ["epoch"]}},
            "`budget.modes` must be a non-empty list of distinct values from 'epochs', 'steps'",
        ),
        ({"train": {"lr": -1}}, "`train.lr` must be a number in [1e-12, 10]; got -1.0."),
        (
            {"train": {"finetune": "qlora"}},
            "`train.finetune` must be one of 'full', 'lora'; got 'qlora'.",
        ),
        ({"train": {"batch": 4}}, "unknown field `train.batch`; allowed in [train]:"),
        ({"trainer": {}}, "unknown section `trainer`"),
        (
            {"difficulty": {"centers": [2, 9]}},
            "`difficulty.centers` must lie in [1, task.max_ops = 8]; got [2.0, 9.0].",
        ),
        (
            {"difficulty": {"kind": "bins", "centers": None}},
            "`difficulty.bins` (or difficulty.quantiles for a dataset) is required",
        ),
        (
            {"difficulty": {"kind": "bins", "bins": ["5-3"]}},
            "`difficulty.bins` must be a non-empty list of ranges",
        ),
        ({"base": {"kind": "path"}}, "`base.path` is required when base.kind = 'path'."),
        ({"task": {"kind": "dataset"}}, "`base.kind` = 'synthetic' needs task.kind = 'synthetic'"),
        (
            {"budget": {"n": [16], "seeds": [-1]}},
            "`budget.seeds` must be a non-empty list of distinct integers >= 0; got [-1].",
        ),
        (
            {"resources": {"threads_per_run": 0}},
            "`resources.threads_per_run` must be an integer >= 1; got 0.",
        ),
        ({"eval": {"accuracy": "yes"}}, "`eval.accuracy` must be true or false; got 'yes'."),
    ],
)
def test_validation_errors_name_field_constraint_and_value(change, message):
    raw = json.loads(json.dumps(MINIMAL))
    for section, body in change.items():
        raw.setdefault(section, {}).update(body)
        raw[section] = {k: v for k, v in raw[section].items() if v is not None}
    with pytest.raises(SpecError) as info:
        SweepSpec.from_dict(raw, "spec.toml")
    text = str(info.value)
    assert text.startswith("spec.toml: ")
    assert message in text


def test_missing_required_fields_and_files(tmp_path):
    with pytest.raises(SpecError, match=r"`budget.n` is required"):
        SweepSpec.from_dict({"difficulty": {"centers": [2]}})
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[budget\nn = 3", encoding="utf-8")
    with pytest.raises(SpecError, match=r"bad.toml: not a valid TOML file"):
        load_spec(bad)
    other = tmp_path / "s.ini"
    other.write_text("x", encoding="utf-8")
    with pytest.raises(SpecError, match=r"must be a .toml, .yaml, .yml or .json file"):
        load_spec(other)


def test_hash_payload_ignores_the_grid_but_not_the_config():
    a = SweepSpec.from_dict(MINIMAL)
    b = SweepSpec.from_dict({**MINIMAL, "budget": {"n": [16, 32, 64], "seeds": [0, 1]}})
    c = SweepSpec.from_dict({**MINIMAL, "train": {"lr": 3e-4}})
    assert a.hash_payload() == b.hash_payload()
    assert a.hash_payload() != c.hash_payload()
