"""The real-LM section of paper/REPORT.md, filled from ``paper/runs/<name>`` once it has runs.

The sweep (SmolLM2-135M with LoRA on the synthetic task rendered as chat) is written by
``tradeoff sweep run paper/specs/<name>.toml``; its runs carry the same files as the synthetic
sweeps (``run_meta.json``, ``eval_results.json``, ``weight_stats.json``), so the same tables
apply: accuracy per (d, n), the best difficulty with its seed-resampling probability, the
in-distribution error beside the base's where the base's per-op evaluation exists, the weight
distance, the fits, and the sweep's cost.
"""

from __future__ import annotations

import json

import pandas as pd
from paths import RESULTS, ROOT, RUNS, SWEEPS, finished_folders
from tables import accuracy_table, dstar_table, gain_table, indist_table, md_table, observed_dstar


def _spec_line(name: str) -> str:
    """Model, fine-tuning and budget of the sweep, from its recorded ``sweep.json``."""
    folder = RUNS / SWEEPS[name][0]
    try:
        spec = json.loads((folder / "sweep.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    base, train, budget = spec.get("base", {}), spec.get("train", {}), spec.get("budget", {})
    task = spec.get("task", {})
    model = base.get("path") or base.get("kind", "?")
    if base.get("kind") == "synthetic":
        model += f" (pre-trained on ops {base.get('ops')})"
    ft = train.get("finetune", "?")
    lora = (
        f" (r = {train.get('lora_r')}, alpha = {train.get('lora_alpha')}, targets "
        f"{', '.join(train.get('lora_targets', []))})"
        if ft == "lora"
        else ""
    )
    return (
        f"Base `{model}`, {ft} fine-tuning{lora}, lr {train.get('lr')}, batch "
        f"{train.get('batch_size')}; budgets n = {budget.get('n')} in mode(s) "
        f"{budget.get('modes')}, seeds {budget.get('seeds')}; task `{task.get('kind')}`"
        + (" rendered as chat" if task.get("chat") else "")
        + "."
    )


def _cost(frame: pd.DataFrame) -> str:
    parts = []
    for col, what in (("timing.total_seconds", "wall"), ("timing.cpu_seconds", "CPU")):
        if col in frame.columns and frame[col].notna().any():
            parts.append(f"{frame[col].sum() / 60:.1f} min {what}")
    devices = (
        ", ".join(sorted(frame["device"].dropna().astype(str).unique()))
        if "device" in frame.columns
        else "?"
    )
    return f"{'; '.join(parts) or 'cost not recorded'} over {len(frame)} runs (device: {devices})"


#: Which run of the real-LM sweep is certified, fixed before its runs finished: the easiest
#: difficulty at the largest budget, seed 0 (where a certificate has the best chance to bite).
CERTIFY_RULE = "easiest difficulty, largest budget, seed 0"
N_BOUND = 1024
DELTA = 0.05


def run_llm_stage(name: str, tradeoff, log: list[str]) -> dict | None:
    """For the real-LM sweep: score its base on the test set, read one run's weights in
    adapter and weight space, and certify one run on fresh bound samples (saved, reused)."""
    folders = finished_folders(name)
    if not folders:
        return None
    (folder,) = folders
    tradeoff("sweep", "base-eval", str(folder.relative_to(ROOT)), log=log)
    import sys

    sys.path.insert(0, str(ROOT))
    from fits.experiments import certify_on_fresh_samples
    from fits.sweep._runner import is_complete, load_plan

    plan = load_plan(folder)
    done = [r for r in plan.runs if is_complete(plan.root, r.run_id)]
    easiest = min(r.difficulty for r in plan.runs)
    largest = max(r.n for r in plan.runs)
    chosen = [r for r in done if r.difficulty == easiest and r.n == largest and r.seed == 0]
    if not chosen:
        return {"error": f"the run the rule picks ({CERTIFY_RULE}) has not finished"}
    (run,) = chosen
    run_dir = folder / "runs" / run.run_id
    weights_out = RESULTS / f"weights-{name}"
    stats_file = weights_out / "weight_stats.json"
    measured = (
        json.loads(stats_file.read_text(encoding="utf-8"))["meta"].get("adapter")
        if stats_file.is_file()
        else None
    )
    if measured != str(run_dir.relative_to(ROOT)):  # absent, or of a run the rule no longer picks
        import shutil

        shutil.rmtree(weights_out, ignore_errors=True)  # the build owns paper/results
        tradeoff(
            "weights",
            "--adapter",
            str(run_dir.relative_to(ROOT)),
            "--base-norms",
            "--out",
            str(weights_out.relative_to(ROOT)),
            log=log,
        )
    saved = RESULTS / f"certificate-{name}.json"
    base_result = None
    if saved.is_file():
        data = json.loads(saved.read_text(encoding="utf-8"))
        if data.get("run", {}).get("run_id") == run.run_id and data["bound"]["n"] == N_BOUND:
            return data
        # another run of the same d and seed (a budget added later): same bound rows, same base
        base_result = {
            "value": data["base_certificate"],
            "risk": data["bound"]["base_risk"],
            "method": data["bound"]["method"],
            "difficulty_label": data["run"]["difficulty_label"],
            "seed": data["run"]["seed"],
            "n_bound": data["bound"]["n"],
            "delta": data["bound"]["delta"],
        }
        if (base_result["difficulty_label"], base_result["seed"]) != (
            run.difficulty_label,
            run.seed,
        ) or (base_result["n_bound"], base_result["delta"]) != (N_BOUND, DELTA):
            base_result = None
    log.append(
        f"python: fits.experiments.certify_on_fresh_samples(<{name} spec>, {run.run_id}, "
        f"n_bound={N_BOUND}, delta={DELTA})"
    )
    cert = certify_on_fresh_samples(
        plan.spec, run, run_dir, n_bound=N_BOUND, delta=DELTA, base_result=base_result
    )
    from pacbound.support import write_json

    write_json(saved, cert.to_dict())
    return cert.to_dict()


def _certificate_lines(cert: dict | None) -> list[str]:
    if cert is None:
        return []
    if "error" in cert:
        return [f"Certificate: not computed ({cert['error']}).", ""]
    r, b, h = cert["run"], cert["bound"], cert["held_out"]
    verdict = (
        "non-vacuous (below the 6/7 of guessing a mod-7 answer)"
        if cert["certificate"] < 6 / 7
        else "vacuous (not below the 6/7 of guessing)"
    )
    gain = (
        "below the base's: fine-tuning certifiably helped"
        if cert["certificate"] < cert["base_certificate"]
        else "not below the base's"
    )
    secs = sum(cert.get("seconds", {}).values())
    return [
        f"Certificate of one fine-tune (rule fixed in advance: {CERTIFY_RULE}): run "
        f"`{r['run_id']}` (d = {r['difficulty']:g}, n = {r['n']}), 0-1 sequence error (>= its "
        f"exact-answer error) on {b['n']} fresh samples of D_train(d), delta = {b['delta']:g}: "
        f"empirical {b['prior_risk']:.3f}, **certified {cert['certificate']:.3f}**, {verdict}; "
        f"the base model on the same rows: empirical {b['base_risk']:.3f}, certified "
        f"{cert['base_certificate']:.3f}, so the fine-tune's certificate is {gain}. "
        f"Kind: {cert['certificate_kind']} (Q = P = the fine-tune as a point mass, KL = 0: a "
        "test-set bound in PAC-Bayes form, tightness only; it says nothing about the "
        "fine-tune's move from the base; a base-relative certificate of the adapter's "
        f"millions of parameters was not attempted on this CPU). Cost {secs / 60:.1f} min. Assumptions: "
        + "; ".join(cert["assumptions"])
        + f". Held-out error of the fine-tune = its bound-set error ({h['finetune']:.3f}).",
        "",
    ]


def llm_section(
    name: str, frame: pd.DataFrame | None, fit_json: dict, regime, cert: dict | None = None
) -> str:
    """Markdown body of the real-LM section, or the sentence saying it has not run yet."""
    if frame is None or not finished_folders(name):
        return (
            f"Not run yet: `paper/runs/{SWEEPS[name][0]}/` holds no finished runs. Once it "
            "does, `python paper/build.py --skip-sweeps` fills this section from them "
            "(accuracy per difficulty and budget, the best difficulty with its seed-resampling "
            "probability, in-distribution error against the base, weight distance, fits, cost)."
        )
    out = [
        f"{len(frame)} finished runs in `paper/runs/{SWEEPS[name][0]}/`. {_spec_line(name)} "
        f"Cost: {_cost(frame)}.",
        "",
        "Test accuracy (mean ± sd over seeds; bold: best difficulty at that budget):",
        "",
        accuracy_table(frame),
        "",
        "Best difficulty per budget and P(d is best) under seed resampling:",
        "",
        md_table(observed_dstar(frame), ".2f"),
        "",
    ]
    table, why = regime if regime is not None else (None, "not computed")
    if table is not None:
        out += [
            "In-distribution error on D_train(d), fine-tune (seed mean) vs base:",
            "",
            indist_table(table),
            "",
            gain_table(table),
            "",
        ]
    else:
        out += [f"In-distribution error against the base: not available ({why}).", ""]
    lora = (frame.get("finetune") == "lora").any()
    spaces = {
        "sq_dist": (
            "Squared distance to the base in weight space, ||ΔW||² over all base weights (a "
            "LoRA run's ΔW = (α/r)·B·A, factored, never merged)"
            if lora
            else "Squared distance to the base in weight space, ||Δw||²"
        ),
        "adapter_sq_dist": "Squared distance to the adapter's seeded initialisation in adapter "
        "space, ||θ − θ₀||² over the LoRA parameters",
    }
    for column, title in spaces.items():
        if column in frame.columns and frame[column].notna().any():
            g = frame.groupby(["n", "difficulty"])[column].mean().unstack()
            g.columns = [f"d={d:g}" for d in g.columns]
            out += [f"{title} (seed mean):", "", md_table(g.reset_index(), ".4g"), ""]
    out += _certificate_lines(cert)
    out += ["Fits (`tradeoff fit` on these runs):", "", dstar_table(fit_json, name) or "(no fit)"]
    return "\n".join(out)
