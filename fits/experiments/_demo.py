"""``tradeoff demo``: the whole toolkit on an embedded default, on a CPU, with no download.

Steps (each resumable: a rerun after a kill continues the sweep and redoes the cheap rest):

1. **Sweep** (``DIR/sweep``): the synthetic iGSM-like task with 6 op slots, the shipped
   calibrated base (Ops[1-2]: it solves 1-2 operations and is near chance beyond; see
   ``fits/data/README.md``), Gaussian difficulty mixtures centred at d, budgets n
   at a fixed number of epochs, two parallel 1-thread training processes. Each run writes its
   weights, the HF trainer state, per-slice losses and accuracies (per op count, in-range,
   extrapolation, its own training subset) and its weight statistics against the base.
2. **Fit** (``DIR/fit-<mode>/``): :func:`fits.load_runs`, then :func:`fits.fit_tradeoff` on the
   test error (1 − exact-answer accuracy) with bootstrap intervals, and its report.
3. **Certify** (``DIR/certify/<run_id>/``, unless ``certify=False``): the in-distribution
   certificate of each run of the first seed (:func:`fits.experiments.certify_run`): a prior run
   fine-tuned on a random half of the run's training rows with the fine-tune's optimiser steps,
   certified on the other half (KL = 0, exact binomial tail, no Monte Carlo), beside the base
   model's certificate on the same half and the held-out 0-1 error on fresh samples of
   D_train(d). The learnt prior makes the certificate tight; it is not the paper's
   base-relative complexity (it certifies the prior run, not the fine-tune's move from the base).
4. **Report** (``DIR/report.html``, ``DIR/fit.json``, ``DIR/demo.json``): the d*(n) table, the
   plain answer to "did d* move toward harder data as n grew, by how much?", where fine-tuning
   beat the base and by how much, the in-distribution error of each fine-tune on its own
   training mixture against the base's (:func:`fits.experiments.sweep_regime_table`), the
   observed accuracy table, the certificates, weight distance and per-slice accuracy plots.

The task is the calibrated one of ``paper/calibration`` (base range, pre-training steps, test
distribution and the SFT learning rate chosen by a criterion fixed before any d*(n) was seen:
the base solves k <= 2 and fine-tunes learn their own training mixture), with mixtures of width
1.0 and 3 epochs at batch 16; it was not tuned to produce the effect, and the demo reports what
the runs show, including no shift.
"""

from __future__ import annotations

import dataclasses
import html
import json
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from fits.experiments._certify_sweep import BASE_KIND, KIND_TEXT
from fits.results._html import chart_block, html_page, preformatted, section

__all__ = ["DemoResult", "demo_spec", "run_demo"]

#: The grids of the two demo sizes (difficulty centres, budgets, seeds, test problems per op).
FULL = {"centers": [2, 3, 4, 5, 6], "n": [64, 256, 1024], "seeds": [0, 1], "test_per_op": 100}
#: Five difficulty levels even in the quick demo: with three, the fit's shape parameters are not
#: identified and it is refused, so there would be no d*(n) interval. 100 test problems per op
#: count in both, the base's own evaluation set, so the base and the fine-tunes are scored on the
#: same problems.
QUICK = {"centers": [2, 3, 4, 5, 6], "n": [64, 256], "seeds": [0], "test_per_op": 100}
#: The fits of the demo: the gap term uses the KL measured from the weights (K = ||Δw||²,
#: what the demo measures), on the paper's metric (error = 1 − accuracy) and on the test loss.
FIT_MODEL = "sq_dist"
TARGETS = ("error", "loss")
FIT_LABELS = {"error": "test error (1 - exact-answer accuracy)", "loss": "test loss (NLL)"}


