"""In-distribution certificates for every finished run of a sweep, and what they say about d*.

For each finished run of a sweep folder, :func:`fits.experiments.certify_run` (a prior run
trained from the base on a random part of the run's rows, certified as a point mass on the
rest by the exact binomial tail; the base model certified on the same rows). Beside each
certificate:

- the held-out 0-1 error on fresh samples of D_train(d) of the fine-tune, of the prior run
  and of the base, and the **test-set bound** on the fine-tune's held-out samples (the exact
  binomial tail on those samples: the reference a user would otherwise use);
- the test bound through the certificate,
  :math:`\\min\\{1,\\ \\text{certificate} + \\mathrm{TV}(D_\\text{test}, D_\\text{train}(d))\\}`
  (the 0-1 risk under the test distribution exceeds the in-distribution risk by at most the
  total variation between the two), and the run's observed test error.

Then, per (budget mode, n), over the difficulties: the empirical d* (the best mean test
accuracy of the fine-tunes), the minimiser of the mean test bound, and whether the in-distribution
certificate ranks the difficulties as the held-out in-distribution errors do.

A certificate is **non-vacuous** when it is below the error of guessing the answer
(1 − 1/p for the task's mod-p answers), not merely below 1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pacbound.exceptions import InvalidParameterError

__all__ = ["CERT_DIR", "SweepCertificates", "certify_sweep", "summarise_certificates"]

CERT_DIR = "certificates"
"""Default folder of a sweep's certificates, under the sweep folder."""
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class SweepCertificates:
    """The certificates of a sweep's runs, with the held-out errors and the d* comparison.

    Attributes
    ----------
    sweep : str
        The sweep folder.
    guess_error : float
        Error of guessing the answer (1 − 1/p): a certificate below it is non-vacuous.
    options : dict
        ``prior_fraction``, ``split_seed``, ``held_out``, ``delta`` of every certificate.
    records : tuple of dict
        One per run (:meth:`RunCertificate.record` plus ``tv_test``, ``test_error``,
        ``test_bound``, ``held_out_test_set_bound``, ``tightness``, ``non_vacuous``,
        ``below_base``; and, added when summarised, ``held_out_error_lower``,
        ``out_of_reach``, ``best_case_certificate``: what any certificate of the fine-tune
        could reach, see ``_with_reach``).
    cells : tuple of dict
        Means over seeds per (budget mode, n, difficulty).
    dstar : tuple of dict
        Per (budget mode, n): the empirical d*, the test bound's minimiser, the in-distribution
        certificate's and the held-out error's minimisers (None where the minimum is vacuous or
        tied), and Spearman's ρ between the certificate and the held-out error.
    counts : dict
        Runs, non-vacuous runs, runs below the base's certificate, runs out of reach (the
        fine-tune's own error, at its lower confidence bound, is at or above guessing), per
        difficulty too.
    """

    sweep: str
    guess_error: float
    options: dict
    records: tuple[dict, ...]
    cells: tuple[dict, ...]
    dstar: tuple[dict, ...]
    counts: dict
    seconds: dict = field(default_factory=dict)

    def __str__(self) -> str:
        c = self.counts
        lines = [
            f"In-distribution certificates of {c['runs']} runs of {self.sweep} (0-1 sequence "
            f"error on D_train(d); a learnt prior on {self.options['prior_fraction']:g} of each "
            f"run's rows, certified on the rest at delta {self.options['delta']:g}).",
            f"  non-vacuous (below the guessing error {self.guess_error:.3f}): "
            f"{c['non_vacuous']} of {c['runs']}; below the base model's certificate on the same "
            f"rows: {c['below_base']} of {c['runs']}; out of reach of any certificate below "
            f"guessing (the fine-tune's own error is at least that, lower confidence bound): "
            f"{c.get('out_of_reach', 0)}.",
            f"  {'mode':<7} {'n':>5} {'d':>4} {'seeds':>5}  {'cert':>6} {'base':>6} "
            f"{'held-out':>8} {'prior':>6} {'test-set':>8} {'cert+TV':>7} {'test err':>8}",
        ]
        for r in self.cells:
            lines.append(
                f"  {r['budget_mode']:<7} {r['n']:>5} {r['difficulty']:>4g} {r['seeds']:>5}  "
                f"{r['certificate']:>6.3f} {r['base_certificate']:>6.3f} "
                f"{r['held_out_error']:>8.3f} {r['prior_held_out_error']:>6.3f} "
                f"{r['held_out_test_set_bound']:>8.3f} {r['test_bound']:>7.3f} "
                f"{r['test_error']:>8.3f}"
            )
        lines.append(
            "  (cert: the learnt-prior certificate; base: the base model's on the same rows; "
            "held-out: the fine-tune's error on fresh samples of D_train(d), prior: the prior "
            "run's; test-set: the binomial bound on those fresh samples; cert+TV: the test bound "
            "(of the prior run's sequence error, hence of its answer error); test err: the "
            "fine-tune's answer error on the sweep's test set; means over seeds)"
        )
        for r in self.dstar:
            if r["bound_minimiser"] is None:
                said = "none (certificate + TV is >= 1 at every d, or tied)"
            else:
                agree = "agrees" if r["bound_minimiser"] == r["empirical_dstar"] else "differs"
                said = f"{r['bound_minimiser']:g} ({agree})"
            lines.append(
                f"  {r['budget_mode']} n={r['n']}: empirical d* = {r['empirical_dstar']:g}, "
                f"minimiser of certificate + TV = {said}; "
                f"in-distribution: certificate ranks d with Spearman rho = "
                f"{_fmt(r['rank_agreement'])} against the held-out errors"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep": self.sweep,
            "guess_error": self.guess_error,
            "options": dict(self.options),
            "counts": dict(self.counts),
            "records": list(self.records),
            "cells": list(self.cells),
            "dstar": list(self.dstar),
            "seconds": dict(self.seconds),
        }

    def save(self, folder: str | Path) -> Path:
        """``summary.json`` and ``certificates.csv`` (one row per run) in ``folder``."""
        import pandas as pd

        from pacbound.support import atomic_path, write_json

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        rows = [{k: v for k, v in r.items() if k != "assumptions"} for r in self.records]
        with atomic_path(folder / "certificates.csv") as tmp:
            pd.DataFrame(rows).to_csv(tmp, index=False)
        return write_json(folder / SUMMARY_FILE, self.to_dict())


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:+.2f}"


