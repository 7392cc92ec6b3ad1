"""Readers for Hugging Face-style run folders: sweeps, Trainer/TRL output folders, LlamaFactory.

A run folder may hold ``trainer_state.json`` (``log_history``), ``all_results.json``,
``checkpoint-*`` folders, LlamaFactory's ``trainer_log.jsonl``, the sweep sidecar
``run_meta.json``, ``config.json`` / ``adapter_config.json`` and the weight statistics of
:mod:`measurement` (``weight_stats.parquet``). :func:`read_path` also dispatches files and folders
of other formats to their readers.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fits.exceptions import RunsFileError
from fits.runs._events import is_mlflow_file_store, read_mlflow_store, read_tensorboard
from fits.runs._record import RunRecord, smoothed_logged_loss
from fits.runs._tables import read_table_file, read_wandb_csv, sniff_wandb_csv
from measurement import checkpoint_folders
from pacbound.support import read_jsonl_records

__all__ = [
    "find_run_folders",
    "is_run_folder",
    "read_hf_folder",
    "read_json",
    "read_llamafactory_log",
    "read_path",
]

LFS_POINTER = "version https://git-lfs.github.com/spec/v1"
"""How a Git LFS pointer file (left in place of the real file by a clone without LFS) starts."""

_RUN_FILES = ("trainer_state.json", "all_results.json", "trainer_log.jsonl", "run_meta.json")
"""Files that make a folder a run folder (lm-evaluation-harness results only add metrics)."""


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file; a malformed one raises :class:`RunsFileError` naming it."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise RunsFileError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if text.startswith(LFS_POINTER):
            raise RunsFileError(
                f"{path}: this is a Git LFS pointer, not the file; run `git lfs pull`."
            ) from None
        raise RunsFileError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from None


_YAML_KEY = re.compile(r"[A-Za-z_][\w.-]*")


def read_simple_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The top-level scalar ``key: value`` pairs of a flat YAML file such as LlamaFactory's
    ``training_args.yaml`` (numbers as numbers, quotes stripped; nested blocks, lists and
    comments skipped). A full YAML parser is not needed for these files and would cost a
    millisecond per run."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise RunsFileError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    out: dict[str, Any] = {}
    for line in text.splitlines():
        if not line or line[0] in " \t#-":
            continue
        key, colon, raw = line.partition(":")
        if not colon or not _YAML_KEY.fullmatch(key):
            continue
        raw = raw.strip()
        if " #" in raw:
            raw = raw.split(" #", 1)[0].rstrip()
        if not raw or raw[0] in "[{|>&*!":
            continue
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            out[key] = raw[1:-1]
            continue
        try:
            out[key] = int(raw)
        except ValueError:
            try:
                out[key] = float(raw)
            except ValueError:
                out[key] = {"true": True, "false": False, "null": None, "~": None}.get(raw, raw)
    return out


def _checkpoints(folder: Path) -> list[Path]:
    return checkpoint_folders(folder)


def is_run_folder(folder: Path) -> bool:
    """True when ``folder`` looks like one run's output folder."""
    root = os.fspath(folder)
    isfile, join = os.path.isfile, os.path.join
    return any(isfile(join(root, name)) for name in _RUN_FILES) or bool(_checkpoints(folder))


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


