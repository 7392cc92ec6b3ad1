"""Readers for event logs: TensorBoard event files and MLflow tracking servers.

TensorBoard: the Hugging Face ``TensorBoardCallback`` writes scalars to
``<output_dir>/runs/<date_host>/events.out.tfevents.*`` with tags ``train/<key>`` and
``eval/<key>`` at ``step = global_step``. Each folder holding event files is one run; when that
folder sits in a ``runs/`` folder, the run is named after the output folder above it. Files are
read with TensorBoard's ``EventAccumulator`` with ``size_guidance={"scalars": 0}`` (keep every
event: the default subsamples) and the value at the last step of each tag is taken.

MLflow (an optional extra): ``mlflow:<experiment>`` or ``mlflow:<experiment>@<tracking uri>``
reads every run of the experiment through ``MlflowClient``: the latest metric values (the value at
the largest step; the HF ``MLflowCallback`` logs raw keys such as ``eval_test_loss`` at
``step = global_step``) and the run's params as metadata. See :func:`read_mlflow`. A bare local
file store (an ``mlruns/`` folder) reads every experiment in it (:func:`read_mlflow_store`).
Current MLflow refuses file stores unless ``MLFLOW_ALLOW_FILE_STORE=true``; for a read of a
local file store the loader sets it for the duration of the read (it never writes).
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from fits.exceptions import RunsFileError
from fits.runs._metadata import is_missing, to_float
from fits.runs._record import METADATA_FIELDS, RunRecord

__all__ = [
    "is_mlflow_file_store",
    "read_mlflow",
    "read_mlflow_store",
    "read_tensorboard",
    "split_mlflow_source",
]

_ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"


def is_mlflow_file_store(folder: Path) -> bool:
    """True when ``folder`` is an MLflow file store: ``<id>/meta.yaml`` experiment folders."""
    try:
        subs = [e for e in os.scandir(folder) if e.is_dir() and not e.name.startswith(".")]
    except OSError:
        return False
    for entry in subs[:100]:
        meta = Path(entry.path) / "meta.yaml"
        if meta.is_file():
            try:
                text = meta.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if "experiment_id:" in text and "artifact_location:" in text:
                return True
    return False


@contextlib.contextmanager
def _file_store_allowed(store: Path | None) -> Iterator[None]:
    """Set ``MLFLOW_ALLOW_FILE_STORE=true`` while reading a local file store (a folder)."""
    if store is None or not store.is_dir() or os.environ.get(_ALLOW_FILE_STORE) is not None:
        yield
        return
    os.environ[_ALLOW_FILE_STORE] = "true"
    try:
        yield
    finally:
        os.environ.pop(_ALLOW_FILE_STORE, None)


def read_mlflow_store(folder: Path) -> list[RunRecord]:
    """Read every active experiment with runs of a local MLflow file store (``mlruns/``)."""
    folder = Path(folder).resolve()
    try:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise RunsFileError(
            f"{folder}: reading an MLflow store needs the optional `mlflow` package "
            "(pip install 'sft-tradeoff[mlflow]')."
        ) from None
    uri = folder.as_uri()
    with _file_store_allowed(folder):
        try:
            names = [e.name for e in MlflowClient(tracking_uri=uri).search_experiments()]
        except MlflowException as exc:
            raise RunsFileError(
                f"{folder}: MLflow cannot read this file store ({exc.message}); "
                f"set {_ALLOW_FILE_STORE}=true if your MLflow refuses file stores."
            ) from None
    records: list[RunRecord] = []
    for name in sorted(names):
        try:
            records.extend(read_mlflow(f"{_MLFLOW_PREFIX}{name}@{uri}"))
        except RunsFileError as exc:
            if "has no runs" not in str(exc):
                raise
    if not records:
        raise RunsFileError(f"{folder}: the MLflow store has no runs (experiments: {names}).")
    return records


def read_tensorboard(path: Path) -> list[RunRecord]:
    """Read every run found under ``path`` (a logdir or one event file)."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:  # pragma: no cover - tensorboard is a dependency of the dev extra
        raise RunsFileError(
            f"{path}: reading TensorBoard files needs the `tensorboard` package "
            "(pip install 'sft-tradeoff[tensorboard]')."
        ) from None
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.rglob("events.out.tfevents.*"))
    if not files:
        raise RunsFileError(f"{path}: no TensorBoard event files (events.out.tfevents.*).")
    folders = sorted({f.parent for f in files})
    records = []
    for folder in folders:
        target = str(path) if path.is_file() else str(folder)
        acc = EventAccumulator(target, size_guidance={"scalars": 0})
        try:
            acc.Reload()
        except Exception as exc:  # corrupt records raise DataLossError and others
            raise RunsFileError(
                f"{target}: not a readable TensorBoard event file ({exc})."
            ) from None
        tags = acc.Tags().get("scalars", [])
        if not tags:
            continue
        run_dir = folder.parent.parent if folder.parent.name == "runs" else folder
        rec = RunRecord(run_id=run_dir.name, source="tensorboard", path=target)
        rec.names = [p.name for p in (folder, *folder.parents) if p.name]
        for tag in tags:
            events = acc.Scalars(tag)
            if events:
                last = max(events, key=lambda e: (e.step, e.wall_time))
                rec.metrics[tag] = float(last.value)
                if tag in ("train/global_step",):
                    rec.fallback["steps"] = int(last.value)
        records.append(rec)
    if not records:
        raise RunsFileError(f"{path}: the event files hold no scalar values.")
    return records


