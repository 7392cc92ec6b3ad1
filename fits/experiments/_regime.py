"""Is a synthetic sweep in the regime where fine-tuning helps? In-distribution error and P(best).

For a run fine-tuned on the op-count distribution :math:`p_d` (a mixture or a bin over
:math:`k = 1, \\dots, K`) and scored on the decomposed test set (greedy exact-answer accuracy
:math:`a_k` on the problems with :math:`k` ops), the **in-distribution error** is

.. math::

    e_d = \\sum_{k=1}^{K} p_d(k)\\,(1 - a_k),

the expected error on a fresh draw from its own training distribution :math:`D_{train}(d)`.
The base model's error on the same :math:`D_{train}(d)` uses the base's per-op accuracies
on the same test problems (its pre-training evaluation, ``pretrain_meta.json``), so
:math:`e^{base}_d - e_d > 0` says the fine-tune learnt what it was trained on.

:func:`best_difficulty_probabilities` answers "which difficulty is best at budget n, and how
sure is that": the seeds of every (d, n) cell are resampled with replacement, the cell means
recomputed, and the share of draws in which each d has the highest mean is
:math:`\\hat P(d = d^*(n))`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pacbound.exceptions import InputFileError, InvalidParameterError

__all__ = [
    "RegimeTable",
    "best_difficulty_probabilities",
    "in_distribution_error",
    "sweep_regime_table",
]


def in_distribution_error(probs: Sequence[float], per_op_accuracy: Sequence[float]) -> float:
    """Error on the training distribution: :math:`\\sum_k p(k)\\,(1 - a_k)`.

    Parameters
    ----------
    probs : sequence of float
        :math:`p(k)` for :math:`k = 1, \\dots, K`; non-negative, summing to 1 (within 1e-6).
    per_op_accuracy : sequence of float
        :math:`a_k \\in [0, 1]` for the same :math:`k`.

    Returns
    -------
    float
    """
    p = np.asarray(probs, dtype=np.float64)
    a = np.asarray(per_op_accuracy, dtype=np.float64)
    if p.ndim != 1 or a.shape != p.shape:
        raise InvalidParameterError(
            f"`probs` and `per_op_accuracy` must be 1-D of the same length; got shapes "
            f"{p.shape} and {a.shape}."
        )
    if not (np.all(np.isfinite(p)) and np.all(p >= 0) and abs(p.sum() - 1.0) <= 1e-6):
        raise InvalidParameterError(
            f"`probs` must be non-negative and sum to 1; got sum {p.sum()!r}."
        )
    if not (np.all(np.isfinite(a)) and np.all((a >= 0) & (a <= 1))):
        raise InvalidParameterError(f"`per_op_accuracy` must lie in [0, 1]; got {a.tolist()}.")
    return float(np.dot(p, 1.0 - a))


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise InputFileError(f"{path}: the {what} file is missing.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path}: the {what} file is not valid JSON: {exc}") from None


def _per_op(metrics: dict, prefix: str, max_ops: int, where: Path) -> tuple[list, list]:
    acc, counts = [], []
    for k in range(1, max_ops + 1):
        key = f"{prefix}ops{k}_accuracy"
        if metrics.get(key) is None:
            raise InputFileError(
                f"{where}: no `{key}`; the in-distribution error needs the accuracy on every "
                f"op count 1..{max_ops} (a synthetic sweep evaluated on the full test range)."
            )
        acc.append(float(metrics[key]))
        counts.append(metrics.get(f"{prefix}ops{k}_n"))
    return acc, counts


def _base_scores(base_dir: Path, root: Path, max_ops: int) -> tuple[list, list, float]:
    """The base's per-op accuracies, their counts and its test accuracy: from its pre-training
    evaluation (a synthetic base), else from the sweep's ``base_eval.json`` (a base scored on
    the sweep's own test set by :func:`fits.sweep.evaluate_sweep_base`)."""
    from fits.sweep import BASE_EVAL_FILE

    pretrain = base_dir / "pretrain_meta.json"
    if not pretrain.is_file() and not (root / BASE_EVAL_FILE).is_file():
        raise InputFileError(
            f"{base_dir}: the base has no evaluation of its own (pretrain_meta.json) and "
            f"{root / BASE_EVAL_FILE} does not exist; score it on the sweep's test set first: "
            f"tradeoff sweep base-eval {root}"
        )
    if pretrain.is_file():
        pmeta = _read_json(pretrain, "base pre-training meta")
        b_acc, b_counts = _per_op(pmeta["eval"], "", max_ops, pretrain)
        return b_acc, b_counts, float(pmeta["eval"]["test_accuracy"])
    scored = _read_json(root / BASE_EVAL_FILE, "base evaluation")
    b_acc, b_counts = _per_op(scored, "eval_", max_ops, root / BASE_EVAL_FILE)
    return b_acc, b_counts, float(scored["eval_test_accuracy"])