def _log_history_metrics(
    path: str | os.PathLike[str], state: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Final metrics from a TrainerState ``log_history``: last value of each key.

    ``extra`` holds ``global_step``, ``max_steps``, ``num_train_epochs``, the step of the last
    evaluation when it is not the final step (``eval_step``), and the logged training losses
    as ``loss_steps`` / ``loss_values`` (the ``loss`` of each training-log entry).
    """
    if not isinstance(state, dict):
        raise RunsFileError(
            f"{path}: expected a JSON object (a TrainerState); got {type(state).__name__}."
        )
    history = state.get("log_history")
    if not isinstance(history, list):
        raise RunsFileError(f"{path}: field `log_history` is missing or not a list.")
    metrics: dict[str, Any] = {}
    if not set(map(type, history)) <= {dict}:
        i, entry = next((i, e) for i, e in enumerate(history) if type(e) is not dict)
        raise RunsFileError(f"{path}: field `log_history[{i}]` must be an object; got {entry!r}.")
    logged = [e for e in history if "loss" in e]
    loss_steps = [e.get("step", k) for k, e in enumerate(logged)]
    loss_values = [e["loss"] for e in logged]
    any(map(metrics.update, history))  # the last value of each key; update returns None
    metrics.pop("step", None)
    metrics.pop("epoch", None)
    eval_keys = [k for k in metrics if k.startswith("eval_") and k.endswith("_loss")]
    eval_step = None
    if eval_keys:
        for entry in reversed(history):
            if any(k in entry for k in eval_keys):
                eval_step = entry.get("step")
                break
    extra: dict[str, Any] = {"loss_steps": loss_steps, "loss_values": loss_values}
    global_step = state.get("global_step")
    if global_step is not None:
        extra["global_step"] = global_step
    if state.get("max_steps") is not None:
        extra["max_steps"] = state["max_steps"]
    if state.get("num_train_epochs") is not None:
        extra["num_train_epochs"] = state["num_train_epochs"]
    if eval_step is not None and global_step is not None and eval_step != global_step:
        extra["eval_step"] = eval_step
    return metrics, extra


def read_llamafactory_log(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Final metrics from LlamaFactory's ``trainer_log.jsonl`` (keys with None are absent).

    Lines repeated by several processes (same ``current_steps``) count once, the last one
    winning. The logged training losses come back as ``_loss_steps`` / ``_loss_values``, the
    last ``current_steps`` / ``total_steps`` as ``_steps`` / ``_total_steps``.
    """
    metrics: dict[str, Any] = {}
    try:
        entries = read_jsonl_records(path, error=RunsFileError)
    except OSError as exc:
        raise RunsFileError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    losses: dict[Any, Any] = {}
    for entry in entries:
        for key in ("loss", "eval_loss", "predict_loss", "accuracy", "total_tokens"):
            if entry.get(key) is not None:
                metrics[key] = entry[key]
        step = entry.get("current_steps")
        if step is not None:
            metrics["_steps"] = step
            if entry.get("loss") is not None:
                losses[step] = entry["loss"]
        if entry.get("total_steps") is not None:
            metrics["_total_steps"] = entry["total_steps"]
    metrics["_loss_steps"] = list(losses)
    metrics["_loss_values"] = list(losses.values())
    return metrics


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=4)


