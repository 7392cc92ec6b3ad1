"""Readers for event logs: TensorBoard event files and MLflow tracking servers.

TensorBoard: the Hugging Face ``TensorBoardCallback`` writes scalars to
``<output_dir>/runs/<date_host>/events.out.tfevents.*`` with tags ``train/<key>`` and
``eval/<key>`` at ``step = global_step``. Each folder holding event files is one run; when that
folder sits in a ``runs/`` folder, the run is named after the output folder above it. Files are
read with TensorBoard's ``EventAccumulator`` with ``size_guidance={"scalars": 0}`` (keep every
event: the default subsamples) and the value at the last step of each tag is taken.

MLflow (an optional extra): ``mlflow:<experiment>`` or ``mlflow:<experiment>@<tracking uri>``
reads every run of the experiment through ``MlflowClient``: the latest metric values (the HF
``MLflowCallback`` logs raw keys such as ``eval_test_loss``) and the run's params as metadata.
"""

from __future__ import annotations

import os
from pathlib import Path

from fits._runs import METADATA_FIELDS, RunRecord
from fits.exceptions import RunsFileError

__all__ = ["read_mlflow", "read_tensorboard"]


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


def read_mlflow(source: str) -> list[RunRecord]:
    """Read the runs of an MLflow experiment: ``mlflow:<experiment>[@<tracking uri>]``."""
    spec = source[len("mlflow:") :]
    experiment, _, uri = spec.partition("@")
    if not experiment:
        raise RunsFileError(
            f"{source}: name the experiment, as 'mlflow:<experiment>' or "
            "'mlflow:<experiment>@<tracking uri>'."
        )
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise RunsFileError(
            f"{source}: reading MLflow runs needs the optional `mlflow` package "
            "(pip install 'sft-tradeoff[mlflow]')."
        ) from None
    client = MlflowClient(tracking_uri=uri or os.environ.get("MLFLOW_TRACKING_URI"))
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise RunsFileError(f"{source}: MLflow has no experiment named {experiment!r}.")
    records = []
    for run in client.search_runs([exp.experiment_id]):
        name = run.data.tags.get("mlflow.runName") or run.info.run_id
        rec = RunRecord(run_id=str(name), source="mlflow", path=f"{source} (run {run.info.run_id})")
        rec.names = [str(name)]
        rec.metrics.update(run.data.metrics)
        params = {k: v for k, v in run.data.params.items() if k in METADATA_FIELDS}
        rec.meta.append(("MLflow params", params))
        records.append(rec)
    if not records:
        raise RunsFileError(f"{source}: the experiment has no runs.")
    return records
