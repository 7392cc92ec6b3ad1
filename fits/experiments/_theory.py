"""Theory against empirics on the synthetic task: every term of the bound, per run and per (d, n).

For a run fine-tuned on ``D_train(d)`` with ``n`` examples, a Gaussian posterior
``Q_σ = N(w_ft, σ² I)`` and the prior ``P_σ = N(w_base, σ² I)`` (every term of the tradeoff
instantiated rather than fitted), with probability at least ``1 − δ`` over the training sample and the Monte-Carlo
draws, simultaneously for every σ of a grid ``G`` fixed in advance,

.. math::

    E_{θ∼Q_σ} R_{test}(θ) \\le \\underbrace{\\mathrm{kl}^{-1}\\!\\Big(\\hat q_σ,
        \\frac{\\mathrm{KL}(Q_σ\\|P_σ) + \\ln(2\\sqrt n\\,|G| \\cdot 2/δ)}{n}\\Big)}_{\\text{in-distribution}}
        + \\underbrace{\\mathrm{TV}(D_{test}, D_{train}(d))}_{\\text{extrapolation}},

where ``KL(Q_σ‖P_σ) = ‖w_ft − w_base‖² / (2σ²)`` (from the run's weight statistics), the TV is
exact (difficulty = op count, a discrete variable, and problems given their op count are drawn
the same way for train and test), and ``q̂_σ`` certifies the Gibbs training risk:
``q̂_σ = kl⁻¹(Ȳ, ln(2|G|/δ)/m)`` from ``m`` posterior draws, each scored on a fresh batch of
training problems drawn with replacement (the draws are i.i.d. in [0, 1] with mean the Gibbs
training risk). Half of δ goes to the PAC-Bayes step (union over ``G``), half to the
Monte-Carlo step (union over ``G``). σ is then chosen per run as the grid point with the
smallest bound, which the union bound pays for.

The two parts are reported apart: the **in-distribution certificate** (``certificate``, the
first term, a bound on the Gibbs risk under ``D_train(d)``) and the **test bound**
(``bound`` = certificate + TV). Where training error + TV is already at least 1 (d = 6, 8 on the
synthetic task) the test bound is vacuous whatever the KL, and only the certificate carries
information; it is compared with the observed in-distribution error (``in_dist_error``).

The loss bounded is the **teacher-forced sequence 0-1 loss** (the whole completion's argmax
differs from the reference somewhere), which is at least the greedy answer error; the observed
test error plotted beside it is the deterministic fine-tune's greedy answer error. The
*plug-in* column instead puts the deterministic model's training answer error in the place of
``q̂_σ``: it is not a certificate for any σ and is shown only to separate the KL term's effect.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pacbound.support import check_in_interval, check_positive_int

__all__ = ["SIGMA_GRID", "TheoryConfig", "TheoryResult", "theory_for_sweep"]

_HEADROOM_SHOWN = (
    "budget_mode",
    "n",
    "difficulty",
    "seed",
    "sigma",
    "kl",
    "kl_allowed",
    "kl_factor",
    "kl_factor_exact",
)

#: σ grid fixed in advance (13 log-spaced values from 1e-3 to 1); its size enters the bound.
SIGMA_GRID: tuple[float, ...] = tuple(float(s) for s in np.geomspace(1e-3, 1.0, 13))


@dataclass(frozen=True)
class TheoryConfig:
    """Settings of :func:`theory_for_sweep`.

    Attributes
    ----------
    delta : float
        Total confidence budget (half PAC-Bayes, half Monte Carlo).
    sigma_grid : tuple of float
        σ values fixed in advance.
    gibbs_samples : int
        Posterior draws m per σ (0: skip the certified bound, plug-in only).
    gibbs_batch : int
        Training problems per draw.
    seed : int
        Seed of the posterior noise and of the batches.
    """

    delta: float = 0.05
    sigma_grid: tuple[float, ...] = SIGMA_GRID
    gibbs_samples: int = 40
    gibbs_batch: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        check_in_interval(self.delta, "delta", 0.0, 1.0, closed="neither", allow_nan=False)
        check_positive_int(self.gibbs_samples, "gibbs_samples", minimum=0)
        check_positive_int(self.gibbs_batch, "gibbs_batch")
        if not self.sigma_grid or any(not (s > 0 and math.isfinite(s)) for s in self.sigma_grid):
            raise ValueError(f"`sigma_grid` must be positive numbers; got {self.sigma_grid!r}.")

    def to_dict(self) -> dict:
        return {
            "delta": self.delta,
            "sigma_grid": list(self.sigma_grid),
            "gibbs_samples": self.gibbs_samples,
            "gibbs_batch": self.gibbs_batch,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class TheoryResult:
    """Bound terms against observations.

    Attributes
    ----------
    per_sigma : DataFrame
        One row per (run, σ): run_id, budget_mode, n, difficulty, seed, sigma, kl,
        gibbs_mean (Ȳ, NaN when not estimated), q_cert, certificate (the in-distribution
        certificate, first term of the bound), plugin_certificate (the same with the plug-in
        training error), bound (the test bound, certificate + TV), plugin_bound.
    per_run : DataFrame
        One row per run at its chosen σ: the terms above plus train_error (deterministic, greedy
        answer), test_error (observed), in_dist_error (observed error under D_train(d), from
        the per-op test slices), gen_gap and ext_gap (test = train + gen_gap + ext_gap), tv,
        sq_dist, sigma_plugin, vacuous (the test bound is >= 1), certificate_vacuous (the
        in-distribution certificate is >= 1).
    per_cell : DataFrame
        Means over seeds per (budget_mode, n, difficulty).
    dstar : DataFrame
        Per (budget_mode, n): the empirical d* (lowest mean test error) and the bound's
        minimiser over d (certified and plug-in), and whether they agree.
    notes : tuple of str
        Plain statements: where the bound is vacuous and whether it tracks the data.
    config : TheoryConfig
    guess_error : float, optional
        The error of guessing the answer (1 − 1/p); with it, :attr:`headroom` says how far each
        run's certificate is from non-vacuous (files written before it have none).
    """

    per_sigma: pd.DataFrame = field(repr=False)
    per_run: pd.DataFrame = field(repr=False)
    per_cell: pd.DataFrame = field(repr=False)
    dstar: pd.DataFrame = field(repr=False)
    notes: tuple[str, ...]
    config: TheoryConfig
    guess_error: float | None = None

    @property
    def headroom(self) -> pd.DataFrame | None:
        """Per run, the factor by which its KL would have to shrink for a certificate below
        :attr:`guess_error` (:func:`fits.experiments.nonvacuous_headroom`); None without it."""
        if self.guess_error is None:
            return None
        from fits.experiments._headroom import nonvacuous_headroom

        return nonvacuous_headroom(
            self.per_sigma,
            guess_error=self.guess_error,
            delta=self.config.delta,
            grid=len(self.config.sigma_grid),
        )

    def __str__(self) -> str:
        cols = [
            "budget_mode",
            "n",
            "difficulty",
            "test_error",
            "train_error",
            "in_dist_error",
            "tv",
            "kl",
            "sigma",
            "q_cert",
            "certificate",
            "bound",
            "plugin_bound",
        ]
        shown = self.per_cell[[c for c in cols if c in self.per_cell]].rename(
            columns={"certificate": "certificate(in-dist)", "bound": "test_bound(+TV)"}
        )
        lines = [
            "Theory against empirics (synthetic task)",
            "certificate(in-dist) bounds the error under D_train(d) (compare in_dist_error); "
            "test_bound(+TV) = certificate + TV bounds the test error.",
            shown.to_string(index=False, float_format=lambda x: f"{x:.4g}"),
            "",
            "d*(n):",
            self.dstar.to_string(index=False),
            "",
        ]
        lines += [f"- {note}" for note in self.notes]
        head = self.headroom
        if head is not None:
            lines += [
                "",
                f"How far from a certificate below the guessing error {self.guess_error:.3f}: "
                "KL allowed and the factor F = KL / KL allowed (inf: no sigma leaves room)",
                head[list(_HEADROOM_SHOWN)].to_string(
                    index=False, float_format=lambda x: f"{x:.4g}"
                ),
            ]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        def recs(frame: pd.DataFrame) -> list[dict]:
            return json.loads(frame.to_json(orient="records"))

        head = self.headroom
        return {
            "config": self.config.to_dict(),
            "guess_error": self.guess_error,
            "headroom": None if head is None else recs(head),
            "notes": list(self.notes),
            "dstar": recs(self.dstar),
            "per_cell": recs(self.per_cell),
            "per_run": recs(self.per_run),
            "per_sigma": recs(self.per_sigma),
        }

    @classmethod
    def load(cls, folder: str | Path) -> TheoryResult:
        """Read a result written by :meth:`save` (``folder/theory.json``)."""
        data = json.loads((Path(folder) / "theory.json").read_text())
        cfg = data["config"]
        config = TheoryConfig(
            delta=cfg["delta"],
            sigma_grid=tuple(cfg["sigma_grid"]),
            gibbs_samples=cfg["gibbs_samples"],
            gibbs_batch=cfg["gibbs_batch"],
            seed=cfg["seed"],
        )
        # files written before the certificate had its own name called it gen_bound
        renamed = {"gen_bound": "certificate", "plugin_gen_bound": "plugin_certificate"}

        def frame(key: str) -> pd.DataFrame:
            return pd.DataFrame(data[key]).rename(columns=renamed)

        return cls(
            frame("per_sigma"),
            frame("per_run"),
            frame("per_cell"),
            pd.DataFrame(data["dstar"]),
            tuple(data["notes"]),
            config,
            data.get("guess_error"),
        )

    def save(self, folder: str | Path) -> Path:
        """Write ``theory.json``, ``theory_per_run.csv``, ``theory_per_cell.csv`` and (with a
        guessing error) ``theory_headroom.csv`` into ``folder`` (atomically)."""
        from pacbound.support import write_json, write_table

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "theory.json", self.to_dict())
        write_table(self.per_run, folder / "theory_per_run.csv")
        write_table(self.per_cell, folder / "theory_per_cell.csv")
        head = self.headroom
        if head is not None:
            write_table(head, folder / "theory_headroom.csv")
        return folder / "theory.json"


def _gibbs_means(
    model, examples, cfg: TheoryConfig, run_key: str, pad_id: int, sigmas: tuple[float, ...]
) -> dict[float, float]:
    """Ȳ per σ: mean sequence 0-1 error of ``m`` posterior draws on random training batches.

    Weights are restored from a saved copy after each draw (never ``w + e − e``). σ values
    above the first one whose Ȳ is 1 are not evaluated (their bound would be vacuous).
    """
    import torch

    from fits.synthetic._distributions import stable_seed
    from measurement import teacher_forced

    params = [p for p in model.parameters()]
    saved = [p.detach().clone() for p in params]
    gen = torch.Generator().manual_seed(stable_seed("gibbs", cfg.seed, run_key) % 2**62)
    rng = np.random.default_rng([cfg.seed, stable_seed("gibbs-batch", run_key)])
    out: dict[float, float] = {}
    for sigma in sigmas:
        errors = []
        for _ in range(cfg.gibbs_samples):
            with torch.no_grad():
                for p in params:
                    p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * sigma)
            idx = rng.integers(len(examples), size=cfg.gibbs_batch)
            batch = [examples[i] for i in idx]
            order = list(range(len(batch)))
            _, _, exact = teacher_forced(model, batch, order, cfg.gibbs_batch, pad_id)
            errors.append(1.0 - float(np.mean(exact)))
            with torch.no_grad():
                for p, s in zip(params, saved, strict=True):
                    p.copy_(s)
        out[sigma] = float(np.mean(errors))
        if out[sigma] >= 1.0:
            break
    return out


def _observed_gaps(meta: dict, results: dict, train_err: float, test_err: float):
    """The two observed gaps: ``test = train + gen_gap + ext_gap`` exactly.

    The error under the training distribution is ``Σ_k p_d(k) err_k`` from the per-op test
    slices (the test set has every op count), so ``gen_gap = in_dist − train`` and
    ``ext_gap = test − in_dist``; the latter is at most ``TV(D_test, D_train(d))``.
    """
    probs = meta["difficulty_info"]["distribution"]["probs"]
    total, mass = 0.0, 0.0
    for k, p in enumerate(probs, start=1):
        if p <= 0:
            continue
        acc = results.get(f"eval_ops{k}_accuracy")
        if acc is None:
            return math.nan, math.nan, math.nan
        total += p * (1.0 - float(acc))
        mass += p
    in_dist = total / mass
    return in_dist, in_dist - train_err, test_err - in_dist


def _bounds(q: float, kl: float, n: int, delta: float, grid: int) -> float:
    from pacbound import kl_bound

    return float(kl_bound(q, kl, n, delta, union={"sigma grid": grid}).value)


def theory_for_sweep(
    sweep: str | Path,
    config: TheoryConfig | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> TheoryResult:
    """Compute every term of the bound for each complete run of a synthetic sweep folder.

    Parameters
    ----------
    sweep : path
        A sweep folder written by ``tradeoff sweep run`` on the synthetic task.
    config : TheoryConfig, optional
    progress : callable, optional
        Called as ``progress(done, total)`` after each run.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from fits.sweep._runner import _context, is_complete, load_plan
    from fits.sweep._spec import SpecError
    from fits.sweep._train import encode_records
    from measurement import EvalExample, WeightStats, gaussian_kl
    from pacbound import kl_inv_upper

    hf_logging.disable_progress_bar()
    cfg = config or TheoryConfig()
    plan = load_plan(sweep)
    if plan.spec["task.kind"] != "synthetic":
        raise SpecError(
            f"{plan.root}: theory needs a synthetic-task sweep (exact TV); got task.kind = "
            f"{plan.spec['task.kind']!r}."
        )
    runs = [r for r in plan.runs if is_complete(plan.root, r.run_id)]
    if not runs:
        raise SpecError(f"{plan.root}: the sweep has no complete runs yet.")
    task, _test, _base, diffs = _context(plan)
    grid = len(cfg.sigma_grid)
    half = cfg.delta / 2.0
    rows, best = [], []
    for i, run in enumerate(runs):
        folder = plan.root / "runs" / run.run_id
        meta = json.loads((folder / "run_meta.json").read_text())
        results = json.loads((folder / "all_results.json").read_text())
        stats = WeightStats.load(folder)
        tv = float(meta["difficulty_info"]["tv_test"])
        train_err = 1.0 - float(results["eval_train_accuracy"])
        test_err = 1.0 - float(results["eval_test_accuracy"])
        gibbs: dict[float, float] = {}
        if cfg.gibbs_samples:
            tok = AutoTokenizer.from_pretrained(folder)
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
            records = task.train_records(diffs[run.difficulty_label], run.n, run.seed)
            prompts, comps = encode_records(tok, records, chat=task.chat)
            examples = [
                EvalExample(tuple(p), tuple(c), None) for p, c in zip(prompts, comps, strict=True)
            ]
            gibbs = _gibbs_means(
                model, examples, cfg, run.run_id, tok.pad_token_id, tuple(sorted(cfg.sigma_grid))
            )
        run_rows = []
        for sigma in cfg.sigma_grid:
            kl = gaussian_kl(stats, sigma=sigma).kl
            plug_gen = _bounds(train_err, kl, run.n, cfg.delta, grid)
            ybar = gibbs.get(sigma, math.nan)
            if math.isnan(ybar):
                q_cert = gen = math.nan
            else:
                q_cert = float(kl_inv_upper(ybar, math.log(grid / half) / cfg.gibbs_samples))
                gen = _bounds(q_cert, kl, run.n, half, grid)
            run_rows.append(
                {
                    "run_id": run.run_id,
                    "budget_mode": run.budget_mode,
                    "n": run.n,
                    "difficulty": run.difficulty,
                    "seed": run.seed,
                    "sigma": sigma,
                    "kl": kl,
                    "gibbs_mean": ybar,
                    "q_cert": q_cert,
                    "certificate": gen,
                    "plugin_certificate": plug_gen,
                    "bound": gen + tv,
                    "plugin_bound": plug_gen + tv,
                }
            )
        rows += run_rows
        frame = pd.DataFrame(run_rows)
        pick = (
            frame["bound"].idxmin()
            if frame["bound"].notna().any()
            else frame["plugin_bound"].idxmin()
        )
        chosen = dict(frame.loc[pick])
        chosen["sigma_plugin"] = float(frame.loc[frame["plugin_bound"].idxmin(), "sigma"])
        chosen["plugin_bound"] = float(frame["plugin_bound"].min())
        in_dist, gen_gap, ext_gap = _observed_gaps(meta, results, train_err, test_err)
        chosen.update(
            {
                "train_error": train_err,
                "test_error": test_err,
                "in_dist_error": in_dist,
                "gen_gap": gen_gap,
                "ext_gap": ext_gap,
                "tv": tv,
                "sq_dist": float(stats.table["sq_delta"].astype("float64").sum()),
            }
        )
        chosen["vacuous"] = bool(not (chosen["bound"] < 1.0))
        chosen["certificate_vacuous"] = bool(not (chosen["certificate"] < 1.0))
        best.append(chosen)
        if progress:
            progress(i + 1, len(runs))
    per_sigma = pd.DataFrame(rows)
    per_run = pd.DataFrame(best)
    keys = ["budget_mode", "n", "difficulty"]
    value_cols = [
        "test_error",
        "train_error",
        "in_dist_error",
        "gen_gap",
        "ext_gap",
        "tv",
        "kl",
        "sq_dist",
        "sigma",
        "q_cert",
        "certificate",
        "bound",
        "plugin_certificate",
        "plugin_bound",
    ]
    per_cell = per_run.groupby(keys, as_index=False)[value_cols].mean()
    per_cell["seeds"] = per_run.groupby(keys).size().to_numpy()
    dstar = _dstar_table(per_cell)
    guess = 1.0 - 1.0 / float(plan.spec["task.prime"])
    notes = _notes(per_run, per_cell, dstar) + _headroom_notes(per_sigma, cfg, guess)
    return TheoryResult(per_sigma, per_run, per_cell, dstar, notes, cfg, guess)