def read_hf_folder(
    folder: Path,
    *,
    source: str | None = None,
    run_id: str | None = None,
    listing: set[str] | None = None,
) -> RunRecord:
    """Read one run folder (Trainer/TRL, LlamaFactory or a sweep run) into a :class:`RunRecord`.

    The run's own root files come first; a folder with no ``trainer_state.json`` of its own
    uses the one of its last ``checkpoint-*`` folder (and says so in a warning). LlamaFactory's
    ``trainer_log.jsonl`` repeats the state's ``log_history``, so it is read only when the
    folder has no ``trainer_state.json`` of its own. Besides the
    last value of every logged key, the record holds ``train_loss_logged``: the logged
    training loss smoothed over the last logging window
    (:func:`~fits.runs._record.smoothed_logged_loss`), and ``train_loss_last``, the last
    logged value. A run that stopped before its planned step count (``global_step <
    max_steps``, LlamaFactory ``current_steps < total_steps``) gets a warning. ``listing``, the
    folder's entry names when the caller has them already, saves a directory read.
    """
    folder = Path(folder)
    root = os.fspath(folder)
    try:
        names = listing if listing is not None else {e.name for e in os.scandir(root)}
    except OSError as exc:
        raise RunsFileError(f"{folder}: cannot be read ({exc.strerror or exc}).") from None
    join = os.path.join
    ckpt_list: list[str] | None = None

    def ckpts() -> list[str]:
        """The last ``checkpoint-<step>`` folder (by step), as a one-element list or []."""
        nonlocal ckpt_list
        if ckpt_list is None:
            steps = [int(n[11:]) for n in names if n.startswith("checkpoint-") and n[11:].isdigit()]
            ckpt_list = [join(root, f"checkpoint-{max(steps)}")] if steps else []
        return ckpt_list

    state_file: str | None = join(root, "trainer_state.json")
    if "trainer_state.json" not in names:
        last = ckpts()[-1] if ckpts() else None
        if last is not None and os.path.isfile(join(last, "trainer_state.json")):
            state_file = join(last, "trainer_state.json")
            _warn(
                f"{folder}: no trainer_state.json of its own; using the last checkpoint's "
                f"({os.path.basename(last)})."
            )
        else:
            state_file = None
    has_meta = "run_meta.json" in names
    has_lf = "trainer_log.jsonl" in names
    if source is None:
        source = "sweep" if has_meta else "llamafactory" if has_lf else "hf"
    rec = RunRecord(run_id=run_id or folder.name, source=source, path=root)
    rec.names = [p for p in reversed(folder.parts) if p and p != folder.anchor]
    extra: dict[str, Any] = {}
    lf_losses: tuple[list[Any], list[Any]] = ([], [])
    # LlamaFactory's log repeats the root trainer_state.json's log_history; read it only when
    # that state is missing or a checkpoint's (the log is then the more recent record)
    if has_lf and "trainer_state.json" not in names:
        lf = read_llamafactory_log(join(root, "trainer_log.jsonl"))
        steps = lf.pop("_steps", None)
        total = lf.pop("_total_steps", None)
        lf_losses = (lf.pop("_loss_steps"), lf.pop("_loss_values"))
        if steps is not None:
            extra["global_step"] = steps
        if total is not None:
            extra["max_steps"] = total
        rec.metrics.update(lf)
    state_losses: tuple[list[Any], list[Any]] = ([], [])
    if state_file is not None:
        state_metrics, state_extra = _log_history_metrics(state_file, read_json(state_file))
        state_losses = (state_extra.pop("loss_steps"), state_extra.pop("loss_values"))
        rec.metrics.update(state_metrics)
        extra.update(state_extra)
    if "all_results.json" in names:
        results_file = join(root, "all_results.json")
        results = read_json(results_file)
        if not isinstance(results, dict):
            raise RunsFileError(f"{results_file}: expected a JSON object of metrics.")
        rec.metrics.update(results)
        extra.pop("eval_step", None)
    if any(n.startswith(("results", "lm_eval", "lm-eval")) for n in names):
        for path in _lm_eval_files(root, names):
            rec.metrics.update(read_lm_eval_results(path))
    if not rec.metrics:
        raise RunsFileError(
            f"{folder}: no metrics found (looked for trainer_state.json, all_results.json, "
            "trainer_log.jsonl and checkpoint-*/trainer_state.json)."
        )
    loss_steps, loss_values = state_losses if state_losses[1] else lf_losses
    if loss_values:
        smoothed = smoothed_logged_loss(loss_steps, loss_values)
        if smoothed is not None:
            rec.values["train_loss_logged"] = smoothed
            rec.values["train_loss_last"] = loss_values[-1]
    if "eval_step" in extra:
        _warn(
            f"{state_file}: the last evaluation is at step {extra['eval_step']} but training "
            f"ended at step {extra['global_step']}; its eval metrics are not the final model's."
        )
    gs, ms = extra.get("global_step"), extra.get("max_steps")
    if isinstance(gs, (int, float)) and isinstance(ms, (int, float)) and 0 < gs < ms:
        _warn(
            f"{folder}: run {rec.run_id!r} stopped at step {gs:g} of {ms:g} (unfinished: "
            f"early stopping or a crash); its metrics are those of step {gs:g}."
        )
    if "global_step" in extra:
        rec.values["global_step"] = extra["global_step"]
        rec.fallback["steps"] = extra["global_step"]
    if "num_train_epochs" in extra:
        rec.fallback["epochs"] = extra["num_train_epochs"]
    if "train_samples" in rec.metrics:
        rec.values["train_samples"] = rec.metrics["train_samples"]
        rec.fallback["n"] = rec.metrics["train_samples"]
        rec.fallback_source["n"] = "train_samples (all_results.json)"
    if "training_args.yaml" in names:
        args = read_simple_yaml(join(root, "training_args.yaml"))
        if args.get("max_samples") is not None and "n" not in rec.fallback:
            rec.fallback["n"] = args["max_samples"]
            rec.fallback_source["n"] = "max_samples (training_args.yaml)"
        if args.get("learning_rate") is not None:
            rec.fallback["lr"] = args["learning_rate"]
            rec.fallback_source["lr"] = "learning_rate (training_args.yaml)"
    if has_meta:
        meta_file = join(root, "run_meta.json")
        meta = read_json(meta_file)
        if not isinstance(meta, dict):
            raise RunsFileError(f"{meta_file}: expected a JSON object of run metadata.")
        meta = _flatten(meta)
        if meta.get("run_id") is not None:
            rec.run_id = str(meta["run_id"])
        meta.pop("run_id", None)
        rec.meta.append((meta_file, meta))
    # the run's own root config files win; a checkpoint's are read only when the root has none
    own_config = "adapter_config.json" in names or "config.json" in names
    for cfg_name, key in (
        ("adapter_config.json", "base_model_name_or_path"),
        ("config.json", "_name_or_path"),
    ):
        if cfg_name in names:
            cfg: str | None = join(root, cfg_name)
        elif not own_config and ckpts() and os.path.isfile(join(ckpts()[-1], cfg_name)):
            cfg = join(ckpts()[-1], cfg_name)
        else:
            cfg = None
        if cfg is not None:
            conf = read_json(cfg)
            if isinstance(conf, dict) and cfg_name == "adapter_config.json":
                at_root = cfg_name in names
                check_adapter_config(
                    cfg, conf, has_weights="adapter_model.safetensors" in names if at_root else None
                )
            if isinstance(conf, dict):
                if conf.get(key):
                    rec.fallback.setdefault("base_model", conf[key])
                if conf.get("transformers_version"):
                    rec.values.setdefault("transformers_version", conf["transformers_version"])
    if "weight_stats.parquet" in names:
        rec.values["sq_dist"] = _sq_dist(folder / "weight_stats.parquet")
    if "adapter_stats.parquet" in names:  # a LoRA run's own parameters against their init
        rec.values["adapter_sq_dist"] = _sq_dist(folder / "adapter_stats.parquet")
    return rec