@dataclass(frozen=True)
class RegimeTable:
    """Per-run in-distribution errors of a synthetic sweep, beside the base's.

    Attributes
    ----------
    runs : pandas.DataFrame
        One row per complete run: ``run_id, budget_mode, difficulty, label, n, seed,
        test_accuracy, indist_error, base_indist_error, indist_gain`` (base minus fine-tune:
        positive when the fine-tune learnt its training distribution) and ``test_gain``
        (fine-tune minus base test accuracy).
    base_test_accuracy : float
        The base's accuracy on the same test set.
    base_per_op : tuple of float
        The base's accuracy per op count 1..K.
    """

    runs: object
    base_test_accuracy: float
    base_per_op: tuple[float, ...]

    def cells(self):
        """Seed means and spreads per (budget_mode, n, difficulty)."""
        g = self.runs.groupby(["budget_mode", "n", "difficulty"], sort=True)
        out = g.agg(
            seeds=("seed", "nunique"),
            test_accuracy=("test_accuracy", "mean"),
            test_sd=("test_accuracy", "std"),
            test_min=("test_accuracy", "min"),
            test_max=("test_accuracy", "max"),
            indist_error=("indist_error", "mean"),
            base_indist_error=("base_indist_error", "mean"),
            indist_gain=("indist_gain", "mean"),
        ).reset_index()
        out["test_gain"] = out["test_accuracy"] - self.base_test_accuracy
        return out

    def __str__(self) -> str:
        c = self.cells()
        lines = [
            f"base: test accuracy {self.base_test_accuracy:.3f}; per op "
            + " ".join(f"{a:.2f}" for a in self.base_per_op)
        ]
        for (mode, n), sub in c.groupby(["budget_mode", "n"], sort=True):
            parts = [
                f"d={r.difficulty:g}: acc {r.test_accuracy:.3f} (x{r.seeds}), in-dist err "
                f"{r.indist_error:.3f} vs base {r.base_indist_error:.3f}"
                for r in sub.itertuples()
            ]
            lines.append(f"{mode} n={n}: " + "; ".join(parts))
        return "\n".join(lines)


