"""The configs of the wide calls: constraints declared once, checked, serialised, shown by --help.

The invalid values are generated from each field's declaration (in the style of sklearn's
``test_public_functions``), so a new field is tested as soon as it is declared.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest
from typer.testing import CliRunner

from fits import FitConfig
from fits.cli.main import app
from measurement import CertifyConfig
from pacbound.exceptions import InvalidParameterError
from pacbound.support import Interval, config_field, describe_constraint

CONFIGS = (FitConfig, CertifyConfig)


def _invalid_values(meta):
    """Values that break the declared constraint (never one of its ``also`` values)."""
    if meta.get("choices") is not None:
        bad = ["not-a-choice"]
    elif meta.get("interval") is not None:
        bad = [meta["interval"].outside(), math.nan]
    elif meta.get("minimum") is not None:
        bad = [meta["minimum"] - 1, meta["minimum"] + 0.5]
        bad = [b for b in bad if b not in meta["also"]] + [-7]
    elif meta.get("boolean"):
        bad = ["yes", 1]
    else:
        return []
    if meta.get("sequence"):
        bad = [[b] for b in bad if not isinstance(b, float) or not math.isnan(b)] + [[]]
    if not meta.get("nullable"):
        bad.append(None)
    return bad


def _constrained_fields():
    for cls in CONFIGS:
        for f in dataclasses.fields(cls):
            for bad in _invalid_values(f.metadata):
                yield pytest.param(cls, f, bad, id=f"{cls.__name__}.{f.name}={bad!r}")


@pytest.mark.parametrize(("cls", "field", "bad"), list(_constrained_fields()))
def test_every_declared_constraint_rejects_an_invalid_value(cls, field, bad):
    meta = field.metadata
    expected = f"`{field.name}` must be {describe_constraint(meta)}; got {bad!r}."
    with pytest.raises(InvalidParameterError) as info:
        cls(**{field.name: bad})
    assert str(info.value) == expected
    # the message states the declared values themselves
    if meta["choices"] is not None:
        assert all(repr(c) in expected for c in meta["choices"])
    if meta["interval"] is not None:
        assert str(meta["interval"]) in expected


def test_every_config_field_is_declared_with_help():
    for cls in CONFIGS:
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"
        cls()  # the defaults satisfy the declarations


def test_the_declarations_hold_the_library_constants():
    from fits.estimate._choices import BOOTSTRAP_METHODS
    from fits.model._choices import WEIGHTINGS

    meta = {f.name: f.metadata for f in dataclasses.fields(FitConfig)}
    assert meta["weights"]["choices"] == WEIGHTINGS == ("auto", "inverse-variance", "none")
    assert meta["bootstrap"]["choices"] == BOOTSTRAP_METHODS


@pytest.mark.parametrize(
    "config",
    [
        FitConfig(),
        FitConfig(
            model="kl,exp",
            gap="catoni",
            rate="free",
            delta=0.1,
            catoni_c=2.0,
            loss="soft_l1",
            f_scale=0.5,
            target="error",
            weights="none",
            train_model="flat",
            bounds={"b": (0.01, 10)},
            grid=31,
            exclude=["r1", "r2"],
            n_resamples=0,
            bootstrap="wild",
            confidence_level=0.9,
            cv=False,
            cv_resamples=50,
            baselines=False,
            seed=None,
        ),
        CertifyConfig(),
        CertifyConfig(
            n=100,
            delta=0.02,
            delta_mc=0.03,
            sigma=0.01,
            sigma_grid=[0.1, 0.01, 0.01, 0.001],
            sigma_prior=0.02,
            per_tensor_scale=True,
            space="adapter",
            mc_samples=7,
            loss="zero_one",
            p_min=1e-3,
            catoni_grid=[0.5, 1, 2],
            batch_size=3,
            seed=11,
            dtype="float32",
            device="cpu",
        ),
    ],
    ids=["fit-default", "fit-all", "certify-default", "certify-all"],
)
def test_json_round_trip(config):
    text = json.dumps(config.to_dict())
    again = type(config).from_dict(json.loads(text))
    assert again == config
    assert again.to_dict() == config.to_dict()


def test_normalised_values_and_cross_field_rules():
    cfg = CertifyConfig(sigma_grid=[0.1, 0.01, 0.01], n=5.0)
    assert cfg.sigma_grid == (0.01, 0.1) and cfg.n == 5 and isinstance(cfg.n, int)
    with pytest.raises(InvalidParameterError, match="must leave a positive confidence"):
        CertifyConfig(delta=0.45, delta_mc=0.2)
    with pytest.raises(InvalidParameterError, match="`sigma` must be one of the sigma grid"):
        CertifyConfig(sigma=0.02, sigma_grid=[0.01, 0.03])
    with pytest.raises(InvalidParameterError, match="`bounds` must map names to"):
        FitConfig(bounds={"b": 3})
    with pytest.raises(InvalidParameterError, match=r"`model` must be '<K>\[,<T>\]'"):
        FitConfig(model="cubic")
    with pytest.raises(InvalidParameterError, match="`CertifyConfig` fields must be among"):
        CertifyConfig.from_dict({"sigmas": [0.1]})
    assert FitConfig().replace(loss="huber").loss == "huber"
    with pytest.raises(InvalidParameterError, match="`loss` must be one of"):
        FitConfig().replace(loss="l2")


def test_a_model_spec_is_stored_as_its_text():
    from fits import ModelSpec

    cfg = FitConfig(model=ModelSpec("kl", "exp", gap="catoni", rate="free", catoni_C=2.0))
    assert (cfg.model, cfg.gap, cfg.rate, cfg.catoni_c) == ("kl,exp", "catoni", "free", 2.0)
    assert cfg.spec() == ModelSpec("kl", "exp", gap="catoni", rate="free", catoni_C=2.0)


def test_config_field_declares_a_sequence_of_intervals():
    @dataclasses.dataclass(frozen=True)
    class Toy:
        widths: tuple = config_field(
            (1.0,), interval=Interval(0.0, 1.0, "right"), sequence=True, help="Widths."
        )

    meta = dataclasses.fields(Toy)[0].metadata
    assert describe_constraint(meta) == "a non-empty list of values in (0, 1]"


@pytest.mark.parametrize(
    ("command", "cls", "field"),
    [
        (["fit"], FitConfig, "weights"),
        (["fit"], FitConfig, "bootstrap"),
        (["fit"], FitConfig, "train_model"),
        (["fit"], FitConfig, "gap"),
        (["certify"], CertifyConfig, "space"),
        (["certify"], CertifyConfig, "loss"),
    ],
)
def test_cli_help_shows_the_declared_choices(command, cls, field):
    res = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    meta = {f.name: f.metadata for f in dataclasses.fields(cls)}[field]
    flag = "--" + field.replace("_", "-")
    line = next(ln for ln in res.stdout.splitlines() if re.search(rf"^\W*{flag}\s", ln))
    assert "One of: " + "|".join(meta["choices"]) in line
    assert meta["help"].rstrip(".") in line


def test_cli_flags_carry_the_config_field_names():
    res = CliRunner().invoke(app, ["fit", "--help"], env={"COLUMNS": "400"})
    for name in ("n_resamples", "confidence_level", "cv_resamples", "train_model", "seed"):
        assert "--" + name.replace("_", "-") in res.stdout
    for old in ("--confidence ", "--bootstrap-method", "--quiet"):
        assert old not in res.stdout