def _safetensors_names(path: str) -> list[str] | None:
    """Tensor names from a ``.safetensors`` header (8-byte length + JSON), None if unreadable;
    raises naming a Git LFS pointer."""
    try:
        with open(path, "rb") as fh:
            start = fh.read(64)
            if start.startswith(LFS_POINTER.encode()):
                lfs = True
            else:
                lfs = False
                size = int.from_bytes(start[:8], "little")
                ok = len(start) >= 8 and size <= 100_000_000
                raw = start[8 : 8 + size] + fh.read(max(0, size - len(start) + 8)) if ok else b""
    except OSError:
        return None
    if lfs:
        raise RunsFileError(
            f"{path}: this is a Git LFS pointer, not the weights; run `git lfs pull`."
        )
    try:
        header = json.loads(raw) if raw else None
    except ValueError:
        return None
    return [k for k in header if k != "__metadata__"] if isinstance(header, dict) else None


def check_adapter_config(
    path: str, conf: dict[str, Any], *, has_weights: bool | None = None
) -> None:
    """Warn when ``adapter_config.json`` is not a PEFT config (no ``peft_type``), when its
    ``use_dora`` disagrees with the adapter weights beside it (DoRA's
    ``lora_magnitude_vector`` tensors present or absent), or when those weights are a Git LFS
    pointer. ``has_weights`` says whether ``adapter_model.safetensors`` exists, when known."""
    if "peft_type" not in conf:
        _warn(
            f"{path}: not a PEFT adapter config (no `peft_type`; keys: "
            f"{', '.join(sorted(map(str, conf))[:8])}); it is ignored as an adapter."
        )
        return
    if has_weights is False:
        return
    weights = os.path.join(os.path.dirname(path), "adapter_model.safetensors")
    if has_weights is None and not os.path.isfile(weights):
        return
    try:
        names = _safetensors_names(weights)
    except RunsFileError as exc:
        _warn(str(exc))
        return
    if names is None:
        return
    has_magnitude = any("lora_magnitude_vector" in n for n in names)
    dora = bool(conf.get("use_dora", False))
    if has_magnitude != dora:
        what = "has" if has_magnitude else "has no"
        _warn(
            f"{path}: `use_dora` is {str(dora).lower()} but {weights} {what} DoRA magnitude "
            "vectors (`lora_magnitude_vector`); the config and the weights disagree."
        )


_LM_EVAL_METRICS = ("acc", "exact_match", "acc_norm", "f1", "mc2", "em")


def _lm_eval_files(root: str, names: set[str]) -> list[str]:
    """lm-evaluation-harness ``results*.json`` files in the run folder or one level below
    (``--output_path`` writes ``<path>/<model name>/results_<timestamp>.json``)."""
    found = [
        os.path.join(root, n) for n in names if n.startswith("results") and n.endswith(".json")
    ]
    for n in names:
        if n.startswith(("lm_eval", "lm-eval", "eval_results_lm")) or n in ("lm_eval_results",):
            sub = os.path.join(root, n)
            for dirpath, _, files in os.walk(sub):
                found += [
                    os.path.join(dirpath, f)
                    for f in files
                    if f.startswith("results") and f.endswith(".json")
                ]
    return sorted(found)


