"""Text and HTML summaries."""

from __future__ import annotations


def test_summary_sections(small_fit):
    summary = small_fit.summary()
    text = summary.as_text()
    assert text == str(small_fit) == str(summary)
    for needle in (
        "Tradeoff fit: mcallester gap, K=power, T=power, n^-1/2",
        "95% low",
        "d*(n): the model's (bounded search) beside the data's own",
        "lack of fit: F(",
        "data: best d (P)",
        "forward prediction (fit the smaller budgets, predict the next)",
        "cross-validation folds",
        "shift exponent",
        "model comparison",
        "cross-validation over budgets",
        "leave-one-budget-out",
        "verdict: ",
    ):
        assert needle in text, needle
    for name, value in small_fit.params.items():
        assert f"{value:.6g}" in text, name
    html = summary.as_html()
    assert html == small_fit._repr_html_() and "<table>" in html and "<b>Verdict.</b>" in html