def _run_facts(run_dir: Path) -> dict[str, float]:
    """TV to the test distribution and the observed test error of a finished run."""
    meta = json.loads((run_dir / "run_meta.json").read_text())
    results = json.loads((run_dir / "all_results.json").read_text())
    acc = results.get("eval_test_accuracy")
    if acc is None:
        raise InvalidParameterError(
            f"{run_dir / 'all_results.json'}: no `eval_test_accuracy` (the sweep was run with "
            "eval.accuracy = false); the test error beside the certificate needs it."
        )
    return {"tv_test": float(meta["difficulty_info"]["tv_test"]), "test_error": 1.0 - float(acc)}


def _held_out_count(record: dict) -> tuple[int, int]:
    """(errors, samples) of the fine-tune on its fresh held-out samples of D_train(d)."""
    n_held = int(record["n_held_out"])
    return round(record["held_out_error"] * n_held), n_held


def _with_reference(record: dict, facts: dict, guess_error: float) -> dict:
    """A run's certificate record with the test-set bound, the test bound and the flags."""
    import pacbound

    k, n_held = _held_out_count(record)
    reference = float(pacbound.test_set_bound(k, n_held, record["delta"]).value)
    prior_err = record["prior_held_out_error"]
    return {
        **record,
        **facts,
        "test_bound": min(1.0, record["certificate"] + facts["tv_test"]),
        "held_out_test_set_bound": reference,
        "tightness": record["certificate"] / prior_err if prior_err > 0 else math.inf,
        "certificate_minus_held_out": record["certificate"] - record["held_out_error"],
        "non_vacuous": bool(record["certificate"] < guess_error),
        "below_base": bool(record["certificate"] < record["base_certificate"]),
    }