def _dstar_table(per_cell: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (mode, n), g in per_cell.groupby(["budget_mode", "n"]):
        emp = g.loc[g["test_error"].idxmin(), "difficulty"]
        cert = g.loc[g["bound"].idxmin(), "difficulty"] if g["bound"].notna().any() else math.nan
        plug = g.loc[g["plugin_bound"].idxmin(), "difficulty"]
        rows.append(
            {
                "budget_mode": mode,
                "n": int(n),
                "dstar_empirical": float(emp),
                "dstar_bound": float(cert),
                "dstar_plugin": float(plug),
                "agree": bool(cert == emp),
                "agree_plugin": bool(plug == emp),
            }
        )
    return pd.DataFrame(rows)


def _headroom_notes(per_sigma: pd.DataFrame, cfg: TheoryConfig, guess: float) -> tuple[str, ...]:
    from fits.experiments._headroom import nonvacuous_headroom

    if per_sigma["q_cert"].isna().all():
        return ()
    head = nonvacuous_headroom(
        per_sigma, guess_error=guess, delta=cfg.delta, grid=len(cfg.sigma_grid)
    )
    finite = head["kl_factor"][np.isfinite(head["kl_factor"])]
    text = (
        f"Base-relative certificate below the guessing error {guess:.3f}: "
        f"{int((head['kl_factor'] <= 1).sum())} of {len(head)} runs. "
    )
    if len(finite):
        text += (
            f"Where some sigma leaves room ({len(finite)} runs) the KL would have to shrink by a "
            f"factor {finite.min():.3g} to {finite.max():.3g}; "
        )
    text += (
        f"for {len(head) - len(finite)} runs the certified Gibbs risk is at or above guessing at "
        "every sigma (no KL is small enough)."
    )
    return (text,)


def _notes(per_run: pd.DataFrame, per_cell: pd.DataFrame, dstar: pd.DataFrame) -> tuple[str, ...]:
    notes = []
    vac = int(per_run["vacuous"].sum())
    total = len(per_run)
    tight = per_run.loc[per_run["bound"].idxmin()] if per_run["bound"].notna().any() else None
    if tight is not None:
        notes.append(
            f"The test bound (certificate + TV) is vacuous (>= 1) for {vac} of {total} runs; "
            f"its smallest value is {tight['bound']:.3f} (d={tight['difficulty']:g}, n={int(tight['n'])}, "
            f"sigma={tight['sigma']:.3g}), against an observed test error of "
            f"{tight['test_error']:.3f} there."
        )
    cert = per_run["certificate"]
    if cert.notna().any():
        low = per_run.loc[cert.idxmin()]
        saved = int(((per_run["bound"] >= 1) & (cert < 1)).sum())
        notes.append(
            f"The in-distribution certificate (without the TV term) is vacuous (>= 1) for "
            f"{int((cert >= 1).sum())} of {total} runs; its smallest value is "
            f"{low['certificate']:.3f} (d={low['difficulty']:g}, n={int(low['n'])}) against an "
            f"observed in-distribution error of {low['in_dist_error']:.3f}; it is below 1 for "
            f"{saved} run(s) whose test bound is vacuous."
        )
    plug_vac = int((per_run["plugin_bound"] >= 1).sum())
    notes.append(
        f"Even the plug-in bound (deterministic training error in place of the Gibbs risk, not "
        f"a certificate) is >= 1 for {plug_vac} of {total} runs."
    )
    agree = int(dstar["agree"].sum())
    notes.append(
        f"The certified bound's minimiser over d equals the empirical d* at {agree} of "
        f"{len(dstar)} (mode, n) budgets; the plug-in minimiser at "
        f"{int(dstar['agree_plugin'].sum())} of {len(dstar)}."
    )
    for mode, g in per_cell.groupby("budget_mode"):
        corr_d = g.groupby("n").apply(
            lambda h: np.corrcoef(h["difficulty"], h["sq_dist"])[0, 1] if len(h) > 1 else np.nan,
            include_groups=False,
        )
        notes.append(
            f"[{mode}] ||w_ft - w_base||^2 vs d: correlation per budget "
            + ", ".join(f"n={int(n)}: {c:+.2f}" for n, c in corr_d.items())
            + "."
        )
    return tuple(notes)
