"""Per-example losses of a checkpoint on a dataset: completion-only NLL, tokens, correctness.

One row per (model, example): ``example_id, model, n_tokens, nll_sum, nll_mean``, plus
``bounded_loss`` (the clipped, scaled NLL in [0, 1], when ``p_min`` is given),
``greedy_match`` (every completion token is the model's argmax), ``truncated``, and with an
answer checker ``correct`` and ``generated`` (greedy decoding, batched). Columns named in
``carry`` (a difficulty score, a bin, a split) are copied from the dataset.

    nll_sum_i  = -sum_{t in completion_i} log p(y_t | prompt_i, y_<t)
    nll_mean_i = nll_sum_i / n_tokens_i

The scoring engine is :mod:`measurement._scoring` (sorted, deterministic batches; LM head on
gathered hidden states; float64 accumulation).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from measurement._answers import AnswerChecker
from measurement._datasets import ExampleSet, as_example_set, write_table
from measurement._generate import generate_completions
from measurement._jobs import Journal, parameter_fingerprint, rows_digest
from measurement._lm import check_max_length, load_causal_lm, unwrap_causal_lm
from measurement._scoring import batch_examples, score_batches
from measurement.exceptions import DatasetError
from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_positive_int, progress_bar

__all__ = ["ExampleLosses", "LossComparison", "compare_losses", "example_losses"]


@dataclass(frozen=True, eq=False)
class ExampleLosses:
    """Per-example losses of one model on one dataset.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per example: ``example_id, model, n_tokens, nll_sum, nll_mean,
        greedy_match, truncated`` (+ ``bounded_loss``, ``correct``, ``generated``, carried
        columns).
    model : str
        The label of the model (its path, or "base"/"finetuned").
    settings : dict
        How the losses were computed (dtype, device, batch size, method, p_min, checker).
    seconds : float
        Wall time of the scoring pass (generation excluded).
    """

    table: pd.DataFrame
    model: str
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = float("nan")

    @property
    def n_tokens(self) -> int:
        """Completion tokens scored."""
        return int(self.table["n_tokens"].sum())

    @property
    def token_nll(self) -> float:
        """Token-weighted mean NLL: sum of nll_sum over sum of n_tokens (nats per token)."""
        return float(self.table["nll_sum"].sum() / max(self.n_tokens, 1))

    @property
    def example_nll(self) -> float:
        """Mean over examples of the per-example mean NLL."""
        return float(self.table["nll_mean"].mean())

    @property
    def accuracy(self) -> float | None:
        """Share of correct examples (None without a checker)."""
        if "correct" not in self.table:
            return None
        return float(self.table["correct"].mean())

    @property
    def tokens_per_second(self) -> float:
        """Scoring throughput."""
        return self.n_tokens / self.seconds if self.seconds > 0 else float("nan")

    def __str__(self) -> str:
        lines = [
            f"Per-example losses of {self.model}: {len(self.table)} examples, "
            f"{self.n_tokens} completion tokens",
            f"  mean NLL per token     {self.token_nll:.4f} nats",
            f"  mean of example means  {self.example_nll:.4f} nats",
        ]
        if "bounded_loss" in self.table:
            lines.append(f"  bounded loss (mean)    {self.table['bounded_loss'].mean():.4f}")
        if self.accuracy is not None:
            lines.append(f"  accuracy               {self.accuracy:.4f}")
        lines.append(
            f"  {self.settings.get('device')} {self.settings.get('dtype')}, "
            f"method {self.settings.get('method')}, {self.tokens_per_second:,.0f} tokens/s"
        )
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        """The aggregate numbers as a JSON-safe dict."""
        out: dict[str, Any] = {
            "model": self.model,
            "n_examples": len(self.table),
            "n_tokens": self.n_tokens,
            "token_nll": self.token_nll,
            "example_nll": self.example_nll,
            "accuracy": self.accuracy,
            "seconds": self.seconds,
            "tokens_per_second": self.tokens_per_second,
            "settings": dict(self.settings),
        }
        if "bounded_loss" in self.table:
            out["bounded_loss"] = float(self.table["bounded_loss"].mean())
        return out

    def to_dict(self) -> dict[str, Any]:
        """Summary plus the rows (``records``), JSON-safe."""
        out = self.summary()
        out["records"] = self.table.to_dict(orient="records")
        return out

    def save(self, path: str | Path) -> Path:
        """Write :attr:`table` (format from the suffix: .parquet, .csv, .jsonl)."""
        return write_table(self.table, path)


def example_losses(
    model: Any,
    data: ExampleSet | str | Path,
    *,
    tokenizer: Any = None,
    adapter: str | Path | None = None,
    columns: Any = None,
    checker: AnswerChecker | None = None,
    batch_size: int = 8,
    max_batch_tokens: int | None = None,
    max_length: int | None = None,
    padding_side: str = "left",
    add_bos: bool = False,
    p_min: float | None = None,
    max_new_tokens: int = 64,
    method: str = "auto",
    dtype: str | torch.dtype | None = "auto",
    device: str | torch.device | None = "auto",
    carry: Sequence[str] = (),
    label: str | None = None,
    journal: str | Path | None = None,
    progress: bool = False,
) -> ExampleLosses:
    """Per-example completion-only losses of a model on a dataset.

    Parameters
    ----------
    model : path or model
        A model folder (loaded with :func:`~measurement._lm.load_causal_lm`, in ``dtype`` on
        ``device``; ``adapter`` applies a PEFT adapter) or an already loaded causal LM.
    data : ExampleSet or path
        The examples (a path is read with :func:`~measurement.load_examples`).
    tokenizer : tokenizer, optional
        Required when ``model`` is a loaded model.
    checker : AnswerChecker, optional
        Adds ``correct`` (greedy generation of ``max_new_tokens`` tokens) and ``generated``.
    batch_size, max_batch_tokens : int
        Batch limits (examples; padded tokens). The batches depend on lengths only.
    max_length : int, optional
        Longest model input; longer examples are left-truncated (flagged ``truncated``).
        Default: the model's ``max_position_embeddings`` when it has one.
    padding_side : {"left", "right"}
    add_bos : bool
        Put the BOS token before every prompt.
    p_min : float in (0, 1), optional
        Adds ``bounded_loss``: the per-token mean of -ln max(p, p_min) / ln(1/p_min).
    method : {"auto", "hidden", "logits"}
        See :func:`~measurement._scoring.score_batches`.
    carry : sequence of str
        Dataset columns copied into the output (difficulty score, bin, split).
    label : str, optional
        The ``model`` column; default the model path (or the class name).
    journal : path, optional
        A journal file: finished batches are recorded there, and a rerun with the same model,
        data and settings resumes. It is left in place (the caller removes it once the output
        is written, as ``tradeoff losses`` does).
    progress : bool
        Show a progress bar on stderr.
    """
    if isinstance(model, (str, Path)):
        label = label or str(model) + (f" + {adapter}" if adapter else "")
        lm, tok = load_causal_lm(model, adapter=adapter, dtype=dtype, device=device)
        tokenizer = tokenizer or tok
    else:
        lm = model
        label = label or type(unwrap_causal_lm(model)).__name__
        if tokenizer is None:
            raise InvalidParameterError("`tokenizer` must be given with a loaded model; got None.")
    examples = as_example_set(data, columns=columns, tokenizer=tokenizer)
    for col in carry:
        if col not in examples.table.columns:
            raise DatasetError(
                f"{examples.source}: column {col!r} is missing; the file has columns "
                f"{[str(c) for c in examples.table.columns]}."
            )
    batch_size = check_positive_int(batch_size, "batch_size")
    max_length = check_max_length(lm, max_length)
    batches = batch_examples(
        tokenizer,
        examples.prompts,
        examples.completions,
        source=examples.source,
        max_length=max_length,
        add_bos=add_bos,
        batch_size=batch_size,
        max_batch_tokens=max_batch_tokens,
        padding_side=padding_side,
    )
    param = next(unwrap_causal_lm(lm).parameters())
    settings: dict[str, Any] = {
        "dtype": str(param.dtype).removeprefix("torch."),
        "device": str(param.device),
        "batch_size": batch_size,
        "max_batch_tokens": max_batch_tokens,
        "max_length": max_length,
        "padding_side": padding_side,
        "add_bos": add_bos,
        "p_min": p_min,
        "checker": None if checker is None else checker.to_dict(),
    }
    book = None
    if journal is not None:
        book = Journal(journal, {
            "model": label,
            "weights": parameter_fingerprint(lm),  # the label alone ("finetuned") is no identity
            "data": _data_digest(batches),
            "rows": rows_digest(examples),
            **settings,
        })
    start = time.perf_counter()
    with progress_bar(f"scoring {Path(label).name}", len(examples), enabled=progress) as advance:
        scores = score_batches(
            lm,
            batches,
            p_min=p_min,
            method=method,
            on_batch=lambda k, _tokens: advance(k),
            journal=book,
        )
    seconds = time.perf_counter() - start
    settings["method"] = scores.method
    table = pd.DataFrame(
        {
            "example_id": examples.table["example_id"].to_numpy(),
            "model": label,
            "n_tokens": scores.n_tokens,
            "nll_sum": scores.nll_sum,
            "nll_mean": scores.nll_sum / scores.n_tokens,
            "greedy_match": scores.greedy,
            "truncated": np.array([e.truncated for e in batches.examples]),
        }
    )
    if scores.bounded_sum is not None:
        table["bounded_loss"] = scores.bounded_sum / scores.n_tokens
    if checker is not None:
        with progress_bar("generating", len(examples), enabled=progress) as advance:
            generated = generate_completions(
                lm,
                tokenizer,
                examples.prompts,
                max_new_tokens=max_new_tokens,
                batch_size=batch_size,
                add_bos=add_bos,
                max_length=max_length,
                on_batch=advance,
            )
        refs = checker.references(examples.completions, examples.answers)
        table["generated"] = [g[0] for g in generated]
        table["correct"] = [
            checker.is_correct(g[0], r) for g, r in zip(generated, refs, strict=True)
        ]
    for col in carry:
        table[col] = examples.table[col].to_numpy()
    if book is not None:
        book.close(remove=False)
    return ExampleLosses(table, label, settings, seconds)


def _data_digest(batches: Any) -> str:
    h = hashlib.sha256()
    for e in batches.examples:
        h.update(e.ids.tobytes())
        h.update(int(e.n_completion).to_bytes(8, "little"))
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class LossComparison:
    """Per-example losses of one or more models on one dataset, and the per-bin report.

    Attributes
    ----------
    results : tuple of ExampleLosses
        One per model, base first (labels ``base``/``finetuned`` when side by side).
    table : pandas.DataFrame
        Their rows stacked; the bin column (when there is one) is an ordered categorical.
    bin_column : str or None
        The bin column of :attr:`table` (``bin`` when a numeric score was cut in tertiles).
    report : LossReport or None
        Per-bin means with bootstrap intervals and the gap tables
        (:func:`measurement.loss_report`), when there is a bin column.
    """

    results: tuple[ExampleLosses, ...]
    table: pd.DataFrame
    bin_column: str | None = None
    report: Any = None

    def __str__(self) -> str:
        parts = [str(r) for r in self.results]
        if self.report is not None:
            parts.append(str(self.report))
        return "\n\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The models' summaries and the report, JSON-safe (the rows are in :attr:`table`)."""
        return {
            "models": [r.summary() for r in self.results],
            "bin_column": self.bin_column,
            "report": None if self.report is None else self.report.to_dict(),
        }

    def save(self, path: str | Path) -> Path:
        """Write :attr:`table` (format from the suffix: .parquet, .csv, .jsonl)."""
        return write_table(self.table, path)