def _with_reach(record: dict, guess_error: float) -> dict:
    """A run's record with what any certificate of its fine-tune could reach.

    - ``held_out_error_lower``: the exact binomial lower confidence bound (at the record's δ)
      on the fine-tune's in-distribution error, from its held-out samples. A sound certificate
      of a model is at least its risk, so where this is at or above ``guess_error``
      (``out_of_reach``), no certificate of the fine-tune, by any method, can be below guessing.
    - ``best_case_certificate``: the binomial certificate on the run's ``n_bound`` bound rows of
      a model as good as the fine-tune (its held-out error) that costs nothing (KL = 0): the
      learnt-prior certificate if the prior run, trained on the other part, matched the
      fine-tune trained on all of it.
    """
    import pacbound

    k, n_held = _held_out_count(record)
    n_bound, delta = int(record["n_bound"]), float(record["delta"])
    error = float(record["held_out_error"])
    lower = float(pacbound.test_set_lower_bound(k, n_held, delta))
    best = float(pacbound.test_set_bound(round(error * n_bound), n_bound, delta).value)
    return {
        **record,
        "held_out_error_lower": lower,
        "out_of_reach": bool(lower >= guess_error),
        "best_case_certificate": best,
    }


MEAN_KEYS = (
    "certificate",
    "base_certificate",
    "held_out_error",
    "prior_held_out_error",
    "base_held_out_error",
    "held_out_test_set_bound",
    "test_bound",
    "test_error",
    "tv_test",
)


def _spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman's ρ (average ranks for ties); None where either side is constant or n < 3."""
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def _minimiser(part: Any, column: str) -> float | None:
    """The d minimising ``column``; None where the minimum is 1 (every value vacuous: the
    bound says nothing) or is shared by several d (a tie names no single d)."""
    values = part[column].to_numpy(dtype=float)
    best = float(np.min(values))
    if best >= 1.0 - 1e-12 or int(np.sum(np.isclose(values, best, rtol=0, atol=1e-12))) > 1:
        return None
    return float(part["difficulty"].to_numpy()[int(np.argmin(values))])


def summarise_certificates(
    sweep: str,
    records: list[dict],
    guess_error: float,
    options: dict,
    *,
    seconds: dict | None = None,
) -> SweepCertificates:
    """Cells (means over seeds), the d* comparison and the counts of ``records``."""
    import pandas as pd

    if not records:
        raise InvalidParameterError(f"{sweep}: no certified runs to summarise.")
    records = [_with_reach(r, guess_error) for r in records]
    frame = pd.DataFrame(records)
    keys = ["budget_mode", "n", "difficulty"]
    grouped = frame.groupby(keys, sort=True)
    cells = grouped[list(MEAN_KEYS)].mean().reset_index()
    cells["seeds"] = grouped.size().to_numpy()
    cells["non_vacuous"] = grouped["non_vacuous"].sum().to_numpy()
    dstar = []
    for (mode, n), part in cells.groupby(["budget_mode", "n"], sort=True):
        part = part.sort_values("difficulty")
        dstar.append(
            {
                "budget_mode": mode,
                "n": int(n),
                "empirical_dstar": float(part.loc[part["test_error"].idxmin(), "difficulty"]),
                "bound_minimiser": _minimiser(part, "test_bound"),
                "min_test_bound": float(part["test_bound"].min()),
                "certificate_minimiser": _minimiser(part, "certificate"),
                "held_out_minimiser": _minimiser(part, "held_out_error"),
                "rank_agreement": _spearman(
                    part["certificate"].tolist(), part["held_out_error"].tolist()
                ),
            }
        )
    by_d = {
        f"{d:g}": {"runs": len(g), "non_vacuous": int(g["non_vacuous"].sum())}
        for d, g in frame.groupby("difficulty")
    }
    counts = {
        "runs": len(frame),
        "non_vacuous": int(frame["non_vacuous"].sum()),
        "below_base": int(frame["below_base"].sum()),
        "out_of_reach": int(frame["out_of_reach"].sum()),
        "by_difficulty": by_d,
    }
    cell_rows = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in cells.to_dict("records")
    ]
    return SweepCertificates(
        sweep=str(sweep),
        guess_error=float(guess_error),
        options=dict(options),
        records=tuple(records),
        cells=tuple(cell_rows),
        dstar=tuple(dstar),
        counts=counts,
        seconds=dict(seconds or {}),
    )