def demo_spec(quick: bool = False, *, workers: int = 2, steps_control: bool = False) -> dict:
    """The sweep spec of the demo (a plain dict; see :mod:`fits.sweep._spec`).

    With ``steps_control`` every cell is also run at a fixed number of optimiser steps, equal to
    the steps of the largest budget at 3 epochs, so sample size and compute can be told apart
    (about twice the CPU time).
    """
    grid = QUICK if quick else FULL
    modes = ["epochs", "steps"] if steps_control else ["epochs"]
    steps = 3 * -(-max(grid["n"]) // 16)
    return {
        "name": "demo-quick" if quick else "demo",
        "base": {"kind": "synthetic", "ops": "1-2", "pretrain_steps": 800},
        "task": {"kind": "synthetic", "max_ops": 6, "prime": 7, "test_per_op": grid["test_per_op"]},
        "difficulty": {"kind": "mixture", "centers": grid["centers"], "width": 1.0},
        "budget": {
            "n": grid["n"],
            "modes": modes,
            "epochs": 3,
            "steps": steps,
            "seeds": grid["seeds"],
        },
        "train": {
            "finetune": "full",
            "lr": 1e-3,
            "batch_size": 16,
            "warmup_ratio": 0.1,
            "scheduler": "cosine",
            "logging_steps": 10,
        },
        "eval": {"batch_size": 256},
        "resources": {"threads_per_run": 1, "workers": workers},
    }


@dataclass(frozen=True)
class DemoResult:
    """What the demo found.

    Attributes
    ----------
    out : str
        The output folder.
    quick : bool
    dstar : tuple of dict
        Per (budget_mode, n): the fitted d* with its bootstrap interval and whether it is
        bracketed, and the empirical best difficulty (highest mean test accuracy).
    verdicts : dict
        Per budget mode: the fit's verdict (or why the fit was refused) and the plain statement
        about the observed accuracies.
    observed : DataFrame
        Mean and standard deviation over seeds of test accuracy, in-range and extrapolation
        accuracy, test loss and squared weight distance, per (budget_mode, n, difficulty).
    base_accuracy : float
        The base model's test accuracy (its pre-training evaluation, 100 problems per op).
    timings : dict
        Seconds per phase (sweep, fit, report, total).
    files : dict
        Paths of fit.json, report.html, demo.json and the per-mode fit folders.
    regime : tuple of dict
        Per (budget_mode, n, difficulty), seed means: test accuracy and its gain over the base,
        and the in-distribution error on the run's own training mixture beside the base's
        (:func:`fits.experiments.sweep_regime_table`).
    """

    out: str
    quick: bool
    dstar: tuple[dict, ...]
    verdicts: dict
    observed: pd.DataFrame = field(repr=False)
    base_accuracy: float
    timings: dict
    files: dict
    regime: tuple[dict, ...] = ()
    certificates: tuple[dict, ...] = ()

    def certificate_lines(self) -> list[str]:
        """One row per certified run: certificate, the base's, held-out errors."""
        if not self.certificates:
            return []
        first = self.certificates[0]
        lines = [
            "In-distribution certificates (0-1 error on D_train(d); each holds with probability "
            f">= {1 - first['delta']:g}, on n_B = half of the run's rows; one seed per cell):",
            f"  certificate [{first['certificate_kind']}]: {first['certificate_label']}.",
            f"  base certificate [{BASE_KIND}]: {KIND_TEXT[BASE_KIND]}; on the same n_B rows.",
            f"  {'mode':<7} {'n':>5} {'d':>3} {'seed':>4} {'n_B':>4}  {'certificate':>11} "
            f"{'base cert':>9}  held-out error: {'fine-tune':>9} {'prior run':>9} {'base':>6}",
        ]
        rows = sorted(
            self.certificates, key=lambda r: (r["budget_mode"], r["n"], r["difficulty"], r["seed"])
        )
        for r in rows:
            lines.append(
                f"  {r['budget_mode']:<7} {r['n']:>5} {r['difficulty']:>3g} {r['seed']:>4} "
                f"{r['n_bound']:>4}  {r['certificate']:>11.3f} {r['base_certificate']:>9.3f}  "
                f"{'':>15} {r['held_out_error']:>9.3f} {r['prior_held_out_error']:>9.3f} "
                f"{r['base_held_out_error']:>6.3f}"
            )
        below = sum(r["certificate"] < r["base_certificate"] for r in rows)
        lines.append(
            f"  {below} of {len(rows)} certificates are below the base's on the same rows "
            "(a certified improvement of the prior run over the base); held-out errors on "
            f"{first['n_held_out']} fresh samples per run. Assumptions:"
        )
        lines += [f"  - {a}." for a in first["assumptions"]]
        return lines

    def dstar_table(self) -> str:
        def cell(e: dict | None) -> str:
            if e is None:
                return "refused"
            ci = "" if e["low"] is None else f" [{e['low']:.2f}, {e['high']:.2f}]"
            return f"{e['value']:.2f}{ci}{'' if e['bracketed'] else ' edge'}"

        lines = [f"{'mode':<7} {'n':>6}  {'fit on error':<24} {'fit on loss':<24} observed best d"]
        for r in self.dstar:
            best = f"{r['observed_best_d']:g} (acc {r['observed_best_acc']:.3f})"
            lines.append(
                f"{r['budget_mode']:<7} {r['n']:>6}  {cell(r['error']):<24} "
                f"{cell(r['loss']):<24} {best}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        parts = [
            f"demo{' --quick' if self.quick else ''}: {self.out}",
            "",
            "Mean test accuracy over seeds (rows: budget n; columns: difficulty d); "
            f"base model: {self.base_accuracy:.3f}",
            _pivot_text(self.observed),
            "",
            "d*(n), fitted with bootstrap 95% intervals ('edge': on the edge of the observed "
            "difficulties, not bracketed), and the observed most accurate difficulty:",
            self.dstar_table(),
            "",
        ]
        parts += ["Answer: did d* move toward harder data as n grew?", *self.answer(), ""]
        if self.regime:
            parts += [
                "Where fine-tuning beat the base (test accuracy, best difficulty per budget), and "
                "whether each fine-tune learnt its own training mixture (in-distribution error "
                "on D_train(d): fine-tune vs base, seed means):",
                *self.beat_base_lines(),
                "",
            ]
        if self.certificates:
            parts += [*self.certificate_lines(), ""]
        for mode, v in self.verdicts.items():
            parts.append(f"[{mode}] observed: {v['observed']}")
            for target in TARGETS:
                parts.append(f"[{mode}] fit on {FIT_LABELS[target]}: {v[target]}")
                if v.get(f"{target}_lack_of_fit"):
                    parts.append(f"    {v[f'{target}_lack_of_fit']}")
                for line in v.get(f"{target}_data_dstar", []):
                    parts.append(f"    data's own d*: {line}")
                for w in v.get(f"{target}_warnings", []):
                    parts.append(f"    note: {w}")
        t = self.timings
        parts.append("")
        if t.get("runs_cpu") is not None:
            parts.append(
                f"CPU time of the runs: {t['runs_cpu']:.0f} s (with 2 free cores the sweep needs "
                f"about {t['runs_cpu'] / 2:.0f} s of wall time; more when the cores are shared)."
            )
        if t.get("certify") is not None:
            parts.append(f"time: certificates {t['certify']:.0f} s.")
        parts.append(
            f"time: sweep {t['sweep']:.0f} s, fit {t['fit']:.0f} s, report {t['report']:.0f} s, "
            f"total {t['total']:.0f} s. Report: {self.files.get('report', Path(self.out) / 'report.html')}"
        )
        return "\n".join(parts)

    def beat_base_lines(self) -> list[str]:
        """Per budget mode and n: the best difficulty's gain over the base, and the
        in-distribution errors."""
        lines = []
        rows = sorted(self.regime, key=lambda r: (r["budget_mode"], r["n"], r["difficulty"]))
        keys = sorted({(r["budget_mode"], r["n"]) for r in rows})
        for mode, n in keys:
            cell = [r for r in rows if (r["budget_mode"], r["n"]) == (mode, n)]
            best = max(cell, key=lambda r: r["test_accuracy"])
            gain = best["test_accuracy"] - self.base_accuracy
            beat = [r for r in cell if r["test_accuracy"] > self.base_accuracy]
            verdict = (
                f"best d={best['difficulty']:g} beat the base by {gain:+.3f} "
                f"({best['test_accuracy']:.3f} vs {self.base_accuracy:.3f}); "
                f"{len(beat)} of {len(cell)} difficulties above the base"
                if gain > 0
                else f"no difficulty beat the base (best d={best['difficulty']:g}: "
                f"{best['test_accuracy']:.3f} vs {self.base_accuracy:.3f}, {gain:+.3f})"
            )
            indist = ", ".join(
                f"d={r['difficulty']:g} {r['indist_error']:.3f} vs {r['base_indist_error']:.3f}"
                for r in cell
            )
            lines.append(f"- [{mode}] n={n}: {verdict}. In-distribution error: {indist}.")
        return lines

    def answer(self) -> list[str]:
        """One plain line per budget mode and metric: did d* move harder as n grew, how much."""
        lines = []
        for mode in self.verdicts:
            rows = [r for r in self.dstar if r["budget_mode"] == mode]
            first, last = rows[0], rows[-1]
            span = f"from n={first['n']} to n={last['n']}"
            d0, d1 = first["observed_best_d"], last["observed_best_d"]
            if d1 > d0:
                obs = f"moved harder, from d={d0:g} to d={d1:g} (+{d1 - d0:g})"
            elif d1 < d0:
                obs = f"moved easier, from d={d0:g} to d={d1:g} ({d1 - d0:g})"
            else:
                obs = f"stayed at d={d0:g} (at the smallest and at the largest budget)"
            lines.append(
                f"- [{mode}] accuracy, observed grid points: the most accurate difficulty {obs} "
                f"{span}."
            )
            for target in TARGETS:
                e0, e1 = first[target], last[target]
                if e0 is None or e1 is None:
                    lines.append(
                        f"- [{mode}] {FIT_LABELS[target]}, fitted: the fit was refused "
                        "(see below), so no fitted d*(n)."
                    )
                    continue

                def est(e: dict) -> str:
                    ci = "" if e["low"] is None else f" [{e['low']:.2f}, {e['high']:.2f}]"
                    return f"{e['value']:.2f}{ci}{'' if e['bracketed'] else ' (edge)'}"

                delta = e1["value"] - e0["value"]
                p = self.verdicts[mode].get(f"{target}_p_increase")
                ptxt = "" if p is None else f", P(increase) = {p:.2f} over the bootstrap refits"
                word = "harder" if delta > 0 else "easier" if delta < 0 else "nowhere"
                lines.append(
                    f"- [{mode}] {FIT_LABELS[target]}, fitted: d* moved {word} by {delta:+.2f}, "
                    f"from {est(e0)} to {est(e1)} {span}{ptxt}."
                )
        return lines

    def to_dict(self) -> dict:
        return {
            "out": self.out,
            "quick": self.quick,
            "answer": self.answer(),
            "dstar": list(self.dstar),
            "verdicts": self.verdicts,
            "observed": json.loads(self.observed.to_json(orient="records")),
            "base_accuracy": self.base_accuracy,
            "timings": self.timings,
            "files": {k: str(v) for k, v in self.files.items()},
            "beat_base": self.beat_base_lines(),
            "regime": list(self.regime),
            "certificates": list(self.certificates),
        }


def _pivot_text(observed: pd.DataFrame) -> str:
    out = []
    for mode, g in observed.groupby("budget_mode"):
        piv = g.pivot(index="n", columns="difficulty", values="test_acc")
        piv.columns = [f"d={c:g}" for c in piv.columns]
        out.append(f"[{mode}]\n" + piv.to_string(float_format=lambda x: f"{x:.3f}"))
    return "\n".join(out)


def _observed(runs: pd.DataFrame) -> pd.DataFrame:
    cols = {
        "test_acc": "test_acc",
        "test_acc_inrange": "inrange_acc",
        "test_acc_extrap": "extrap_acc",
        "test_loss": "test_loss",
        "sq_dist": "sq_dist",
        "train_acc": "train_acc",
    }
    keys = ["budget_mode", "n", "difficulty"]
    g = runs.groupby(keys)
    frame = g[list(cols)].mean().rename(columns=cols)
    sd = g["test_acc"].std(ddof=1).rename("test_acc_sd")
    return pd.concat([frame, sd, g.size().rename("seeds")], axis=1).reset_index()


def _regime_rows(sweep: Path, planned: set[str]) -> tuple[dict, ...]:
    """Seed means per (budget_mode, n, difficulty) of the in-distribution table of the grid."""
    from fits.experiments._regime import RegimeTable, sweep_regime_table

    table = sweep_regime_table(sweep)
    runs = table.runs[table.runs["run_id"].isin(planned)].reset_index(drop=True)
    cells = RegimeTable(runs, table.base_test_accuracy, table.base_per_op).cells()
    keep = ["budget_mode", "n", "difficulty", "seeds", "test_accuracy", "test_gain"]
    keep += ["indist_error", "base_indist_error", "indist_gain"]
    return tuple(json.loads(cells[keep].to_json(orient="records")))


def _observed_verdict(obs: pd.DataFrame, base_acc: float) -> tuple[list[dict], str]:
    rows = []
    for n, g in obs.groupby("n"):
        best = g.loc[g["test_acc"].idxmax()]
        rows.append(
            {
                "n": int(n),
                "d": float(best["difficulty"]),
                "acc": float(best["test_acc"]),
                "sd": float(best["test_acc_sd"]) if pd.notna(best["test_acc_sd"]) else None,
                "beats_base": bool(best["test_acc"] > base_acc),
            }
        )
    first, last = rows[0], rows[-1]
    move = last["d"] - first["d"]
    direction = (
        "moved toward harder data"
        if move > 0
        else "moved toward easier data"
        if move < 0
        else "did not move"
    )
    spread = "; ".join(
        f"n={r['n']}: d={r['d']:g} (acc {r['acc']:.3f}"
        + (f" ± {r['sd']:.3f} sd over seeds" if r["sd"] is not None else ", one seed")
        + ("" if r["beats_base"] else ", not above the base")
        + ")"
        for r in rows
    )
    text = (
        f"the most accurate difficulty {direction} as n grew ({move:+g} from n={first['n']} "
        f"to n={last['n']}): {spread}. Base model accuracy {base_acc:.3f}."
    )
    return rows, text


def run_demo(
    out: str | Path,
    *,
    quick: bool = False,
    workers: int = 2,
    n_resamples: int | None = None,
    progress: bool = True,
    steps_control: bool = False,
    certify: bool = True,
) -> DemoResult:
    """Run the demo into ``out`` (see the module docstring) and return what it found.

    Parameters
    ----------
    out : path
        Output folder; a rerun resumes the sweep inside it.
    quick : bool
        The small grid (5 difficulties x 2 budgets x 1 seed) instead of the full one
        (4 x 3 x 2).
    workers : int
        Parallel training processes (1 torch thread each).
    n_resamples : int, optional
        Bootstrap refits of the fit (default 200 quick, 500 full).
    progress : bool
        Progress bars and stage messages on the terminal.
    steps_control : bool
        Also run every cell at a fixed number of steps (the control that separates sample size
        from compute); the report then shows both budget modes, each d*(n) labelled.
    certify : bool
        Certify each run of the first seed (module docstring, step 4); ``False`` skips it.
    """
    from fits import FitConfig, fit_tradeoff, load_runs, save_chart, write_report
    from fits.sweep._api import run_sweep
    from fits.sweep._bases import resolve_base
    from fits.sweep._charts import sweep_charts
    from fits.sweep._spec import SweepSpec
    from pacbound.exceptions import TradeoffError
    from pacbound.support import atomic_write_text, write_json

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec = SweepSpec.from_dict(
        demo_spec(quick, workers=workers, steps_control=steps_control), "demo spec"
    )
    sweep = run_sweep(spec, out / "sweep", workers=workers, progress=progress)
    if sweep.failed:
        errors = "; ".join(r.get("error", "") for r in sweep.results if r["status"] == "failed")
        raise TradeoffError(f"{sweep.failed} demo runs failed ({errors}); rerun to retry them.")
    t_sweep = time.perf_counter() - t0
    meta = json.loads((resolve_base(spec) / "pretrain_meta.json").read_text())
    base_acc = float(meta["eval"]["test_accuracy"])

    t1 = time.perf_counter()
    from fits.sweep._runner import load_plan

    planned = {r.run_id for r in load_plan(out / "sweep").runs}
    runs = load_runs(out / "sweep")
    runs = runs[runs["run_id"].isin(planned)].reset_index(drop=True)  # this demo's grid only
    observed = _observed(runs)
    regime = _regime_rows(out / "sweep", planned)
    resamples = n_resamples if n_resamples is not None else (200 if quick else 500)
    fitted: dict[tuple[str, str], Any] = {}
    verdicts: dict[str, dict] = {}
    dstar_rows: list[dict] = []
    for mode, sub in runs.groupby("budget_mode"):
        obs_rows, obs_text = _observed_verdict(observed[observed["budget_mode"] == mode], base_acc)
        verdicts[mode] = {"observed": obs_text}
        estimates: dict[str, dict] = {}
        for target in TARGETS:
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    fit = fit_tradeoff(
                        sub,
                        FitConfig(model=FIT_MODEL, target=target, n_resamples=resamples, seed=0),
                    )
                verdicts[mode][f"{target}_warnings"] = [str(w.message) for w in caught]
            except TradeoffError as exc:
                verdicts[mode][target] = f"fit refused: {exc}"
                verdicts[mode][f"{target}_code"] = "refused"
                estimates[target] = {}
                continue
            fitted[(mode, target)] = fit
            verdicts[mode][target] = fit.verdict
            verdicts[mode][f"{target}_code"] = fit.verdict_code
            verdicts[mode][f"{target}_p_increase"] = fit.p_increase
            verdicts[mode][f"{target}_lack_of_fit"] = (
                None if fit.lack_of_fit is None else fit.lack_of_fit.verdict
            )
            verdicts[mode][f"{target}_data_dstar"] = [str(e) for e in fit.model_free]
            estimates[target] = {float(e.n): e for e in fit.d_star}
        for r in obs_rows:
            row = {
                "budget_mode": mode,
                "n": r["n"],
                "observed_best_d": r["d"],
                "observed_best_acc": r["acc"],
            }
            for target in TARGETS:
                e = estimates[target].get(float(r["n"]))
                row[target] = (
                    None
                    if e is None
                    else {k: v for k, v in e.as_row().items() if k != "n"}
                )
            dstar_rows.append(row)
    t_fit = time.perf_counter() - t1

    t_cert = time.perf_counter()
    certificates: tuple[dict, ...] = ()
    if certify:
        certificates = _certify(out, spec, workers, progress)
        regime = _with_certificates(regime, certificates)
    t_cert = time.perf_counter() - t_cert if certify else None

    t2 = time.perf_counter()
    cpu_col = "timing.cpu_seconds"
    runs_cpu = (
        float(runs[cpu_col].sum()) if cpu_col in runs and runs[cpu_col].notna().all() else None
    )
    files: dict[str, Path] = {}
    for (mode, target), fit in fitted.items():
        folder = out / f"fit-{mode}-{target}"
        written = write_report(fit, folder)
        files[f"fit_{mode}_{target}"] = folder
        if "fit" not in files:  # the first fitted one, in the order of TARGETS (error first)
            with open(written["fit"], encoding="utf-8") as fh:
                atomic_write_text(out / "fit.json", fh.read())
            files["fit"] = out / "fit.json"
    if "fit" not in files:
        write_json(out / "fit.json", {"status": "refused", "verdicts": verdicts})
        files["fit"] = out / "fit.json"
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    images, specs = {}, {}
    for name, chart in sweep_charts(runs).items():
        images[name] = save_chart(chart, plots / name)["png"]
        specs[name] = chart.to_dict()
    files["report"] = out / "report.html"
    files["demo"] = out / "demo.json"
    result = DemoResult(
        str(out),
        quick,
        tuple(dstar_rows),
        verdicts,
        observed,
        base_acc,
        {
            "sweep": t_sweep,
            "fit": t_fit,
            "report": time.perf_counter() - t2,
            "total": time.perf_counter() - t0,
            "runs_cpu": runs_cpu,
            "certify": t_cert,
        },
        files,
        regime,
        certificates,
    )
    page = _demo_html(result, spec, sweep, fitted, images, specs, out)
    atomic_write_text(out / "report.html", page)
    timings = {**result.timings, "report": time.perf_counter() - t2}
    result = dataclasses.replace(result, timings={**timings, "total": time.perf_counter() - t0})
    write_json(out / "demo.json", result.to_dict())
    return result


def _certify(out: Path, spec: Any, workers: int, progress: bool) -> tuple[dict, ...]:
    """Certificates of the first seed's runs (module docstring, step 4), as flat records."""
    from fits.experiments._certify_sweep import certify_sweep_runs
    from fits.sweep._runner import load_plan

    plan = load_plan(out / "sweep")
    first = min(r.seed for r in plan.runs)
    runs = [r for r in plan.runs if r.seed == first]
    if progress:
        print(
            f"certifying {len(runs)} runs (a prior run on half the rows of each) ...",
            file=sys.stderr,
        )
    certs = certify_sweep_runs(out / "sweep", runs, out / "certify", workers=workers)
    return tuple(c.record() for c in certs)


def _with_certificates(regime: tuple[dict, ...], certs: tuple[dict, ...]) -> tuple[dict, ...]:
    """Each (budget_mode, n, difficulty) cell with its certified run's values beside it."""
    by_cell = {(c["budget_mode"], c["n"], c["difficulty"]): c for c in certs}
    keys = ("certificate", "certificate_kind", "base_certificate", "held_out_error")
    out = []
    for row in regime:
        c = by_cell.get((row["budget_mode"], row["n"], float(row["difficulty"])))
        extra = {} if c is None else {k: c[k] for k in keys} | {"certificate_seed": c["seed"]}
        out.append({**row, **extra})
    return tuple(out)


def _demo_html(result: DemoResult, spec, sweep, fitted, images, specs, out: Path) -> str:
    esc = html.escape
    blocks = [
        "<p>Synthetic iGSM-like task (difficulty = number of operations, 6 op slots), the "
        "shipped calibrated base pre-trained on 1-2 operations (it solves those and is near "
        "chance beyond), full fine-tuning on Gaussian difficulty mixtures "
        "centred at d. Budget modes: <b>epochs</b> (3 epochs, the number of steps grows with n)"
        + (
            f" and <b>steps</b> ({spec['budget.steps']} optimiser steps whatever n: the control "
            "that separates sample size from compute)"
            if "steps" in spec["budget.modes"]
            else ""
        )
        + ". Test set: uniform over 1-6 operations. Every d*(n) below is labelled with its "
        "budget mode.</p>",
        preformatted(str(result)),
    ]
    for (mode, target), fit in fitted.items():
        name = f"fit-{mode}-{target}"
        charts = [
            chart_block(plot, png, level=3)
            for plot in ("fit", "dstar", "heatmap")
            if (png := out / name / "plots" / f"{plot}.png").is_file()
        ]
        blocks.append(
            section(
                f"Fit: {FIT_LABELS[target]}, {mode} mode",
                f"<p>Full fit report: <a href='{esc(name)}/report.html'>{esc(name)}/report.html</a>"
                "</p>",
                fit.summary().html,
                *charts,
            )
        )
    captions = {
        "slices": "Test accuracy by slice: in-range (the base's op counts) and extrapolation.",
        "weight_distance": "Squared distance of the fine-tuned weights to the base.",
        "per_op": "Accuracy per test op count k (the paper's decomposed evaluation).",
    }
    blocks += [
        chart_block(name, path, heading=captions[name], spec=specs.get(name))
        for name, path in images.items()
    ]
    blocks += [section("Sweep spec", preformatted(spec.to_json())), f"<p>{esc(str(sweep))}</p>"]
    return html_page("sft-tradeoff demo", "Data difficulty vs. budget: the demo", blocks)
