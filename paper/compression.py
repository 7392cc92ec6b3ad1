"""The base-relative (compression, Occam) certificates of calibrated cells (issue 11, item 4).

Stage (by hand; 5-15 min of CPU each): ``python -m fits.experiments._compression_run --sweep
paper/runs/<folder> --seed S --d D --n N --dimension ... --out
paper/results/compression-calibrated/<name>.json``; an attempt stopped before its record was
written leaves only its ``.log``. Every saved attempt is shown; none is dropped.

The bound holds for every quantised subspace model at once (its code is fixed in advance: the
(D, K, seed) grids, the level histogram, the float16 codebook, the arithmetic code), so picking
the best of several attempts on one cell costs nothing more: the training knobs (steps,
learning rates) are a search for a model with a short code, not part of its description.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter

import numpy as np
import pandas as pd
from paths import RESULTS
from tables import md_table

from measurement import occam_code_allowed

COMPRESSION = RESULTS / "compression-calibrated"
SUMMARY_CELLS = 8
"""Up to this many cells, the summary line lists each; beyond, it counts them."""


def _records() -> list[tuple[str, dict]]:
    """(file name, record) of every saved compression attempt."""
    return [
        (path.name, r)
        for path in sorted(COMPRESSION.glob("*.json"))
        for r in json.loads(path.read_text(encoding="utf-8"))
    ]


def _attempt(name: str, r: dict, guess_error: float) -> dict:
    res, cfg = r["result"], r["config"]
    held = r.get("heldout_errors") or {}
    delta = float(cfg.get("delta", 0.05))
    return {
        "file": name,
        "d": r["difficulty"],
        "n": r["n"],
        "seed": r.get("seed", "–"),
        "D": cfg["dimension"],
        "K": cfg.get("levels", "–"),
        "P seed": cfg.get("seed", 0),
        "subspace steps": cfg.get("steps", "–"),
        "quantiser × steps": (
            f"{cfg.get('quantiser', 'ste')} × {cfg.get('qat_steps', '–')} at lr {cfg.get('qat_lr', '–')}"
            + _selection(cfg, res)
        ),
        "base err": res["base_error"],
        "subspace err": res["subspace_error"],
        "quantised err": res["train_error"],
        "held-out (quantised)": held.get("quantised", math.nan),
        "code (nats)": res["code"]["nats"],
        "code allowed": max(
            occam_code_allowed(res["train_error"], guess_error, r["n"], delta), 0.0
        ),
        "certificate": r["certificate"],
        "base cert.": r["base_certificate"],
        "non-vacuous": r["certificate"] < guess_error,
        "below base": r["certificate"] < r["base_certificate"],
    }


def _selection(cfg: dict, res: dict) -> str:
    """How the quantised iterate was chosen: ``""`` (the last), or the lowest certificate (or,
    in records made before the certificate was the criterion, the lowest training error) of
    those certified every k steps."""
    every = cfg.get("qat_select_every")
    if not every:
        return ""
    trace = res.get("qat_trace") or [()]
    by = "training error" if len(trace[0]) == 2 else "certificate"
    return f", lowest {by} of every {every}"


def _budget(n: int, seed: object) -> str:
    """``n = 4096, seed 0`` (the seed left out when the record has none)."""
    return f"n = {int(n)}" + ("" if seed == "–" else f", seed {seed}")


def _cell(d: float, n: int, seed: object) -> str:
    """``d = 2, n = 4096, seed 0``."""
    return f"d = {d:g}, {_budget(n, seed)}"


def _attempts(found: list[tuple[str, dict]], guess_error: float) -> pd.DataFrame:
    """One row per saved attempt (:func:`_attempt`)."""
    return pd.DataFrame([_attempt(name, r, guess_error) for name, r in found])


def compression_table(
    guess_error: float, records: list[tuple[str, dict]] | None = None, *, logs: bool = True
) -> str:
    """Every attempt: errors through the stages, code against the code a certificate below
    ``guess_error`` allows at its quantised training error, certificate against the base's;
    with ``logs``, a line for each attempt stopped before its record was written."""
    found = _records() if records is None else records
    if not found:
        return ""
    rows = _attempts(found, guess_error)
    rows["code (nats)"] = rows["code (nats)"].round(0).astype(int)
    rows["code allowed"] = rows["code allowed"].round(0).astype(int)
    rows["non-vacuous"] = rows["non-vacuous"].map({True: "yes", False: "no"})
    rows["below base"] = rows["below base"].map({True: "yes", False: "no"})
    lines = [md_table(rows, ".3f")]
    for path in sorted(COMPRESSION.glob("*.log")) if logs else ():
        if path.with_suffix(".json").is_file():
            continue
        text = path.read_text(encoding="utf-8").strip().splitlines()
        stage = (
            "after the subspace stage"
            if any("subspace:" in line for line in text)
            else "before its subspace training ended"
        )
        lines.append(f"- {path.stem} (stopped {stage}, no record): " + "; ".join(text) + ".")
    return "\n\n".join(lines)


def compression_conclusion(
    guess_error: float, records: list[tuple[str, dict]] | None = None
) -> str:
    """What the attempts show, from their records: where the subspace learnt (training error at
    least 0.05 below the base's), which certificates are below guessing and below the base's,
    and how far the best attempt per cell is from non-vacuous."""
    found = _records() if records is None else records
    if not found:
        return ""
    rows = _attempts(found, guess_error)
    learnt = rows[rows["subspace err"] <= rows["base err"] - 0.05]
    stuck = sorted(set(rows["D"]) - set(learnt["D"]))
    lines = [
        f"- The subspace learns (training error at least 0.05 below the base's) in "
        f"{len(learnt)} of {len(rows)} attempts"
        + (f"; not at D = {', '.join(map(str, stuck))}" if stuck else "")
        + "."
    ]
    good = rows[rows["non-vacuous"] & rows["below base"]]
    below = rows[rows["below base"]]
    lines.append(
        f"- Below the guessing error {guess_error:.3f}: {int(rows['non-vacuous'].sum())} of "
        f"{len(rows)}; below the base's own certificate (a base-relative certificate that "
        f"fine-tuning helped): {len(below)}; both: {len(good)}."
    )
    for (d, n, seed), cell in rows.groupby(["d", "n", "seed"]):
        best = cell.loc[cell["certificate"].idxmin()]
        learnt_cell = cell[cell["subspace err"] <= cell["base err"] - 0.05]
        verdict = (
            "non-vacuous and below the base's"
            if best["non-vacuous"] and best["below base"]
            else "below the base's but not below guessing"
            if best["below base"]
            else "non-vacuous but not below the base's (the base already does better)"
            if best["non-vacuous"]
            else "neither below guessing nor below the base's"
        )
        text = (
            f"- {_cell(d, n, seed)} ({len(cell)} attempt{'s' * (len(cell) > 1)}): "
            f"best certificate "
            f"{best['certificate']:.3f} (D = {best['D']}, K = {best['K']}) against the base's "
            f"{best['base cert.']:.3f}: {verdict}"
        )
        if best["subspace err"] > best["base err"] - 0.05:
            text += " (its subspace did not learn: it certifies a model no better than the base)"
            better = cell[cell["quantised err"] < cell["base err"]]
            if len(better):
                pick = better.loc[better["certificate"].idxmin()]
                text += (
                    f"; of a compressed model better than the base on its rows (training error "
                    f"{pick['quantised err']:.3f} vs {pick['base err']:.3f}): "
                    f"{pick['certificate']:.3f} (D = {pick['D']}, K = {pick['K']}), "
                    + ("non-vacuous" if pick["non-vacuous"] else "not below guessing")
                )
        text += "."
        if not best["non-vacuous"] and len(learnt_cell):
            closest = learnt_cell.loc[
                (learnt_cell["code (nats)"] / learnt_cell["code allowed"].where(lambda s: s > 0))
                .fillna(math.inf)
                .idxmin()
            ]
            if closest["code allowed"] > 0:
                text += (
                    f" The closest to non-vacuous codes {closest['code (nats)']:.0f} nats where "
                    f"its quantised training error {closest['quantised err']:.3f} allows "
                    f"{closest['code allowed']:.0f}: {closest['code (nats)'] / closest['code allowed']:.2f}x "
                    "too long."
                )
        lines.append(text)
    lines += _across_difficulty(rows)
    return "\n".join(lines)


def _spearman_null(values: list[float], ds: list[float]) -> tuple[float, Counter]:
    """Spearman's ρ of ``values`` with ``ds`` and its exact null distribution.

    Under the null (no ordering with d) every assignment of the values to the difficulties is
    equally likely, so the null distribution of ρ is that of the k! permutations of the values
    (k ≤ 8 here); ρ is rounded to 12 digits so that equal values share one key. Values equal at
    every d have no ρ (NaN) and a null that is 0 with certainty (they add nothing to a pooled sum).
    """
    if len(set(values)) == 1:
        return math.nan, Counter({0.0: 1})
    observed = pd.Series(values).corr(pd.Series(ds), method="spearman")
    null: Counter = Counter(
        round(pd.Series(perm).corr(pd.Series(ds), method="spearman"), 12)
        for perm in itertools.permutations(values)
    )
    return float(observed), null


def _rho(value: float) -> str:
    """ρ signed to two decimals; a dash where it is undefined (values equal at every d)."""
    return "–" if math.isnan(value) else f"{value:+.2f}"


def _tail_p(observed: float, null: Counter, upper: bool = True) -> float:
    """P(statistic ≥ observed) under ``null`` (a count of statistic values), ties included;
    P(statistic ≤ observed) with ``upper=False``."""
    sign = 1.0 if upper else -1.0
    hits = sum(c for v, c in null.items() if sign * (v - observed) >= -1e-9)
    return hits / sum(null.values())


def _convolve(a: Counter, b: Counter) -> Counter:
    """The distribution of the sum of two independent statistics given as counts."""
    out: Counter = Counter()
    for va, ca in a.items():
        for vb, cb in b.items():
            out[round(va + vb, 9)] += ca * cb
    return out


def _ordering(rho: float, null: Counter, what: str) -> str:
    """The verdict of an exact one-sided permutation test of ρ in each direction, at 0.05."""
    if math.isnan(rho):
        return f"the {what} is the same at every d"
    p_up, p_down = _tail_p(rho, null), _tail_p(rho, null, upper=False)
    if p_up < 0.05:
        return f"{what} rises with d (exact one-sided permutation p = {p_up:.3f})"
    if p_down < 0.05:
        return f"{what} falls with d (exact one-sided permutation p = {p_down:.3f})"
    return (
        f"no ordering of the {what} with d that these cells can show (exact permutation p = "
        f"{min(p_up, p_down):.2f} in the likelier direction)"
    )


def _across_difficulty(rows: pd.DataFrame) -> list[str]:
    """Base-relative complexity against difficulty: cells of one budget certified with one
    recipe (D, K, steps, quantiser), at least three difficulties; then, per budget, the recipes
    pooled by a stratified exact permutation test (the sum of the per-recipe Spearman ρ, d
    permuted within each recipe), so that a recipe's effort never stands in for difficulty."""
    out = []
    pooled: dict[int, list[dict[str, tuple[float, Counter]]]] = {}
    recipe = ["n", "seed", "D", "K", "P seed", "subspace steps", "quantiser × steps"]
    for key, group in rows.groupby(recipe):
        per_d = group.groupby("d").agg(
            code=("code (nats)", "mean"),
            error=("quantised err", "mean"),
            cert=("certificate", "mean"),
        )
        if len(per_d) < 3:
            continue
        n, seed, dim, levels, _, steps, quant = key
        ds = [float(d) for d in per_d.index]
        rho, null = _spearman_null(list(per_d["cert"]), ds)
        rho_code, null_code = _spearman_null(list(per_d["code"]), ds)
        pooled.setdefault(int(n), []).append(
            {"certificate": (rho, null), "code length": (rho_code, null_code)}
        )
        out.append(
            f"- Across difficulty at {_budget(n, seed)}, with one recipe (D = {dim}, K = {levels}, "
            f"{steps} subspace steps, quantiser {quant}): d = "
            + ", ".join(f"{d:g}" for d in per_d.index)
            + ": code "
            + " / ".join(f"{v:.0f}" for v in per_d["code"])
            + " nats, quantised training error "
            + " / ".join(f"{v:.3f}" for v in per_d["error"])
            + ", certificate "
            + " / ".join(f"{v:.3f}" for v in per_d["cert"])
            + f" (Spearman ρ with d: code {_rho(rho_code)}, certificate {_rho(rho)}): "
            + _ordering(rho, null, "certificate")
            + "."
        )
    for n, strata in sorted(pooled.items()):
        if len(strata) < 2:
            continue
        verdicts = []
        for what in ("code length", "certificate"):
            null = Counter({0.0: 1})
            for stratum in strata:
                null = _convolve(null, stratum[what][1])
            total = round(sum(np.nan_to_num(stratum[what][0]) for stratum in strata), 9)
            verdicts.append(
                f"summed Spearman ρ of the {what} with d {total:+.2f} (at most "
                f"{max(null):+.2f}): " + _ordering(total, null, what)
            )
        out.append(
            f"- Pooled at n = {n} ({len(strata)} recipe × seed groups above, d permuted within "
            "each, so a recipe's effort never stands in for difficulty): "
            + "; ".join(verdicts)
            + "."
        )
    return out


def compression_goal(
    runs: pd.DataFrame, guess_error: float, records: list[tuple[str, dict]] | None = None
) -> str:
    """The goal *a base-relative certificate non-vacuous wherever the fine-tune beats the base*.

    ``runs`` holds the sweeps' runs (``difficulty``, ``n``, ``seed``, ``held_out_error``,
    ``base_held_out_error``, ``budget_mode``, and optionally ``out_of_reach``: the fine-tune's
    own error is at or above guessing at its lower confidence bound, so no certificate of it
    can be below guessing). A run counts as beating the base when its
    held-out error is below the base's; its cell (d, n, seed) has the same training rows in
    every sweep of one task, so the best compression attempt on those rows is its base-relative
    certificate. Only attempts whose quantised model has a lower training error than the base
    count: the base's own zero-bit certificate is base-relative too, and a compressed model no
    better than the base says nothing about fine-tuning. Also states, per budget, the longest
    code a certificate below guessing allows at zero training error,
    n·kl(0 ‖ guess) − ln(1/δ) = n·ln(1/(1 − guess)) − ln(1/δ).
    """
    found = _records() if records is None else records
    rows = _attempts(found, guess_error) if found else pd.DataFrame()
    if len(rows):
        rows = rows[rows["quantised err"] < rows["base err"]]
    best = (
        {
            (float(d), int(n), int(seed)): bool(cell["non-vacuous"].any())
            for (d, n, seed), cell in rows.groupby(["d", "n", "seed"])
            if seed != "–"
        }
        if len(rows)
        else {}
    )
    beats = runs[runs["held_out_error"] < runs["base_held_out_error"]]
    keys = [(float(r.difficulty), int(r.n), int(r.seed)) for r in beats.itertuples()]
    met = sum(best.get(k) is True for k in keys)
    failed = sum(best.get(k) is False for k in keys)
    untried = pd.Series([k[1] for k in keys if k not in best], dtype=int).value_counts()
    delta = 0.05 if not len(rows) else float(found[0][1]["config"].get("delta", 0.05))
    zero_error = ", ".join(
        f"{max(occam_code_allowed(0.0, guess_error, int(n), delta), 0.0):,.0f} at n = {int(n)}"
        for n in sorted(set(runs["n"]))
    )
    gone = (
        int(beats["out_of_reach"].sum()) if "out_of_reach" in beats.columns else 0
    )  # no certificate of the fine-tune can be below guessing
    reach = (
        f" {gone} of the {len(keys)} {'is' if gone == 1 else 'are'} out of reach of any "
        "certificate below guessing, by any method: the fine-tune's own error, at its lower confidence bound from the held-out "
        "samples, is at or above guessing."
        if gone
        else ""
    )
    verdict = "**met**" if met == len(keys) else "**not met**"
    return (
        f"- Goal *a base-relative certificate non-vacuous wherever the fine-tune beats the "
        f"base*: {verdict}. The fine-tune's held-out error is below the base's in {len(keys)} "
        f"of {len(runs)} runs (both sweeps; a cell's training rows are the same in each); the "
        f"best compression certificate of the run's own rows (of a quantised model whose "
        f"training error is below the base's) is below guessing for {met} of them, tried but "
        f"not below guessing for {failed}, not tried (or no such model) for "
        f"{len(keys) - met - failed}"
        + (
            " (" + ", ".join(f"{count} at n = {n}" for n, count in sorted(untried.items())) + ")"
            if len(untried)
            else ""
        )
        + f".{reach} Even at zero training error a certificate below guessing needs a code "
        f"under {zero_error} nats (n·kl(0 ‖ {guess_error:.3f}) − ln(1/δ))."
    )


def compression_section(guess_error: float, runs: pd.DataFrame | None = None) -> list[str]:
    """The report's compression subsection (empty without records); with the sweeps' ``runs``,
    the goal line of :func:`compression_goal` after the table."""
    found = _records()
    if not found:
        return []
    return [
        "#### Base-relative: the compression (Occam) certificate on calibrated cells",
        "The learnt-prior certificates above are tight but say nothing about the move from the "
        "base. The compression certificate keeps the paper's meaning (bits to describe the "
        "fine-tune given the base): training in a random subspace of dimension D around the "
        "base, quantised to K levels, arithmetic-coded; the certificate is kl⁻¹ of the "
        "quantised model's training error at that code length (Occam bound, no Monte Carlo), "
        "on the run's own n training rows. *Code allowed* is the longest code whose "
        f"certificate would be below the guessing error {guess_error:.3f} at that training "
        "error. The bound holds for every quantised model at once (its code is fixed in "
        "advance), so the best of several attempts on a cell is certified at no extra cost; "
        "for the same reason, attempts marked *lowest certificate of every k* certify the "
        "quantised model every k quantisation-aware steps and keep the lowest (its training "
        "error moves by several points from one such iterate to the next). The rows of a cell "
        "(d, n, seed) are the same in both calibrated sweeps. Every attempt made:",
        compression_table(guess_error, found),
        compression_conclusion(guess_error, found)
        + ("" if runs is None else "\n" + compression_goal(runs, guess_error, found)),
    ]


def compression_summary(guess_error: float, records: list[tuple[str, dict]] | None = None) -> str:
    """One summary line: the best base-relative (compression) certificate per cell tried (with
    more than :data:`SUMMARY_CELLS` cells: the counts, and the cells not below guessing)."""
    found = _records() if records is None else records
    if not found:
        return ""
    rows = _attempts(found, guess_error)
    cells = []
    for (d, n, seed), cell in rows.groupby(["d", "n", "seed"]):
        best = cell.loc[cell["certificate"].idxmin()]
        marks = [
            "below the base's" if best["below base"] else "not below the base's",
            "non-vacuous" if best["non-vacuous"] else "not below guessing",
        ]
        cells.append(
            (
                f"{_cell(d, n, seed)}: {best['certificate']:.3f} vs the base's "
                f"{best['base cert.']:.3f} ({', '.join(marks)})",
                bool(best["non-vacuous"]),
                bool(best["below base"]),
            )
        )
    head = (
        f"- Base-relative (compression) certificates, {len(rows)} attempts on {len(cells)} "
        f"calibrated cells (best per cell)"
    )
    if len(cells) <= SUMMARY_CELLS:
        return head + ": " + "; ".join(text for text, _, _ in cells) + "."
    vacuous = [text for text, ok, _ in cells if not ok]
    return (
        head + f": below guessing in {sum(ok for _, ok, _ in cells)} of {len(cells)} cells, below "
        f"the base's own certificate in {sum(below for _, _, below in cells)}"
        + (f"; not below guessing: {'; '.join(vacuous)}" if vacuous else "")
        + " (every cell in section 6)."
    )