def certify_sweep(
    sweep: str | Path,
    out_dir: str | Path | None = None,
    *,
    seeds: list[int] | None = None,
    workers: int = 1,
    prior_fraction: float = 0.5,
    split_seed: int = 0,
    held_out: int = 256,
    delta: float = 0.025,
    progress: Callable[[int, int], None] | None = None,
) -> SweepCertificates:
    """Certify every finished run of the sweep folder ``sweep`` (module docstring).

    Parameters
    ----------
    sweep : path
        A sweep folder written by ``tradeoff sweep run`` (full fine-tunes of a task with a
        fixed-answer test set; the run weights must be present).
    out_dir : path, optional
        Receives ``<run_id>/`` per run (the prior run, ``certificate.json``), ``summary.json``
        and ``certificates.csv``. Default: ``SWEEP/certificates``. A rerun reuses the saved
        certificates of the same options.
    seeds : list of int, optional
        Only the runs of these seeds.
    workers : int
        Parallel one-thread processes.
    prior_fraction, split_seed, held_out, delta
        As in :func:`fits.experiments.certify_run` (fixed in advance; recorded).
    progress : callable(done, total), optional
    """
    import time

    from fits.experiments._certify_sweep import certify_sweep_runs
    from fits.sweep._runner import is_complete, load_plan

    if not 0.0 < delta < 1.0:
        raise InvalidParameterError(f"`delta` must be in (0, 1); got {delta!r}.")
    if not 0.0 < prior_fraction < 1.0:
        raise InvalidParameterError(f"`prior_fraction` must be in (0, 1); got {prior_fraction!r}.")
    if held_out < 1:
        raise InvalidParameterError(f"`held_out` must be >= 1; got {held_out!r}.")
    root = Path(sweep)
    plan = load_plan(root)
    if plan.spec["train.finetune"] != "full":
        raise InvalidParameterError(
            f"{root}: per-run learnt-prior certificates need full fine-tunes (the prior run is "
            f"trained twice as cheaply as the run); this sweep has train.finetune = "
            f"{plan.spec['train.finetune']!r}. For a LoRA sweep use "
            "fits.experiments.certify_on_fresh_samples on chosen runs."
        )
    if plan.spec["task.kind"] != "synthetic":
        raise InvalidParameterError(
            f"{root}: certificates need fresh samples of D_train(d) for the held-out error, "
            f"which only the synthetic task can draw; task.kind = {plan.spec['task.kind']!r}."
        )
    runs = [r for r in plan.runs if is_complete(root, r.run_id)]
    if seeds is not None:
        runs = [r for r in runs if r.seed in set(seeds)]
    if not runs:
        raise InvalidParameterError(
            f"{root}: no finished runs" + (f" with seeds {sorted(seeds)}" if seeds else "") + "."
        )
    missing = [
        r.run_id for r in runs if not (root / "runs" / r.run_id / "model.safetensors").is_file()
    ]
    if missing:
        raise InvalidParameterError(
            f"{root}: {len(missing)} finished run(s) have no weights (e.g. {missing[0]}); "
            "certificates need each run's model.safetensors (weights are not committed: rerun "
            "`tradeoff sweep run` on the spec to retrain them)."
        )
    out = Path(out_dir) if out_dir is not None else root / CERT_DIR
    options = {
        "prior_fraction": prior_fraction,
        "split_seed": split_seed,
        "held_out": held_out,
        "delta": delta,
    }
    t0 = time.perf_counter()
    certs = certify_sweep_runs(root, runs, out, workers=workers, progress=progress, **options)
    guess = 1.0 - 1.0 / plan.spec["task.prime"]
    records = [
        _with_reference(c.record(), _run_facts(root / "runs" / c.run["run_id"]), guess)
        for c in certs
    ]
    result = summarise_certificates(
        str(root), records, guess, options, seconds={"total": time.perf_counter() - t0}
    )
    result.save(out)
    return result