def compare_losses(
    model: str | Path,
    data: ExampleSet | str | Path,
    *,
    adapter: str | Path | None = None,
    base: str | Path | None = None,
    with_base: bool = False,
    bins: str | None = None,
    split_column: str = "split",
    train_value: str = "train",
    trained_bin: str | None = None,
    carry: Sequence[str] = (),
    columns: Any = None,
    checker: AnswerChecker | None = None,
    max_new_tokens: int = 256,
    p_min: float | None = 1e-4,
    batch_size: int = 8,
    max_length: int | None = None,
    dtype: str | None = "auto",
    device: str | None = "auto",
    n_resamples: int = 2000,
    journal: str | Path | None = None,
    progress: bool = False,
) -> LossComparison:
    """Per-example losses of a checkpoint (beside its base, optionally) and the per-bin report.

    The examples keep their ``split`` column, any ``difficulty_*`` columns, the ``bins``
    column and ``carry``. A numeric ``bins`` column (a difficulty score) is cut into
    equal-count tertiles first (column ``bin``). With a bin column, :func:`loss_report` gives
    per-bin means with bootstrap intervals, the generalization gap (rows whose
    ``split_column`` is ``train_value`` against the rest) and, with ``trained_bin``, the
    extrapolation gap from the bin the fine-tune was trained on.

    Parameters
    ----------
    model : path
        The fine-tuned model folder, or the base when ``adapter`` is given.
    data : ExampleSet or path
        The examples.
    adapter : path, optional
        A PEFT LoRA adapter folder on top of ``model``.
    base : path, optional
        Also score this base model, side by side (labels ``base`` and ``finetuned``).
    with_base : bool
        With ``adapter``: also score ``model`` alone (the adapter disabled) as ``base``.
    bins : str, optional
        The bin column (labels, or a numeric score cut in tertiles).
    split_column, train_value : str
        The column that marks training rows, and its value on them.
    trained_bin : str, optional
        The bin the fine-tune was trained on (needs ``bins``).
    carry : sequence of str
        More dataset columns copied into the output.
    columns, checker, max_new_tokens, p_min, batch_size, max_length, dtype, device
        As in :func:`example_losses`.
    n_resamples : int
        Bootstrap resamples of the report's intervals.
    journal : path, optional
        Journal file stem: each model's finished batches go to ``<journal>.<model>.jsonl``, so
        a killed run resumes; they are removed once every model is scored.
    progress : bool
        Progress bars on stderr.
    """
    from measurement._aggregate import loss_report
    from measurement._bins import is_score_column, make_bins, ordered_bin_labels

    if trained_bin is not None and bins is None:
        raise InvalidParameterError(
            f"`trained_bin` needs `bins` (the bin column); got trained_bin={trained_bin!r}."
        )
    if with_base and adapter is None:
        raise InvalidParameterError("`with_base` needs `adapter`; got no adapter.")
    ft_model, tok = load_causal_lm(model, adapter=adapter, dtype=dtype, device=device)
    examples = as_example_set(data, columns=columns, tokenizer=tok)
    names = [str(c) for c in examples.table.columns]
    if bins is not None and bins not in names:
        raise InvalidParameterError(
            f"`bins` must be a column of {examples.source}; got {bins!r} (columns: {names})."
        )
    keep = [c for c in (bins, split_column) if c and c in names]
    keep += list(carry)
    keep += [c for c in names if c.startswith("difficulty_")]
    keep = list(dict.fromkeys(keep))
    bin_col = bins
    if bins is not None and is_score_column(examples.table[bins]):
        scores = pd.to_numeric(examples.table[bins])
        cut = make_bins(scores.to_numpy(float), column=bins)
        examples = examples.with_columns(bin=cut.assign(scores))
        keep.append("bin")
        bin_col = "bin"
    kw = dict(
        checker=checker,
        batch_size=batch_size,
        max_length=max_length,
        p_min=p_min,
        max_new_tokens=max_new_tokens,
        carry=keep,
        progress=progress,
    )
    side_by_side = base is not None or with_base
    runs: list[tuple[str, Any, Any]] = [
        ("finetuned" if side_by_side else str(model), ft_model, tok)
    ]
    if base is not None:
        runs.insert(0, ("base", *load_causal_lm(base, dtype=dtype, device=device)))
    journals = [
        None if journal is None else Path(journal).with_suffix(f".{Path(label).name}.jsonl")
        for label, *_ in runs
    ]
    results = [
        example_losses(lm, examples, tokenizer=tk, label=label, journal=book, **kw)
        for (label, lm, tk), book in zip(runs, journals, strict=True)
    ]
    if with_base:
        with ft_model.disable_adapter():
            results.insert(0, example_losses(ft_model, examples, tokenizer=tok, label="base", **kw))
    for book in journals:
        if book is not None:
            book.unlink(missing_ok=True)
    table = pd.concat([r.table for r in results], ignore_index=True)
    report = None
    if bin_col is not None:
        table[bin_col] = ordered_bin_labels(table[bin_col], examples.table[bin_col])
        report = loss_report(
            table,
            bin_column=bin_col,
            split_column=split_column,
            train_value=train_value,
            trained_bin=trained_bin,
            n_resamples=n_resamples,
        )
    return LossComparison(tuple(results), table, bin_col, report)
