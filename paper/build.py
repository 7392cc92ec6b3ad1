"""Regenerate every figure and table of paper/REPORT.md from the toolkit's own commands.

Usage (from the repository root, inside the project's virtual environment)::

    python paper/build.py                 # sweeps (resumable), fits, theory, figures, report
    python paper/build.py --skip-sweeps   # only what is derived from existing sweep folders
    python paper/build.py --workers 2     # parallel 1-thread training processes

The report's sweeps (``paths.SWEEPS``): the calibrated synthetic sweeps (main body;
``calibrated-{epochs,steps}`` pooled with their extra seeds ``-seeds34``), the real-LM sweep
``smollm2-lora`` (filled in once its folder holds finished runs) and the first sweeps
``epochs``/``steps``/``bins`` (appendix). Stages, each a ``tradeoff`` command run as a
subprocess (so the report is exactly what a user gets from the CLI):

1. ``tradeoff sweep run paper/specs/<folder>.toml --out paper/runs/<folder>`` for every run
   folder that has a spec
2. ``tradeoff fit paper/runs/<folder> [paper/runs/<folder> ...] --model sq_dist --target
   error|loss --out paper/results/fit-<sweep>-...`` (all folders of a sweep in one fit), and
   with ``--rate free --profile`` (is the budget exponent of the gap 1/2?)
3. ``tradeoff sweep examples`` then ``tradeoff fit --examples`` (threshold robustness; first sweeps)
4. ``tradeoff sweep theory paper/runs/<folder> --out paper/results/theory-<sweep>`` (the
   sweep's first folder; reused when newer than its runs: run weights are not committed), and
   ``tradeoff sweep certify paper/runs/<folder>`` for every folder of the main sweeps (a
   learnt-prior certificate per run; reused where the weights are gone), pooled per sweep
   into ``paper/results/certificates-<sweep>/``
5. Figures (Altair, saved offline through vl-convert) and tables from those outputs, the
   in-distribution error tables, the re-analysis of the paper's Table 1, and
   ``paper/REPORT.md`` from ``paper/report_template.md``.

Numbers in the report are filled in from the outputs; the prose around them is in the
template. Timings depend on the machine (2 shared CPU cores here: hours for the sweeps; a few
minutes for everything else).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from certificates import certificate_section, run_certificate_stage
from figures import (
    copy_theory_figures,
    fig_dstar,
    fig_gaps,
    fig_heatmap,
    fig_kl,
    runs_table,
    table1_reanalysis,
)
from llm import llm_section, run_llm_stage
from narrative import appendix_discussion, discussion, summary
from paths import (
    LLM,
    MAIN,
    MODELS,
    OLD,
    PAPER,
    RESULTS,
    ROOT,
    SWEEPS,
    TARGETS,
    available,
    finished_folders,
)
from tables import (
    accuracy_table,
    dstar_table,
    gain_table,
    headroom_section,
    indist_table,
    md_table,
    observed_dstar,
    rate_table,
    regime_table,
    shift_table,
)


def tradeoff(*args: str, log: list[str]) -> subprocess.CompletedProcess:
    """Run ``tradeoff ARGS`` (the installed console command) and record the command line.

    ``fit`` and ``sweep theory`` replace their output folders under paper/results, which this
    build owns (folders written before the toolkit marked its outputs included): ``--overwrite``.
    """
    if (args[0] == "fit" or args[:2] == ("sweep", "theory")) and "--overwrite" not in args:
        args = (*args, "--overwrite")
    exe = Path(sys.executable).with_name("tradeoff")
    cmd = [str(exe) if exe.exists() else "tradeoff", *args]
    log.append(" ".join(["tradeoff", *args]))
    print("$", log[-1], flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    print(f"  ({time.perf_counter() - t0:.0f} s, exit {proc.returncode})", flush=True)
    if proc.returncode not in (0,):
        print(proc.stderr[-2000:], file=sys.stderr)
    return proc


def run_sweeps(workers: int, log: list[str]) -> None:
    """Run (or resume) every run folder of the report's sweeps that has a spec."""
    for folders in SWEEPS.values():
        for folder in folders:
            if not (PAPER / "specs" / f"{folder}.toml").is_file():
                continue
            proc = tradeoff(
                "sweep",
                "run",
                f"paper/specs/{folder}.toml",
                "--out",
                f"paper/runs/{folder}",
                "--workers",
                str(workers),
                "--json",
                log=log,
            )
            if proc.returncode != 0:
                raise SystemExit(f"sweep {folder} failed; rerun to resume it")


def _tag(model: str) -> str:
    return model.replace(",", "-")


def _sources(name: str) -> list[str]:
    """The finished run folders of sweep ``name``, relative to the repository root."""
    return [str(f.relative_to(ROOT)) for f in finished_folders(name)]