def read_lm_eval_results(path: str) -> dict[str, float]:
    """Per-task accuracies of an lm-evaluation-harness results file, as ``eval_<task>_accuracy``.

    The file holds ``{"results": {task: {"acc,none": ..., "acc_stderr,none": ..., ...}},
    "config": ..., "versions": ..., ...}`` (older versions: ``"acc"`` without the filter
    suffix). Each task's first metric among ``acc``, ``exact_match``, ``acc_norm``, ``f1``,
    ``mc2``, ``em`` (the ``none`` filter, else the first filter by name) is its accuracy; a task
    named like the test slice is then the run's ``test_acc``
    (:func:`~fits.runs.metrics_to_columns`).
    """
    data = read_json(path)
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict):
        raise RunsFileError(
            f"{path}: field `results` is missing; not an lm-evaluation-harness file."
        )
    out: dict[str, float] = {}
    for task, metrics in results.items():
        if not isinstance(metrics, dict):
            continue
        for metric in _LM_EVAL_METRICS:
            keys = [k for k in metrics if k == metric or k.startswith(metric + ",")]
            keys.sort(key=lambda k: (k != f"{metric},none", k != metric, k))
            value = next((metrics[k] for k in keys if isinstance(metrics[k], (int, float))), None)
            if value is not None:
                out[f"eval_{task}_accuracy"] = float(value)
                break
    return out


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


_MAX_DEPTH = 6


def find_run_folders(root: Path, *, max_depth: int = _MAX_DEPTH) -> list[Path]:
    """Run folders below ``root`` (not ``root`` itself), at any depth up to ``max_depth``.

    The walk does not enter a run folder (its ``checkpoint-*`` folders belong to it), hidden
    folders, or ``checkpoint-*`` folders of a parent that is not a run. Sorted by path.
    """
    return [p for p, _ in _find_with_listing(root, max_depth=max_depth)]


def _is_run_listing(folder: str, names: set[str]) -> bool:
    """:func:`is_run_folder` from the folder's entry names (one ``stat`` at most)."""
    if any(n in names for n in _RUN_FILES):
        return True
    ckpts = [n for n in names if n.startswith("checkpoint-") and n[11:].isdigit()]
    return any(os.path.isdir(os.path.join(folder, n)) for n in ckpts)


def _find_with_listing(root: Path, *, max_depth: int) -> list[tuple[Path, set[str]]]:
    """:func:`find_run_folders` with each run folder's listing (one ``scandir`` per folder,
    reused by :func:`read_hf_folder`)."""
    found: list[tuple[str, set[str]]] = []
    stack = [(os.fspath(root), 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            subs = [e for e in os.scandir(folder) if not e.name.startswith(".") and e.is_dir()]
        except OSError:
            continue
        for entry in subs:
            try:
                names = {e.name for e in os.scandir(entry.path)}
            except OSError:
                continue
            if _is_run_listing(entry.path, names):
                found.append((entry.path, names))
            elif depth + 1 < max_depth and not entry.name.startswith("checkpoint-"):
                stack.append((entry.path, depth + 1))
    found.sort(key=lambda x: x[0])
    return [(Path(p), names) for p, names in found]


def _run_ids(root: Path, runs: list[Path]) -> list[tuple[Path, str]]:
    """Each run folder with its id: its name, or its path below ``root`` (``a/b/seed=0``)
    when two run folders share a name."""
    names = [p.name for p in runs]
    if len(set(names)) == len(names):
        return list(zip(runs, names, strict=True))
    return [(p, p.relative_to(root).as_posix()) for p in runs]


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
        if format == "auto" and is_mlflow_file_store(path):
            return read_mlflow_store(path)
        listed = _find_with_listing(path, max_depth=_MAX_DEPTH)
        if listed and format in ("auto", "hf", "llamafactory", "sweep"):
            ids = _run_ids(path, [p for p, _ in listed])
            return [
                read_hf_folder(p, run_id=rid, listing=names)
                for (p, rid), (_, names) in zip(ids, listed, strict=True)
            ]
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
        format == "auto" and path.suffix.lower() == ".csv" and sniff_wandb_csv(path) is not None
    ):
        return read_wandb_csv(path)
    if path.suffix.lower() in (".csv", ".jsonl", ".json", ".parquet", ".tsv"):
        return read_table_file(path, columns=columns)
    raise RunsFileError(
        f"{path}: unknown run file (expected a folder, trainer_state.json, all_results.json, "
        "trainer_log.jsonl, an event file, or a .csv/.jsonl/.json/.parquet table)."
    )