_MLFLOW_PREFIX = "mlflow:"
_URI_START = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:|[/.]|databricks$")
_PAGE_SIZE = 1000  # MLflow's largest page of search_runs
_HF_FALLBACKS = {"learning_rate": "lr", "_name_or_path": "base_model"}
_MAX_NAMES = 10


def split_mlflow_source(source: str) -> tuple[str, str | None]:
    """Split ``mlflow:<experiment>[@<tracking uri>]`` into the experiment and the URI.

    Experiment names may contain ``@`` (Databricks names are paths such as
    ``/Users/me@corp.com/sft``), so the URI starts at the first ``@`` followed by something that
    is a tracking URI: a scheme (``file:``, ``sqlite:``, ``http(s):``, ``databricks://``...), the
    word ``databricks``, a path starting with ``/`` or ``.``, or an existing local path.

    Returns
    -------
    experiment : str
    uri : str or None
        None when the source names no URI (MLflow's default, ``MLFLOW_TRACKING_URI``, applies).
    """
    spec = source[len(_MLFLOW_PREFIX) :] if source.startswith(_MLFLOW_PREFIX) else source
    for i, char in enumerate(spec):
        if char != "@":
            continue
        rest = spec[i + 1 :]
        if not rest:
            return spec[:i], None
        if _URI_START.match(rest) or Path(rest).exists():
            return spec[:i], rest
    return spec, None


def read_mlflow(source: str) -> list[RunRecord]:
    """Read the runs of an MLflow experiment: ``mlflow:<experiment>[@<tracking uri>]``.

    Each run becomes one record named after its run name (``mlflow.runName``). Its metrics are
    the latest values MLflow keeps, i.e. the value at the largest step of each key, so
    ``eval_test_loss`` is the last evaluation, not an average over the run; the run-average
    ``train_loss`` the HF ``MLflowCallback`` logs at the end is mapped to ``train_loss_avg``.
    Params named like runs-table metadata (``difficulty``, ``n``, ``seed``, ...) are metadata; a
    ``difficulty`` param that is not a number is the difficulty label, and a param ``"None"`` is
    missing. The HF callback's params fill ``lr`` (``learning_rate``), ``base_model``
    (``_name_or_path``) and ``epochs`` (``num_train_epochs``, only when ``max_steps`` is not set)
    where nothing else gives them; ``steps`` falls back to the largest metric step (the
    callback logs at ``step = global_step``).

    Parameters
    ----------
    source : str
        ``mlflow:<experiment>`` (the tracking URI from ``mlflow.set_tracking_uri`` or
        ``MLFLOW_TRACKING_URI``) or ``mlflow:<experiment>@<tracking uri>``; see
        :func:`split_mlflow_source`.

    Returns
    -------
    list of RunRecord

    Raises
    ------
    fits.exceptions.RunsFileError
        mlflow is not installed, the local tracking store does not exist (it is never created),
        MLflow cannot read the store, the experiment does not exist or has no runs.

    Warns
    -----
    UserWarning
        A run did not finish (status RUNNING, FAILED or KILLED), or its last evaluation came
        before its last training step: its metrics may not be the final model's.
    """
    experiment, uri = split_mlflow_source(source)
    if not experiment:
        raise RunsFileError(
            f"{source}: name the experiment, as 'mlflow:<experiment>' or "
            "'mlflow:<experiment>@<tracking uri>'."
        )
    try:
        import mlflow
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise RunsFileError(
            f"{source}: reading MLflow runs needs the optional `mlflow` package "
            "(pip install 'sft-tradeoff[mlflow]')."
        ) from None
    tracking_uri = uri or mlflow.get_tracking_uri()
    store = _local_store_path(tracking_uri)
    if store is not None and not store.exists():
        raise RunsFileError(
            f"{source}: the MLflow tracking store {store} does not exist (tracking URI "
            f"{tracking_uri!r}); name an existing one as 'mlflow:<experiment>@<tracking uri>' or "
            "set MLFLOW_TRACKING_URI."
        )
    with _file_store_allowed(store):
        runs, exp_name = _experiment_runs(source, experiment, tracking_uri, MlflowClient)
    records = [_run_record(run, source) for run in runs]
    if not records:
        raise RunsFileError(f"{source}: the experiment {exp_name!r} has no runs.")
    return records