def _fit_grid(log: list[str], sweeps: list[str], prefix: str, bootstrap: int, *extra: str) -> dict:
    """``tradeoff fit`` on each sweep (all its run folders) x form x target; (sweep, form,
    target) -> fit.json or ``{"refused": reason}``."""
    out = {}
    for name in available(sweeps):
        for model in MODELS:
            for target in TARGETS:
                folder = RESULTS / f"{prefix}-{name}-{_tag(model)}-{target}"
                proc = tradeoff(
                    "fit",
                    *_sources(name),
                    "--model",
                    model,
                    *extra,
                    "--target",
                    target,
                    "--n-resamples",
                    str(bootstrap),
                    "--out",
                    str(folder.relative_to(ROOT)),
                    "--json",
                    log=log,
                )
                key = (name, model, target)
                if proc.returncode == 0:
                    out[key] = json.loads((folder / "fit.json").read_text())
                else:
                    out[key] = {"refused": proc.stderr.strip().removeprefix("error: ")}
    return out


def run_fits(log: list[str], bootstrap: int) -> dict:
    """Fit each sweep with each form on each target; return fit.json contents or the refusal."""
    return _fit_grid(log, list(SWEEPS), "fit", bootstrap)


def run_rate_tests(log: list[str], bootstrap: int) -> dict:
    """The budget exponent fitted free (gap ~ n^-nu) with bootstrap and profile intervals, for
    each sweep that varies n with difficulty mixtures, each fit form and each target."""
    extra = ("--rate", "free", "--profile", "--no-cv", "--no-plots")
    return _fit_grid(log, [*MAIN, "epochs", "steps"], "rate", bootstrap, *extra)


def run_robustness(log: list[str], bootstrap: int) -> dict:
    """Threshold robustness of the fitted d*(n), for the mixture sweep and the paper's bins."""
    out = {}
    for name in available(["epochs", "bins"]):
        examples = RESULTS / f"examples-{name}.csv"
        tradeoff(
            "sweep",
            "examples",
            f"paper/runs/{name}",
            "--out",
            str(examples.relative_to(ROOT)),
            log=log,
        )
        for model in MODELS:
            folder = RESULTS / f"robustness-{name}-{_tag(model)}"
            proc = tradeoff(
                "fit",
                f"paper/runs/{name}",
                "--model",
                model,
                "--target",
                "error",
                "--n-resamples",
                str(bootstrap),
                "--examples",
                str(examples.relative_to(ROOT)),
                "--no-plots",
                "--no-cv",
                "--out",
                str(folder.relative_to(ROOT)),
                "--json",
                log=log,
            )
            if proc.returncode == 0:
                out[(name, model)] = json.loads((folder / "fit.json").read_text()).get("robustness")
            else:
                out[(name, model)] = {"refused": proc.stderr.strip().removeprefix("error: ")}
    return out


def _run_ids(folder: Path) -> set[str]:
    return {p.parent.name for p in (folder / "runs").glob("*/run_meta.json")}


def _has_weights(folder: Path) -> bool:
    """Every finished run of ``folder`` still has its weights (they are not committed)."""
    names = ("model.safetensors", "adapter_model.safetensors")
    return all(
        any((folder / "runs" / run / name).is_file() for name in names) for run in _run_ids(folder)
    )


def run_theory(log: list[str]) -> dict:
    """Theory terms per run of each synthetic sweep's first run folder.

    Reused when its ``theory.json`` covers exactly the folder's finished runs (run ids hash the
    run's configuration), or when the run weights it needs are gone (they are not committed);
    otherwise rerun (it is slow: minutes per sweep).
    """
    out = {}
    for name in available([*MAIN, *OLD]):
        source = finished_folders(name)[0]
        rel = source.relative_to(ROOT)
        folder = RESULTS / f"theory-{name}"
        done = folder / "theory.json"
        cmd = f"tradeoff sweep theory {rel} --out {folder.relative_to(ROOT)} --gibbs-samples 20"
        covered = (
            {r["run_id"] for r in json.loads(done.read_text())["per_run"]}
            if done.is_file()
            else set()
        )
        if covered == _run_ids(source):
            log.append(f"{cmd}   (reused: it covers every run)")
        elif done.is_file() and not _has_weights(source):
            log.append(f"{cmd}   (reused: the run weights it needs are not here)")
        elif _has_weights(source):
            tradeoff(*cmd.split()[1:], log=log)
        else:
            log.append(f"{cmd}   (not run: no run weights)")
        if done.is_file():
            out[name] = json.loads(done.read_text())
    return out


def build_report(context: dict) -> str:
    template = (PAPER / "report_template.md").read_text(encoding="utf-8")
    for key, value in context.items():
        template = template.replace("{{" + key + "}}", str(value))
    return template


