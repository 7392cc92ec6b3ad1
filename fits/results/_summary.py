"""Text and HTML renderings of a :class:`~fits.FitResult` (statsmodels-style summary)."""

from __future__ import annotations

import html
from typing import Any, Protocol

from fits.estimate._varpro import Refusal
from fits.model._families import PARAM_DOC


class FitResult(Protocol):
    """What the summary reads of a :class:`fits.results.FitResult` (a protocol, so that this
    module, which the result calls to render itself, does not import it back)."""

    model: Any
    target: str
    params: dict[str, float]
    intervals: dict[str, Any]
    nobs: int
    ncells: int
    nparams: int
    aicc: float
    success: bool
    d_star: tuple[Any, ...]
    d_star_method: str
    shift_exponent: float | None
    shift_interval: Any
    p_increase: float | None
    p_monotone: float | None
    verdict: str
    comparison: tuple[dict[str, Any], ...]
    cv: tuple[dict[str, Any], ...]
    config: dict[str, Any]
    data: Any
    draws: Any
    lack_of_fit: Any
    model_free: tuple[Any, ...]
    model_selection: Any

    @property
    def forward_predictions(self) -> list[dict[str, Any]]: ...


def _g(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    try:
        return f"{float(x):.{digits}g}"
    except (TypeError, ValueError):
        return str(x)


_COMPARISON_HEADER = ["model", "k", "AICc", "dAICc", "LOBO MAE"]
_CV_HEADER = [
    "scheme",
    "model",
    "fitted",
    "MAE",
    "bias",
    "d* in interval",
    "nearest bin = best",
]


def _sections(res: FitResult) -> dict[str, Any]:
    """The pieces of the summary, shared by the text and HTML renderings; tables are
    ``(header, rows)`` pairs of strings."""
    from fits.estimate._crossval import summarize_cv

    level = res.config["confidence_level"]
    pct = f"{level:.0%}"
    metric = "test loss" if res.target == "loss" else "test error (1 - accuracy)"
    d_levels = res.data.d_levels
    head = [
        f"Tradeoff fit: {res.model.spec.label}",
        f"target: {metric}; loss: {res.config['loss']}"
        + (f" (f_scale {_g(res.config['f_scale'])})" if res.config["loss"] != "linear" else "")
        + f"; weights: {res.config['weights']}; training metric in d*: {res.config['train_model']}",
        f"{res.nobs} runs in {res.ncells} cells ({len(d_levels)} difficulties x "
        f"{len(res.data.n_levels)} budgets); {res.nparams} parameters; d_ref = {_g(res.model.d_ref)}; "
        f"AICc {_g(res.aicc, 6)}; optimiser: {'converged' if res.success else 'not converged'}",
    ]
    binning = getattr(res.data, "binning", None)
    if binning:
        head.append(
            f"difficulty binned: {sum(binning['distinct'])} distinct difficulties at "
            f"{len(binning['budgets'])} budgets quantile-binned within each budget into at most "
            f"{binning['max_bins']} bins ({sum(binning['bins'])} cells at their runs' mean "
            "difficulty; max_bins 0 keeps every value)"
        )
    if res.draws is not None:
        flagged = int((res.draws.flags != Refusal.OK).sum())
        head.append(
            f"bootstrap: {res.draws.method}, {res.draws.n_resamples} refits"
            f" ({flagged} on a bound or with a vanished amplitude)"
        )
    if res.target == "loss" and "train_loss_source" in res.data.runs.columns:
        src = res.data.runs["train_loss_source"].dropna().astype(str).value_counts()
        head.append("training loss from: " + ", ".join(f"{k} ({v} runs)" for k, v in src.items()))
    if "metadata_from" in res.data.runs.columns:
        src = res.data.runs["metadata_from"].dropna().astype(str).value_counts()
        head.append("metadata from: " + ", ".join(f"{k} ({v} runs)" for k, v in src.items()))
    if res.config.get("excluded"):
        head.append("excluded runs: " + ", ".join(e["run_id"] for e in res.config["excluded"]))
    params = [
        [k, _g(v, 6), *(_ci(res.intervals.get(k))), PARAM_DOC[k]] for k, v in res.params.items()
    ]
    free = {e.n: e for e in res.model_free}
    dstar = []
    for e in res.d_star:
        row = [f"{e.n:g}", _g(e.value), *_ci(e.interval), _g(e.bracketed), _g(e.p_bracketed, 3)]
        f = free.get(e.n)
        if f is not None:
            row += [
                f"{f.observed_best:g} ({f.best_probability.get(f.observed_best, 0.0):.0%})",
                _g(f.smooth, 3),
                *_ci(f.interval),
                f.status,
            ]
        dstar.append(row)
    dstar_header = ["n", "d*", f"{pct} low", f"{pct} high", "curve interior", "P(interior)"]
    if res.model_free:
        dstar_header += ["data: best d (P)", "local d*", f"{pct} low", f"{pct} high", "data"]
    lof = "" if res.lack_of_fit is None else res.lack_of_fit.verdict
    if res.lack_of_fit is not None and res.lack_of_fit.testable:
        lof += f" ({res.lack_of_fit.method})"
    forward = []
    for r in res.forward_predictions:
        ci = (
            f" [{_g(r['dstar_low'], 3)}, {_g(r['dstar_high'], 3)}]"
            if r.get("dstar_low") is not None
            else ""
        )
        local = free.get(float(r["held_out_n"]))
        observed = f"observed best {r['dstar_obs']:g}"
        if local is not None:
            observed += f" (the data's local d* {_g(local.smooth, 3)}, {local.status})"
        hit = ""
        if "in_interval" in r and local is not None:
            hit = "; the interval " + (
                "covers" if r["dstar_low"] <= local.smooth <= r["dstar_high"] else "misses"
            ) + " the data's local d*"
        metric_line = ""
        if r.get("test_pred_best") is not None:
            t_ci = (
                f" [{_g(r['test_low'], 3)}, {_g(r['test_high'], 3)}]"
                if r.get("test_low") is not None
                else ""
            )
            metric_line = (
                f"; best {'test loss' if res.target == 'loss' else 'test error'} predicted "
                f"{_g(r['test_pred_best'], 3)}{t_ci}, observed {_g(r['test_obs_best'], 3)}"
            )
        forward.append(
            f"fitted on n = {', '.join(f'{b:g}' for b in r['train_budgets'])}: predicted "
            f"d*({r['held_out_n']:g}) = {_g(r['dstar_pred'], 3)}{ci}, {observed}{hit}{metric_line}"
        )
    held = [
        r
        for r in res.cv
        if r.get("model") == "theory" and "in_interval" in r and float(r["held_out_n"]) in free
    ]
    coverage = ""
    if held:
        inside = sum(
            r["dstar_low"] <= free[float(r["held_out_n"])].smooth <= r["dstar_high"] for r in held
        )
        coverage = (
            f"coverage of the held-out d* intervals ({pct}) over the {len(held)} "
            f"cross-validation folds: {inside} of {len(held)} cover the data's local d* "
            f"({sum(bool(r['in_interval']) for r in held)} cover the observed best grid point)"
        )
        metric_held = [r for r in held if "test_in_interval" in r]
        if metric_held:
            coverage += (
                f"; the prediction intervals of the best test metric cover the observed one in "
                f"{sum(bool(r['test_in_interval']) for r in metric_held)} of {len(metric_held)}"
            )
    comp = [
        [
            r["model"],
            str(r["k"]),
            _g(r["aicc"], 6),
            _g(r["delta_aicc"], 4),
            _g(r.get("cv_mae_lobo"), 4),
        ]
        for r in res.comparison
    ]
    cv = [
        [
            r["scheme"],
            r["model"],
            f"{r['fitted']}/{r['folds']}",
            _g(r.get("mae")),
            _g(r.get("bias")),
            _g(r.get("dstar_in_interval"), 3),
            _g(r.get("nearest_bin_match"), 3),
        ]
        for r in summarize_cv(list(res.cv))
    ]
    shift = "-"
    if res.shift_exponent is not None:
        shift = _g(res.shift_exponent)
        if res.shift_interval is not None:
            shift += f" [{_g(res.shift_interval.low)}, {_g(res.shift_interval.high)}]"
    rate = ""
    if "nu" in res.params:
        ci = res.intervals.get("nu")
        if ci is None:
            rate = (
                f"budget exponent nu = {_g(res.params['nu'])} (theory: 1/2; no bootstrap interval)"
            )
        else:
            covers = ci.covers(0.5)
            rate = (
                f"budget exponent nu = {_g(res.params['nu'])} [{_g(ci.low)}, {_g(ci.high)}]: the "
                f"interval {'covers' if covers else 'does not cover'} the theory's 1/2"
            )
    return {
        "rate": rate,
        "head": head,
        "params": (["param", "estimate", f"{pct} low", f"{pct} high", "meaning"], params),
        "dstar": (dstar_header, dstar),
        "lof": lof,
        "forward": forward,
        "coverage": coverage,
        "comp": (_COMPARISON_HEADER, comp),
        "cv": (_CV_HEADER, cv),
        "shift": shift,
    }


def _ci(ci: Any) -> list[str]:
    return ["-", "-"] if ci is None else [_g(ci.low), _g(ci.high)]


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def render_text(res: FitResult) -> str:
    s = _sections(res)
    parts = [
        "\n".join(s["head"]),
        _table(*s["params"]),
        *([s["lof"]] if s["lof"] else []),
        f"d*(n): the model's ({res.d_star_method}) beside the data's own:\n" + _table(*s["dstar"]),
        *([s["rate"]] if s["rate"] else []),
        f"shift exponent d log d*/d log n: {s['shift']}; "
        f"P(d* increases from the smallest to the largest budget) = {_g(res.p_increase, 3)}; "
        f"P(d* non-decreasing across all budgets) = {_g(res.p_monotone, 3)}",
    ]
    if s["comp"][1]:
        parts.append(
            "model comparison (AICc on one Gaussian likelihood; lower is better):\n"
            + _table(*s["comp"])
        )
    if s["cv"][1]:
        parts.append(
            "cross-validation over budgets (MAE and bias of the predicted test metric):\n"
            + _table(*s["cv"])
        )
    if s["forward"]:
        parts.append(
            "forward prediction (fit the smaller budgets, predict the next):\n"
            + "\n".join(s["forward"])
            + (f"\n{s['coverage']}" if s["coverage"] else "")
        )
    if res.model_selection is not None:
        parts.append(str(res.model_selection))
    parts.append("verdict: " + res.verdict)
    return "\n\n".join(parts) + "\n"


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def render_html(res: FitResult) -> str:
    s = _sections(res)
    parts = [
        "<div class='fit-summary'>",
        "<p>" + "<br>".join(html.escape(h) for h in s["head"]) + "</p>",
        "<h3>Parameters</h3>",
        _html_table(*s["params"]),
        *([f"<p class='lack-of-fit'><b>{html.escape(s['lof'])}</b></p>"] if s["lof"] else []),
        f"<h3>d*(n): the model's ({html.escape(res.d_star_method)}) beside the data's own</h3>",
        _html_table(*s["dstar"]),
        *([f"<p>{html.escape(s['rate'])}</p>"] if s["rate"] else []),
        f"<p>shift exponent d log d*/d log n: {html.escape(s['shift'])}; P(d* increases) = "
        f"{html.escape(_g(res.p_increase, 3))}; P(non-decreasing) = {html.escape(_g(res.p_monotone, 3))}</p>",
    ]
    if s["comp"][1]:
        parts += ["<h3>Model comparison (AICc)</h3>", _html_table(*s["comp"])]
    if s["cv"][1]:
        parts += ["<h3>Cross-validation over budgets</h3>", _html_table(*s["cv"])]
    if s["forward"]:
        parts += ["<h3>Forward prediction</h3>", "<ul>"]
        parts += [f"<li>{html.escape(line)}</li>" for line in s["forward"]]
        parts += ["</ul>", *([f"<p>{html.escape(s['coverage'])}</p>"] if s["coverage"] else [])]
    if res.model_selection is not None:
        parts += ["<h3>Model families</h3>", f"<pre>{html.escape(str(res.model_selection))}</pre>"]
    parts += [f"<p class='verdict'><b>Verdict.</b> {html.escape(res.verdict)}</p>", "</div>"]
    return "\n".join(parts)