def _experiment_runs(
    source: str, experiment: str, tracking_uri: str, client_class: Any
) -> tuple[list[Any], str]:
    from mlflow.exceptions import MlflowException

    try:
        client = client_class(tracking_uri=tracking_uri)
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            names = [e.name for e in client.search_experiments(max_results=_MAX_NAMES + 1)]
            shown = ", ".join(repr(n) for n in names[:_MAX_NAMES])
            more = ", ..." if len(names) > _MAX_NAMES else ""
            hint = (
                "; an '@' starts the tracking URI only where a URI or an existing path follows it"
                if "@" in experiment
                else ""
            )
            raise RunsFileError(
                f"{source}: MLflow at {tracking_uri!r} has no experiment named {experiment!r} "
                f"(experiments there: {shown or 'none'}{more}{hint})."
            )
        if exp.lifecycle_stage == "deleted":
            raise RunsFileError(
                f"{source}: the MLflow experiment {experiment!r} is deleted; restore it first."
            )
        runs = _all_runs(client, exp.experiment_id)
    except MlflowException as exc:
        hint = (
            f"; set {_ALLOW_FILE_STORE}=true to let MLflow read a file store"
            if _ALLOW_FILE_STORE in str(exc.message)
            else ""
        )
        raise RunsFileError(
            f"{source}: MLflow cannot read the tracking store {tracking_uri!r} "
            f"({exc.message}){hint}."
        ) from None
    return runs, experiment


def _local_store_path(uri: str) -> Path | None:
    """The file or folder of a local tracking store (file store or SQLite), else None."""
    if uri == "databricks":
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(url2pathname(parsed.path))
    if parsed.scheme == "sqlite":
        path = uri[len("sqlite:///") :] if uri.startswith("sqlite:///") else ""
        path = path.split("?", 1)[0]
        return Path(path) if path not in ("", ":memory:") else None
    if len(parsed.scheme) <= 1:  # a plain path (or a Windows drive letter)
        return Path(uri)
    return None


def _all_runs(client: Any, experiment_id: str) -> list[Any]:
    """Every active run of the experiment, following MLflow's pages of results."""
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            max_results=_PAGE_SIZE,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _run_record(run: Any, source: str) -> RunRecord:
    """One MLflow run as a :class:`RunRecord` (metrics, params as metadata, fallbacks)."""
    info, data = run.info, run.data
    name = str(info.run_name or data.tags.get("mlflow.runName") or info.run_id)
    path = f"{source} (run {info.run_id})"
    rec = RunRecord(run_id=name, source="mlflow", path=path)
    rec.names = [name]
    rec.metrics.update(data.metrics)
    params = {k: v for k, v in data.params.items() if k in METADATA_FIELDS and v != "None"}
    label = params.get("difficulty")
    if label is not None and to_float(label) is None:  # params are text: "hard" is a label
        del params["difficulty"]
        rec.meta.append(("MLflow param `difficulty`", {"difficulty_label": label}))
    rec.meta.append(("MLflow params", params))
    for param, field_ in _HF_FALLBACKS.items():
        if not is_missing(data.params.get(param)) and data.params[param] != "None":
            rec.fallback[field_] = data.params[param]
    max_steps = to_float(data.params.get("max_steps"))
    if data.params.get("num_train_epochs") is not None and (max_steps is None or max_steps <= 0):
        rec.fallback["epochs"] = data.params["num_train_epochs"]
    # MLflow's system metrics (system/cpu_utilization_percentage, ...) count samples, not steps
    steps = {m.key: int(m.step) for m in data.to_proto().metrics if not m.key.startswith("system/")}
    last_step = max(steps.values(), default=0)
    if last_step > 0:
        rec.values["global_step"] = last_step
        rec.fallback["steps"] = last_step
    eval_steps = [s for k, s in steps.items() if k.startswith("eval_") and k.endswith("_loss")]
    status = str(info.status)
    if status != "FINISHED":
        warnings.warn(
            f"{path}: run {name!r} has status {status}; its metrics may not be the final model's.",
            UserWarning,
            stacklevel=4,
        )
    elif eval_steps and max(eval_steps) < last_step:
        warnings.warn(
            f"{path}: the last evaluation is at step {max(eval_steps)} but training ended at "
            f"step {last_step}; its eval metrics are not the final model's.",
            UserWarning,
            stacklevel=4,
        )
    return rec
