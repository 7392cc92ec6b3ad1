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
from paths import RUNS, SWEEPS, finished_folders
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


def llm_section(name: str, frame: pd.DataFrame | None, fit_json: dict, regime) -> str:
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
    if "sq_dist" in frame.columns and frame["sq_dist"].notna().any():
        g = frame.groupby(["n", "difficulty"])["sq_dist"].mean().unstack()
        g.columns = [f"d={d:g}" for d in g.columns]
        space = "adapter" if (frame.get("finetune") == "lora").any() else "weight"
        out += [
            f"Squared distance to the initialisation in {space} space, ||Δθ||² (seed mean):",
            "",
            md_table(g.reset_index(), ".4g"),
            "",
        ]
    out += ["Fits (`tradeoff fit` on these runs):", "", dstar_table(fit_json, name) or "(no fit)"]
    return "\n".join(out)
