"""Readers for Hugging Face-style run folders: sweeps, Trainer/TRL output folders, LlamaFactory.

A run folder may hold ``trainer_state.json`` (``log_history``), ``all_results.json``,
``checkpoint-*`` folders, LlamaFactory's ``trainer_log.jsonl``, the sweep sidecar
``run_meta.json``, ``config.json`` / ``adapter_config.json`` and the weight statistics of
:mod:`measurement` (``weight_stats.parquet``). :func:`read_path` also dispatches files and folders
of other formats to their readers.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fits.exceptions import RunsFileError
from fits.runs._events import read_tensorboard
from fits.runs._record import RunRecord
from fits.runs._tables import read_table_file, read_wandb_csv, sniff_wandb_csv
from pacbound.support import read_jsonl_records

__all__ = ["is_run_folder", "read_hf_folder", "read_json", "read_llamafactory_log", "read_path"]

_RUN_FILES = ("trainer_state.json", "all_results.json", "trainer_log.jsonl", "run_meta.json")


def read_json(path: Path) -> Any:
    """Read a JSON file; a malformed one raises :class:`RunsFileError` naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RunsFileError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunsFileError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from None


def _checkpoints(folder: Path) -> list[Path]:
    found = []
    for child in folder.glob("checkpoint-*"):
        m = re.fullmatch(r"checkpoint-(\d+)", child.name)
        if m and child.is_dir():
            found.append((int(m.group(1)), child))
    return [p for _, p in sorted(found)]


def is_run_folder(folder: Path) -> bool:
    """True when ``folder`` looks like one run's output folder."""
    return any((folder / name).is_file() for name in _RUN_FILES) or bool(_checkpoints(folder))


def _flatten(meta: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in meta.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, prefix=f"{name}."))
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(value)
        else:
            out[name] = value
    return out


def _log_history_metrics(path: Path, state: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Final metrics from a TrainerState ``log_history``: last value of each key."""
    if not isinstance(state, dict):
        raise RunsFileError(
            f"{path}: expected a JSON object (a TrainerState); got {type(state).__name__}."
        )
    history = state.get("log_history")
    if not isinstance(history, list):
        raise RunsFileError(f"{path}: field `log_history` is missing or not a list.")
    metrics: dict[str, Any] = {}
    eval_step = None
    for i, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise RunsFileError(
                f"{path}: field `log_history[{i}]` must be an object; got {entry!r}."
            )
        for key, value in entry.items():
            if key in ("step", "epoch"):
                continue
            metrics[key] = value
            if (key.startswith("eval_") and key.endswith("_loss")) or key == "eval_loss":
                eval_step = entry.get("step")
    extra: dict[str, Any] = {}
    global_step = state.get("global_step")
    if global_step is not None:
        extra["global_step"] = global_step
    if state.get("num_train_epochs") is not None:
        extra["num_train_epochs"] = state["num_train_epochs"]
    if eval_step is not None and global_step is not None and eval_step != global_step:
        extra["eval_step"] = eval_step
    return metrics, extra


def read_llamafactory_log(path: Path) -> dict[str, Any]:
    """Final metrics from LlamaFactory's ``trainer_log.jsonl`` (keys with None are absent)."""
    metrics: dict[str, Any] = {}
    try:
        entries = read_jsonl_records(path, error=RunsFileError)
    except OSError as exc:
        raise RunsFileError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    for entry in entries:
        for key in ("loss", "eval_loss", "predict_loss", "accuracy", "total_tokens"):
            if entry.get(key) is not None:
                metrics[key] = entry[key]
        if entry.get("current_steps") is not None:
            metrics["_steps"] = entry["current_steps"]
    return metrics


def read_hf_folder(folder: Path, *, source: str | None = None) -> RunRecord:
    """Read one run folder (Trainer/TRL, LlamaFactory or a sweep run) into a :class:`RunRecord`."""
    folder = Path(folder)
    meta_file = folder / "run_meta.json"
    state_file = folder / "trainer_state.json"
    if not state_file.is_file():
        ckpts = _checkpoints(folder)
        if ckpts and (ckpts[-1] / "trainer_state.json").is_file():
            state_file = ckpts[-1] / "trainer_state.json"
    lf_file = folder / "trainer_log.jsonl"
    results_file = folder / "all_results.json"
    if source is None:
        source = "sweep" if meta_file.is_file() else "llamafactory" if lf_file.is_file() else "hf"
    rec = RunRecord(run_id=folder.name, source=source, path=str(folder))
    rec.names = [p.name for p in (folder, *folder.parents) if p.name]
    extra: dict[str, Any] = {}
    if lf_file.is_file():
        lf = read_llamafactory_log(lf_file)
        steps = lf.pop("_steps", None)
        if steps is not None:
            extra["global_step"] = steps
        rec.metrics.update(lf)
    if state_file.is_file():
        state_metrics, state_extra = _log_history_metrics(state_file, read_json(state_file))
        rec.metrics.update(state_metrics)
        extra.update(state_extra)
    if results_file.is_file():
        results = read_json(results_file)
        if not isinstance(results, dict):
            raise RunsFileError(f"{results_file}: expected a JSON object of metrics.")
        rec.metrics.update(results)
        extra.pop("eval_step", None)
    if not rec.metrics:
        raise RunsFileError(
            f"{folder}: no metrics found (looked for trainer_state.json, all_results.json, "
            "trainer_log.jsonl and checkpoint-*/trainer_state.json)."
        )
    if "eval_step" in extra:
        warnings.warn(
            f"{state_file}: the last evaluation is at step {extra['eval_step']} but training "
            f"ended at step {extra['global_step']}; its eval metrics are not the final model's.",
            UserWarning,
            stacklevel=3,
        )
    if "global_step" in extra:
        rec.values["global_step"] = extra["global_step"]
        rec.fallback["steps"] = extra["global_step"]
    if "num_train_epochs" in extra:
        rec.fallback["epochs"] = extra["num_train_epochs"]
    if "train_samples" in rec.metrics:
        rec.values["train_samples"] = rec.metrics["train_samples"]
    if meta_file.is_file():
        meta = read_json(meta_file)
        if not isinstance(meta, dict):
            raise RunsFileError(f"{meta_file}: expected a JSON object of run metadata.")
        meta = _flatten(meta)
        if meta.get("run_id") is not None:
            rec.run_id = str(meta["run_id"])
        meta.pop("run_id", None)
        rec.meta.append((str(meta_file), meta))
    ckpts = _checkpoints(folder)
    config_dir = folder if (folder / "config.json").is_file() or not ckpts else ckpts[-1]
    for cfg_name, key in (
        ("adapter_config.json", "base_model_name_or_path"),
        ("config.json", "_name_or_path"),
    ):
        cfg = config_dir / cfg_name
        if cfg.is_file():
            conf = read_json(cfg)
            if isinstance(conf, dict):
                if conf.get(key):
                    rec.fallback.setdefault("base_model", conf[key])
                if conf.get("transformers_version"):
                    rec.values.setdefault("transformers_version", conf["transformers_version"])
    stats = folder / "weight_stats.parquet"
    if stats.is_file():
        rec.values["sq_dist"] = _sq_dist(stats)
    return rec


def _sq_dist(path: Path) -> float:
    """Squared distance to the base, ``sum(sq_delta)``, from a WeightStats table."""
    import pandas as pd

    try:
        table = pd.read_parquet(path, columns=["sq_delta"])
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise RunsFileError(f"{path}: cannot read field `sq_delta` ({exc}).") from None
    total = float(table["sq_delta"].astype("float64").sum())
    if not total >= 0.0:
        raise RunsFileError(f"{path}: field `sq_delta` must sum to a number >= 0; got {total}.")
    return total


def _sweep_runs(folder: Path) -> list[Path]:
    runs = folder / "runs"
    if not runs.is_dir():
        return []
    return sorted(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))


