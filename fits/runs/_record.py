"""The run record and the canonical columns of the runs table.

A :class:`RunRecord` is one run as a reader found it (raw metric keys, canonical values,
metadata candidates with their sources); :func:`metrics_to_columns` maps Hugging Face-style
metric keys onto the canonical columns :data:`RUN_COLUMNS`. The readers of each source family
build records; :func:`fits.runs.load_runs` merges their metadata into the table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "METADATA_FIELDS",
    "RUN_COLUMNS",
    "SIDECAR",
    "TEST_SLICE",
    "TRAIN_METRICS",
    "TRAIN_SLICES",
    "RunRecord",
    "metrics_to_columns",
    "smoothed_logged_loss",
]

RUN_COLUMNS: tuple[str, ...] = (
    "run_id",
    "source",
    "difficulty",
    "difficulty_label",
    "n",
    "n_tokens",
    "seed",
    "base_model",
    "train_loss",
    "test_loss",
    "train_acc",
    "test_acc",
    "kl",
    "sq_dist",
    "lr",
    "epochs",
    "steps",
    "budget_mode",
)
"""The canonical columns, in order; per-slice and extra columns follow them."""

METADATA_FIELDS: tuple[str, ...] = (
    "difficulty",
    "difficulty_label",
    "n",
    "n_tokens",
    "seed",
    "base_model",
    "lr",
    "epochs",
    "steps",
    "budget_mode",
)
TRAIN_SLICES = ("train", "train_subset")
TEST_SLICE = "test"
TRAIN_METRICS = ("auto", "eval", "logged", "average")
"""Where the canonical ``train_loss`` comes from (see :func:`fits.runs.load_runs`)."""
LOGGED_WINDOW_FRACTION = 0.1
LOGGED_WINDOW_MIN = 3
SIDECAR = "run_meta.json"
"""The sidecar file of a sweep run folder holding its metadata."""


@dataclass
class RunRecord:
    """One run as read from its files, before the metadata is merged.

    Attributes
    ----------
    run_id : str
        The run's identity (folder name, run name or ``run_id`` column).
    source : str
        The format it came from (``sweep``, ``hf``, ``llamafactory``, ``wandb``, ...).
    path : str
        The file or folder it was read from (named in error messages).
    metrics : dict
        Raw Hugging Face-style metric keys (``eval_test_loss``, ``eval/test_loss``, ...), mapped
        by :func:`metrics_to_columns`.
    values : dict
        Canonical columns read directly (tables, weight statistics).
    meta : list of (str, dict)
        Metadata candidates with the name of their source, e.g. ``("run_meta.json", {...})``.
    names : list of str
        Strings that a folder-name pattern is matched against, innermost first.
    fallback : dict
        Metadata used only where no other source gives the field (e.g. ``epochs`` from
        ``trainer_state.json``, ``base_model`` from ``config.json``).
    fallback_source : dict
        For fallbacks worth telling the user (``n``, ``lr``), where they came from, e.g.
        ``{"n": "train_samples (all_results.json)"}``; the runs table lists the ones used in
        its ``metadata_from`` column.
    """

    run_id: str
    source: str
    path: str
    metrics: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    meta: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    fallback: dict[str, Any] = field(default_factory=dict)
    fallback_source: dict[str, str] = field(default_factory=dict)


def smoothed_logged_loss(steps: Sequence[float], losses: Sequence[float]) -> float | None:
    r"""The logged training loss at the end of training, smoothed over the last logging window.

    With logged values :math:`\ell_k` at steps :math:`s_k` (sorted, last step :math:`S`), the
    window is :math:`W = \{k : s_k \ge (1 - 0.1) S\}` (the last 10% of steps), widened to
    the last 3 entries when it holds fewer, and the result is the plain mean
    :math:`|W|^{-1} \sum_{k \in W} \ell_k`. Non-finite entries are skipped; None when
    nothing is left. Each logged value is already the mean minibatch loss since the previous
    logging step (train mode, the model moving), so the window averages over roughly the last
    10% of training.
    """
    steps, losses = list(steps), list(losses)
    if len(steps) != len(losses):
        raise ValueError(
            f"`steps` and `losses` must have one length; got {len(steps)} and {len(losses)}."
        )
    order = range(len(steps) - 1, -1, -1)
    if steps != sorted(steps):  # not in logged order: latest step first
        order = sorted(range(len(steps)), key=lambda k: steps[k], reverse=True)
    window: list[float] = []
    cut = None
    for k in order:  # from the last step backwards
        v = losses[k]
        if type(v) not in (float, int) or not math.isfinite(v):
            continue
        if cut is None:
            cut = (1.0 - LOGGED_WINDOW_FRACTION) * float(steps[k])
        elif float(steps[k]) < cut and len(window) >= LOGGED_WINDOW_MIN:
            break
        window.append(float(v))
    if not window:
        return None
    return math.fsum(window) / len(window)


# --------------------------------------------------------------------------- metric names
_SLICE_OK = re.compile(r"[^0-9A-Za-z_]+")
_TOKEN_ACC = re.compile(r"eval_(?:(.+)_)?mean_token_accuracy")
_EVAL_METRIC = re.compile(r"eval_(.+)_(loss|accuracy|acc)")


def _slice_name(name: str) -> str:
    return _SLICE_OK.sub("_", name).strip("_")


def metrics_to_columns(
    metrics: Mapping[str, Any],
    *,
    train_slices: Sequence[str] = TRAIN_SLICES,
    test_slice: str = TEST_SLICE,
) -> dict[str, Any]:
    """Map Hugging Face-style metric keys to canonical runs-table columns.

    ``eval_<train>_loss`` -> ``train_loss`` (``<train>`` one of ``train_slices``),
    ``eval_<test>_loss`` -> ``test_loss`` (a plain ``eval_loss`` when there is no named test
    slice), any other ``eval_<slice>_loss`` -> ``test_loss_<slice>``; likewise ``_accuracy`` ->
    ``*_acc``. The run-average ``train_loss`` becomes ``train_loss_avg`` and the last logged
    ``loss`` ``train_loss_logged``; TRL's ``mean_token_accuracy`` and ``num_tokens`` become
    ``*_token_acc`` and ``tokens_seen``. W&B/TensorBoard tags ``eval/x`` and ``train/x`` are
    accepted too.
    """
    out: dict[str, Any] = {}
    plain: dict[str, Any] = {}
    for raw_key, value in metrics.items():
        key = str(raw_key)
        if "/" in key:
            if key.startswith("eval/"):
                key = "eval_" + key[5:]
            elif key.startswith("train/"):
                key = key[6:]
        plain[key] = value
    trains = set(train_slices)
    for key, value in plain.items():
        if not key.startswith("eval_"):
            if key == "train_loss":
                out["train_loss_avg"] = value
            elif key == "loss":
                out["train_loss_logged"] = value
            elif key == "mean_token_accuracy":
                out["train_token_acc_logged"] = value
            elif key in ("num_tokens", "num_input_tokens_seen", "total_tokens"):
                out["tokens_seen"] = value
            continue
        if (m := _TOKEN_ACC.fullmatch(key)) is not None:
            slice_ = m.group(1)
            if slice_ in trains:
                out["train_token_acc"] = value
            elif slice_ in (None, test_slice):
                out.setdefault("test_token_acc", value)
            else:
                out[f"test_token_acc_{_slice_name(slice_)}"] = value
            continue
        m = _EVAL_METRIC.fullmatch(key)
        if m is not None:  # other eval_* keys (runtime, throughput) are not metrics
            slice_, kind = m.group(1), "loss" if m.group(2) == "loss" else "acc"
            if slice_ in trains:
                out[f"train_{kind}"] = value
                if kind == "loss":
                    out["train_loss_source"] = f"eval_{slice_}_loss"
            elif slice_ == test_slice:
                out[f"test_{kind}"] = value
            else:
                out[f"test_{kind}_{_slice_name(slice_)}"] = value
    # an unnamed single eval set is the test set unless a named one exists
    for kind in ("loss", "accuracy"):
        col = "test_loss" if kind == "loss" else "test_acc"
        key = f"eval_{kind}"
        if key in plain:
            if col in out:
                out[f"{col}_eval"] = plain[key]
            else:
                out[col] = plain[key]
    return out