def _theory_context(context: dict, theory: dict) -> None:
    from fits.sweep._runner import load_plan

    for name, res in theory.items():
        context[f"theory_notes_{name}"] = "\n".join(f"- {n}" for n in res["notes"])
        cells = pd.DataFrame(res["per_cell"])[
            [
                "n",
                "difficulty",
                "test_error",
                "train_error",
                "gen_gap",
                "ext_gap",
                "tv",
                "sq_dist",
                "sigma",
                "bound",
                "plugin_bound",
            ]
        ]
        context[f"theory_table_{name}"] = md_table(cells, ".3g")
        context[f"theory_dstar_{name}"] = md_table(pd.DataFrame(res["dstar"]), ".3g")
        prime = load_plan(finished_folders(name)[0]).spec["task.prime"]
        context[f"theory_headroom_{name}"] = headroom_section(res, 1.0 - 1.0 / prime)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-sweeps", action="store_true", help="use existing sweep folders")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--n-resamples", type=int, default=1000, help="bootstrap refits per fit")
    args = ap.parse_args(argv)
    log: list[str] = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if not args.skip_sweeps:
        run_sweeps(args.workers, log)
    fit_json = run_fits(log, args.n_resamples)
    rates = run_rate_tests(log, args.n_resamples)
    robust = run_robustness(log, min(args.n_resamples, 200))
    theory = run_theory(log)
    certificates = run_certificate_stage(tradeoff, log, args.workers)
    (llm_name,) = LLM
    llm_cert = run_llm_stage(llm_name, tradeoff, log)
    frames = {name: runs_table(name) for name in available(SWEEPS)}
    regimes = {name: regime_table(name) for name in frames}
    main_frames = {k: v for k, v in frames.items() if k in MAIN}
    old_frames = {k: v for k, v in frames.items() if k in OLD}
    main_theory = {k: v for k, v in theory.items() if k in MAIN}
    old_theory = {k: v for k, v in theory.items() if k in OLD}
    figs = {}
    if main_frames:
        figs["heatmap"] = fig_heatmap(main_frames, "heatmap_accuracy_calibrated")
        figs["dstar"] = fig_dstar(
            {k: v for k, v in fit_json.items() if k[0] in MAIN}, main_frames, "dstar_calibrated"
        )
        figs["kl"] = fig_kl(main_frames, "kl_difficulty_budget_calibrated")
    if main_theory:
        figs["gaps"] = fig_gaps(main_theory, "gaps_by_bin_calibrated")
    if old_frames:
        figs["heatmap_old"] = fig_heatmap(old_frames)
        figs["dstar_old"] = fig_dstar(
            {k: v for k, v in fit_json.items() if k[0] in OLD}, old_frames
        )
        figs["kl_old"] = fig_kl(old_frames)
    if old_theory:
        figs["gaps_old"] = fig_gaps(old_theory)
    figs.update(copy_theory_figures(theory))
    t1, t1_fig = table1_reanalysis()
    t1.to_csv(RESULTS / "table1_reanalysis.csv", index=False)
    context = {
        "commands": "\n".join(f"    {c}" for c in log),
        "build_seconds": f"{time.perf_counter() - t0:.0f}",
        "table1": md_table(t1.drop(columns=["eval", "n_test", "train_size"]).round(4)),
        "fig_table1": t1_fig,
    }
    for name, frame in frames.items():
        context[f"acc_{name}"] = accuracy_table(frame)
        context[f"dstar_{name}"] = dstar_table(fit_json, name)
        context[f"observed_{name}"] = md_table(observed_dstar(frame), ".2f")
        context[f"runs_{name}"] = str(len(frame))
        table, why = regimes[name]
        if table is None:
            context[f"indist_{name}"] = f"(not available: {why})"
            context[f"gain_{name}"] = f"(not available: {why})"
        else:
            context[f"indist_{name}"] = indist_table(table)
            context[f"gain_{name}"] = gain_table(table)
    context["shift_table"] = shift_table(fit_json, list(MAIN))
    context["certificates_section"] = certificate_section(certificates)
    _theory_context(context, theory)
    context["rate_table"], context["rate_notes"] = rate_table(
        {k: v for k, v in rates.items() if k[0] in MAIN}
    )
    context["rate_table_old"], context["rate_notes_old"] = rate_table(
        {k: v for k, v in rates.items() if k[0] in OLD}
    )
    for name in ("epochs", "bins"):
        lines = []
        for model in MODELS:
            res = robust.get((name, model))
            if res is None:
                continue
            if "refused" in res:
                lines.append(f"  - `--model {model}`: refused: {res['refused']}")
            else:
                lines.append(f"  - `--model {model}`: {res.get('verdict', json.dumps(res)[:400])}")
        context[f"robust_{name}"] = "\n" + "\n".join(lines) if lines else "(not run)"
    for key, path in figs.items():
        context[f"fig_{key}"] = path
    context["summary"] = summary(
        main_frames, fit_json, main_theory, t1, regimes, rates, frames, certificates
    )
    context["discussion"] = discussion(main_frames, fit_json, main_theory, t1, regimes)
    context["discussion_old"] = appendix_discussion(old_frames, old_theory, regimes)
    context["llm_section"] = llm_section(
        llm_name, frames.get(llm_name), fit_json, regimes.get(llm_name), llm_cert
    )
    report = build_report(context)
    missing = sorted({p.split("}}")[0] for p in report.split("{{")[1:]})
    for key in missing:
        report = report.replace("{{" + key + "}}", "(not available: the stage did not run)")
    (PAPER / "REPORT.md").write_text(report, encoding="utf-8")
    (RESULTS / "commands.txt").write_text("\n".join(log) + "\n", encoding="utf-8")
    print(f"wrote {PAPER / 'REPORT.md'} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