def _event_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("events.out.tfevents.*"))


def read_path(
    path: Path, *, format: str = "auto", columns: Mapping[str, str] | None = None
) -> list[RunRecord]:
    """Read every run in ``path`` (a file or folder) with the reader its format needs."""
    if not path.exists():
        raise RunsFileError(f"{path}: no such file or folder.")
    if path.is_dir():
        sweep_runs = [p for p in _sweep_runs(path) if is_run_folder(p)]
        if format in ("auto", "sweep") and sweep_runs:
            return [read_hf_folder(p, source="sweep") for p in sweep_runs]
        if format == "tensorboard":
            return read_tensorboard(path)
        if format in ("auto", "hf", "llamafactory", "sweep") and is_run_folder(path):
            return [read_hf_folder(path)]
        subs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        runs = [p for p in subs if is_run_folder(p)]
        if runs and format in ("auto", "hf", "llamafactory", "sweep"):
            return [read_hf_folder(p) for p in runs]
        if format in ("auto", "tensorboard") and _event_files(path):
            return read_tensorboard(path)
        tables = sorted(
            p for p in path.iterdir() if p.suffix.lower() in (".csv", ".jsonl", ".parquet")
        )
        if tables and format in ("auto", "table", "wandb"):
            return [r for t in tables for r in read_path(t, format=format, columns=columns)]
        raise RunsFileError(
            f"{path}: no runs found (expected run folders with trainer_state.json, "
            "all_results.json, trainer_log.jsonl or run_meta.json, a sweep's runs/ folder, "
            "TensorBoard event files, or tables)."
        )
    name = path.name
    if name in ("trainer_state.json", "all_results.json", "run_meta.json") and format in (
        "auto",
        "hf",
        "sweep",
        "llamafactory",
    ):
        return [read_hf_folder(path.parent)]
    if name == "trainer_log.jsonl" and format in ("auto", "llamafactory"):
        return [read_hf_folder(path.parent, source="llamafactory")]
    if name.startswith("events.out.tfevents.") or format == "tensorboard":
        return read_tensorboard(path)
    if format == "wandb" or (
        format == "auto" and path.suffix.lower() == ".csv" and sniff_wandb_csv(path)
    ):
        return read_wandb_csv(path)
    if path.suffix.lower() in (".csv", ".jsonl", ".json", ".parquet", ".tsv"):
        return read_table_file(path, columns=columns)
    raise RunsFileError(
        f"{path}: unknown run file (expected a folder, trainer_state.json, all_results.json, "
        "trainer_log.jsonl, an event file, or a .csv/.jsonl/.json/.parquet table)."
    )