def sweep_regime_table(sweep: str | Path, base: str | Path | None = None) -> RegimeTable:
    """In-distribution error of every complete run of a synthetic sweep folder, and the base's.

    Parameters
    ----------
    sweep : path
        A sweep folder (``runs/<run_id>/`` with ``run_meta.json`` and ``eval_results.json``).
    base : path, optional
        The base model folder holding ``pretrain_meta.json`` (default: each run's recorded
        ``base_model``). Its evaluation must use the same number of test problems per op
        count as the runs, so both are scored on the same problems.

    Returns
    -------
    RegimeTable
    """
    import pandas as pd

    root = Path(sweep)
    run_dirs = sorted(p.parent for p in (root / "runs").glob("*/run_meta.json"))
    if not run_dirs:
        raise InputFileError(f"{root}: no complete runs (runs/<run_id>/run_meta.json) found.")
    rows = []
    bases: dict[str, tuple[list[float], list, float]] = {}
    for run_dir in run_dirs:
        meta = _read_json(run_dir / "run_meta.json", "run meta")
        dist = (meta.get("difficulty_info") or {}).get("distribution") or {}
        probs = dist.get("probs")
        if not probs:
            raise InputFileError(
                f"{run_dir / 'run_meta.json'}: no difficulty_info.distribution.probs; the "
                "in-distribution error needs a synthetic run's training distribution."
            )
        max_ops = len(probs)
        metrics = _read_json(run_dir / "eval_results.json", "evaluation")
        acc, counts = _per_op(metrics, "eval_", max_ops, run_dir / "eval_results.json")
        base_dir = Path(base) if base is not None else Path(meta["base_model"])
        key = str(base_dir)
        if key not in bases:
            bases[key] = _base_scores(base_dir, root, max_ops)
        b_acc, b_counts, b_test = bases[key]
        pairs = zip(counts, b_counts, strict=True)
        if any(c is not None and bc is not None and c != bc for c, bc in pairs):
            raise InputFileError(
                f"{run_dir}: the run was scored on {counts} test problems per op count and the "
                f"base {base_dir} on {b_counts}; they must be the same test set."
            )
        e = in_distribution_error(probs, acc)
        eb = in_distribution_error(probs, b_acc)
        test_acc = float(metrics["eval_test_accuracy"])
        rows.append(
            {
                "run_id": meta["run_id"],
                "budget_mode": meta["budget_mode"],
                "difficulty": float(meta["difficulty"]),
                "label": meta["difficulty_label"],
                "n": int(meta["n"]),
                "seed": int(meta["seed"]),
                "steps": int(meta["steps"]),
                "test_accuracy": test_acc,
                "indist_error": e,
                "base_indist_error": eb,
                "indist_gain": eb - e,
                "test_gain": test_acc - b_test,
            }
        )
    if len(bases) != 1:
        raise InputFileError(
            f"{root}: runs were fine-tuned from {len(bases)} different bases ({', '.join(bases)})."
        )
    ((b_acc, _, b_test),) = bases.values()
    return RegimeTable(pd.DataFrame(rows), b_test, tuple(b_acc))


def best_difficulty_probabilities(
    runs, *, value: str = "test_accuracy", n_resamples: int = 2000, seed: int = 0
):
    """:math:`\\hat P(d = d^*(n))` by resampling the seeds of every (d, n) cell.

    Parameters
    ----------
    runs : pandas.DataFrame
        Columns ``budget_mode, n, difficulty, seed`` and ``value`` (e.g. ``RegimeTable.runs``).
    value : str
        The column to maximise.
    n_resamples : int
        Resampling draws.
    seed : int
        Seed of the draws.

    Returns
    -------
    pandas.DataFrame
        One row per (budget_mode, n, difficulty): ``mean`` (of the seeds), ``seeds`` and
        ``p_best``, the share of draws in which this difficulty has the highest resampled
        mean (ties split evenly). ``p_best`` sums to 1 within each (budget_mode, n).
    """
    import pandas as pd

    if n_resamples < 1:
        raise InvalidParameterError(f"`n_resamples` must be >= 1; got {n_resamples}.")
    missing = {"budget_mode", "n", "difficulty", value} - set(runs.columns)
    if missing:
        raise InvalidParameterError(
            f"`runs` lacks the columns {sorted(missing)}; it has {list(runs.columns)}."
        )
    rng = np.random.default_rng(seed)
    out = []
    for (mode, n), sub in runs.groupby(["budget_mode", "n"], sort=True):
        diffs = sorted(sub["difficulty"].unique())
        values = [sub.loc[sub["difficulty"] == d, value].to_numpy(np.float64) for d in diffs]
        means = np.empty((n_resamples, len(diffs)))
        for j, v in enumerate(values):
            idx = rng.integers(0, v.size, size=(n_resamples, v.size))
            means[:, j] = v[idx].mean(axis=1)
        top = means == means.max(axis=1, keepdims=True)
        share = (top / top.sum(axis=1, keepdims=True)).mean(axis=0)
        for d, v, p in zip(diffs, values, share, strict=True):
            out.append(
                {
                    "budget_mode": mode,
                    "n": int(n),
                    "difficulty": float(d),
                    "seeds": int(v.size),
                    "mean": float(v.mean()),
                    "p_best": float(p),
                }
            )
    return pd.DataFrame(out)
