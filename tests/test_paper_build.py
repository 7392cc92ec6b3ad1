"""The paper build's data-driven pieces: the claim's verdict rule, the regime criteria and the
real-LM section (empty, and filled from a committed sweep folder standing in for it)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest

PAPER = Path(__file__).resolve().parents[1] / "paper"
sys.path.insert(0, str(PAPER))

import paths  # noqa: E402
from llm import llm_section  # noqa: E402
from narrative import claim_verdict, criteria, preregistered_verdict  # noqa: E402
from tables import regime_table  # noqa: E402


def _frame(acc: dict[tuple[int, float], list[float]]) -> pd.DataFrame:
    rows = [
        {"n": n, "difficulty": d, "seed": s, "test_acc": a}
        for (n, d), values in acc.items()
        for s, a in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_claim_verdict_supported_reversed_and_unsure():
    sure_harder = _frame(
        {
            (64, 2.0): [0.6, 0.61, 0.62],
            (64, 4.0): [0.4, 0.41, 0.42],
            (1024, 2.0): [0.5, 0.51, 0.52],
            (1024, 4.0): [0.7, 0.71, 0.72],
        }
    )
    assert claim_verdict(sure_harder)[0] == "supported"
    reversed_ = sure_harder.assign(n=sure_harder["n"].map({64: 1024, 1024: 64}))
    assert claim_verdict(reversed_)[0] == "reversed"
    unsure = _frame(
        {
            (64, 2.0): [0.60, 0.40, 0.50],
            (64, 4.0): [0.55, 0.45, 0.49],
            (1024, 2.0): [0.5, 0.51, 0.52],
            (1024, 4.0): [0.7, 0.71, 0.72],
        }
    )
    verdict, text = claim_verdict(unsure)
    assert verdict == "not supported"
    assert "2 -> 4" in text


def test_verdict_on_the_budgets_fixed_in_advance_is_given_beside_a_post_hoc_budget():
    easy_then_hard = _frame(
        {
            (64, 2.0): [0.6, 0.61, 0.62],
            (64, 4.0): [0.4, 0.41, 0.42],
            (1024, 2.0): [0.6, 0.61, 0.62],
            (1024, 4.0): [0.5, 0.51, 0.52],
            (4096, 2.0): [0.6, 0.61, 0.62],
            (4096, 4.0): [0.9, 0.91, 0.92],
        }
    )
    assert claim_verdict(easy_then_hard)[0] == "supported"
    text = preregistered_verdict(easy_then_hard)
    assert "**not supported**" in text and "2 -> 2 (n = 64 -> 1024)" in text
    assert "n = 4096 was added afterwards" in text
    fixed_only = easy_then_hard[easy_then_hard["n"] < 4096]
    assert preregistered_verdict(fixed_only) == ""


@pytest.mark.skipif(
    not paths.finished_folders("calibrated-steps"), reason="calibrated sweep not present"
)
def test_criteria_on_the_calibrated_steps_sweep():
    table, why = regime_table("calibrated-steps")
    assert table is not None, why
    crit = criteria(table)
    assert crit["B"][0] and crit["L"][0] and crit["H"][0]
    assert "+0.128" in crit["H"][1]


def test_llm_section_before_and_after_the_sweep(monkeypatch):
    monkeypatch.setitem(paths.SWEEPS, "smollm2-lora", ("no-such-sweep",))
    assert llm_section("smollm2-lora", None, {}, None).startswith("Not run yet")
    stand_in = "calibrated-steps-seeds34"
    if not paths.finished_folders("calibrated-steps"):
        pytest.skip("calibrated sweep not present")
    import fits

    monkeypatch.setitem(paths.SWEEPS, "smollm2-lora", (stand_in,))
    frame = fits.load_runs([str(f) for f in paths.finished_folders("smollm2-lora")])
    text = llm_section("smollm2-lora", frame, {}, regime_table("smollm2-lora"))
    assert f"{len(frame)} finished runs in `paper/runs/{stand_in}/`" in text
    assert "full fine-tuning" in text and "In-distribution error on D_train(d)" in text
    assert "| n | best d |" in text


def test_certificate_section_measures_the_goals():
    from certificates import certificate_section

    import pacbound
    from fits.experiments import summarise_certificates
    from fits.experiments._sweep_certificates import _with_reference
    from tests.fits._certificate_records import certificate_record

    def rec(d, n, seed, cert, held):
        base = certificate_record(
            d, n, seed, cert, 0.8, held, prior_held=held + 0.02, base_held=0.7, n_held=256
        )
        return _with_reference(base, {"tv_test": 0.4, "test_error": 0.5}, 6 / 7)

    records = [rec(2, 64, 0, 0.9, 0.5), rec(2, 1024, 0, 0.3, 0.1), rec(4, 1024, 0, 0.5, 0.3)]
    options = {"prior_fraction": 0.5, "split_seed": 0, "held_out": 256, "delta": 0.025}
    res = summarise_certificates("calibrated-epochs", records, 6 / 7, options)
    text = certificate_section({"calibrated-epochs": res})
    assert "**2 of 3 runs**" in text
    assert "**not met**: 2 of 3 runs; the others are d = 2, n = 64, seed 0" in text
    # why it fails: its fine-tune (128 of 256 held-out samples wrong) leaves room; a free model
    # that good would get 0.681 on its 32 bound rows (16 errors), below guessing
    lower = float(pacbound.test_set_lower_bound(128, 256, 0.025))
    best = float(pacbound.test_set_bound(16, 32, 0.025).value)
    assert (
        f"the fine-tune's own error ≥ {lower:.3f}; a free model as good as it: {best:.3f}" in text
    )
    assert "out of reach" not in text
    assert "For the 1 run the fine-tune's own error leaves room below guessing" in text
    assert f"certified at {best:.3f}-{best:.3f} on the n_B bound rows (1 of 1 below" in text
    hopeless = rec(4, 64, 1, 1.0, 250 / 256)
    res = summarise_certificates("calibrated-epochs", [*records, hopeless], 6 / 7, options)
    text = certificate_section({"calibrated-epochs": res})
    assert "seed 1 (epochs): 1.000 (prior run's held-out error 0.997, n_B = 32; the " in text
    assert "the fine-tune's own error ≥ 0.950: out of reach)" in text
    assert "1 of these 2 is out of reach of any certificate below guessing" in text
    assert "at its 97.5% lower confidence bound from 256 fresh samples" in text
    assert "For the other 1 run the" in text
    assert "largest budget is n = 1024 (no n = 4096 runs)" in text
    assert "is 0.200 (not within 0.15)" in text
    assert "exceeds 0.1 (held-out 0-1 sequence error): 2; of these, 2 have" in text
    assert "figures/certificates_calibrated-epochs.png" in text
    assert certificate_section({}).startswith("(not available")


def test_compression_conclusion_follows_the_records(tmp_path, monkeypatch):
    import json

    import compression

    from pacbound import kl_inv_upper

    def record(d, n, dim, base_err, sub_err, q_err, nats, base_cert, **config):
        cert = float(kl_inv_upper(q_err, (nats + math.log(20)) / n))
        return {
            "difficulty": d,
            "n": n,
            "seed": 0,
            "certificate": cert,
            "base_certificate": base_cert,
            "config": {"dimension": dim, "levels": 3, "steps": 300, "delta": 0.05, **config},
            "result": {
                "base_error": base_err,
                "subspace_error": sub_err,
                "train_error": q_err,
                "code": {"nats": nats},
            },
        }

    guess = 6 / 7
    (tmp_path / "a.json").write_text(
        json.dumps([record(2, 1024, 256, 0.31, 0.30, 0.38, 327, 0.35)])
    )
    (tmp_path / "b.json").write_text(
        json.dumps([record(4, 4096, 4096, 0.94, 0.26, 0.30, 5958, 0.95)])
    )
    (tmp_path / "c.log").write_text("[d=4] base: train error 0.94\n")
    monkeypatch.setattr(compression, "COMPRESSION", tmp_path)
    text = compression.compression_conclusion(guess)
    assert "learns (training error at least 0.05 below the base's) in 1 of 2 attempts" in text
    assert "not at D = 256" in text
    assert "Below the guessing error 0.857: 1 of 2" in text
    assert "non-vacuous but not below the base's (the base already does better)" in text
    assert "below the base's but not below guessing" in text
    # the code a certificate at guessing allows: n kl(0.30 || 6/7) - ln(1/delta)
    from pacbound import kl_bernoulli

    allowed = 4096 * float(kl_bernoulli(0.30, guess)) - math.log(20)
    assert f"codes 5958 nats where its quantised training error 0.300 allows {allowed:.0f}" in text
    table = compression.compression_table(guess)
    assert "| b.json | 4 | 4096 |" in table
    assert "c (stopped before its subspace training ended, no record)" in table
    (tmp_path / "c.log").write_text(
        "[d=4] base: train error 0.94\n[d=4] subspace: train error 0.2\n"
    )
    assert "c (stopped after the subspace stage, no record)" in compression.compression_table(guess)
    # an attempt whose certificate is below both guessing and the base's
    (tmp_path / "d.json").write_text(
        json.dumps([record(4, 4096, 2048, 0.94, 0.1, 0.12, 2000, 0.95)])
    )
    text = compression.compression_conclusion(guess)
    assert "both: 1" in text and "non-vacuous and below the base's" in text
    summary = compression.compression_summary(guess)
    assert summary.startswith("- Base-relative (compression) certificates, 3 attempts on 2")
    assert (
        "d = 2, n = 1024, seed 0: 0." in summary
        and "(not below the base's, non-vacuous)" in summary
    )
    assert "(below the base's, non-vacuous)" in summary  # d.json is the best at d = 4
    # one recipe at three difficulties: the base-relative complexity against d
    (tmp_path / "e.json").write_text(
        json.dumps(
            [
                record(5, 4096, 4096, 0.99, 0.0, 0.35, 5958, 0.99),
                record(6, 4096, 4096, 1.0, 0.0, 0.40, 5958, 1.0),
            ]
        )
    )
    text = compression.compression_conclusion(guess)
    assert "Across difficulty at n = 4096, seed 0, with one recipe (D = 4096, K = 3" in text
    assert "quantised training error 0.300 / 0.350 / 0.400" in text
    # three difficulties cannot show an ordering at 0.05 (exact p = 1/3! for ρ = 1); a code equal
    # at every d has no ρ
    assert "(Spearman ρ with d: code –, certificate +1.00): no ordering of the certificate" in text
    assert "(exact permutation p = 0.17 in the likelier direction)" in text
    assert "Pooled at" not in text  # one recipe group: nothing to pool
    section = compression.compression_section(guess)
    assert section[0].startswith("#### Base-relative") and "| d.json |" in section[2]
    # a second data seed is its own cell; a recipe that keeps the best measured iterate says so
    seeded = record(4, 4096, 4096, 0.94, 0.0, 0.05, 5000, 0.95, qat_select_every=50)
    seeded["result"]["qat_trace"] = [[0, 0.9, 0.99], [50, 0.05, 0.7]]
    (tmp_path / "f.json").write_text(json.dumps([{**seeded, "seed": 1}]))
    text = compression.compression_conclusion(guess)
    assert "- d = 4, n = 4096, seed 1 (1 attempt): best certificate" in text
    assert "- d = 4, n = 4096, seed 0 (2 attempts)" in text
    assert ", lowest certificate of every 50 |" in compression.compression_table(guess)
    # the goal: every run that beats the base has a non-vacuous base-relative certificate
    import pandas as pd

    runs = pd.DataFrame(
        {
            "difficulty": [4.0, 4.0, 2.0, 2.0],
            "n": [4096, 4096, 64, 256],
            "seed": [1, 1, 0, 0],
            "budget_mode": ["epochs", "steps", "epochs", "epochs"],
            "held_out_error": [0.01, 0.3, 0.5, 0.2],
            "base_held_out_error": [0.95, 0.95, 0.4, 0.3],
        }
    )
    goal = compression.compression_goal(runs, guess)
    assert "**not met**. The fine-tune's held-out error is below the base's in 3 of 4 runs" in goal
    assert (
        "is below guessing for 2 of them, tried but not below guessing for 0, not tried (or no "
        "such model) for 1 (1 at n = 256)" in goal
    )
    # a non-vacuous certificate of a compressed model no better than the base does not count
    (tmp_path / "g.json").write_text(json.dumps([record(2, 256, 256, 0.31, 0.3, 0.33, 50, 0.4)]))
    assert "no such model) for 1 (1 at n = 256)" in compression.compression_goal(runs, guess)
    table = compression.compression_conclusion(guess)
    assert "of a compressed model better than the base on its rows" not in table
    (tmp_path / "h.json").write_text(json.dumps([record(2, 256, 512, 0.31, 0.1, 0.2, 150, 0.4)]))
    assert (
        "of a compressed model better than the base on its rows (training error 0.200 vs 0.310)"
        in compression.compression_conclusion(guess)
    )
    (tmp_path / "g.json").unlink()
    (tmp_path / "h.json").unlink()
    assert f"{256 * math.log(7) - math.log(20):,.0f} at n = 256" in goal
    assert "out of reach" not in goal  # runs without the column: nothing said
    reach = runs.assign(out_of_reach=[False, True, True, False])  # the 3rd does not beat the base
    assert (
        "1 of the 3 is out of reach of any certificate below guessing, by any method"
        in compression.compression_goal(reach, guess)
    )
    monkeypatch.setattr(compression, "SUMMARY_CELLS", 2)  # 5 cells: counted, not listed
    summary = compression.compression_summary(guess)
    assert "6 attempts on 5 calibrated cells (best per cell): below guessing in 3 of 5" in summary
    assert "not below guessing: d = 5, n = 4096, seed 0: 0." in summary
    met = compression.compression_goal(runs.iloc[:2], guess)
    assert (
        met.startswith("- Goal *a base-relative certificate non-vacuous wherever")
        and "**met**" in met
    )


def test_certificate_ordering_with_difficulty_is_tested_exactly(tmp_path, monkeypatch):
    """Per recipe, an exact permutation test of Spearman's ρ (k! assignments); per budget, the
    recipes pooled with d permuted within each (the null is the convolution of theirs)."""
    import json

    import compression
    from scipy.stats import spearmanr

    from pacbound import kl_inv_upper

    rho, null = compression._spearman_null([0.3, 0.1, 0.5, 0.4, 0.2], [2, 3, 4, 5, 6])
    assert rho == pytest.approx(spearmanr([0.3, 0.1, 0.5, 0.4, 0.2], [2, 3, 4, 5, 6])[0])
    assert sum(null.values()) == 120 and null[1.0] == 1 and null[-1.0] == 1
    assert compression._tail_p(1.0, null) == pytest.approx(1 / 120)
    assert compression._tail_p(-1.0, null, upper=False) == pytest.approx(1 / 120)

    def record(d, seed, q_err, nats):
        return {
            "difficulty": d,
            "n": 4096,
            "seed": seed,
            "certificate": float(kl_inv_upper(q_err, (nats + math.log(20)) / 4096)),
            "base_certificate": 0.99,
            "config": {"dimension": 4096, "levels": 5, "steps": 300, "delta": 0.05},
            "result": {
                "base_error": 0.99,
                "subspace_error": 0.0,
                "train_error": q_err,
                "code": {"nats": nats},
            },
        }

    # the certificate rises with d in two seeds; the code rises in one and falls in the other
    records = [
        record(d, seed, 0.02 * d, 6000 + (1 if seed == 0 else -1) * 10 * d)
        for seed in (0, 1)
        for d in (2, 3, 4, 5)
    ]
    (tmp_path / "a.json").write_text(json.dumps(records))
    monkeypatch.setattr(compression, "COMPRESSION", tmp_path)
    text = compression.compression_conclusion(6 / 7)
    assert text.count("certificate rises with d (exact one-sided permutation p = 0.042)") == 2
    pooled = next(line for line in text.splitlines() if line.startswith("- Pooled at n = 4096"))
    assert "(2 recipe × seed groups above, d permuted within each" in pooled
    assert (
        "summed Spearman ρ of the code length with d +0.00 (at most +2.00): no ordering" in pooled
    )
    assert (
        "summed Spearman ρ of the certificate with d +2.00 (at most +2.00): certificate rises "
        "with d (exact one-sided permutation p = 0.002)" in pooled  # 1/24², 1/576
    )


def test_headroom_of_the_cached_base_centred_certificates():
    import json

    import numpy as np
    from narrative import _headroom_line
    from tables import headroom_section, theory_headroom

    theory = json.loads((paths.RESULTS / "theory-calibrated-epochs" / "theory.json").read_text())
    head = theory_headroom(theory, 6 / 7)
    finite = head["kl_factor"][np.isfinite(head["kl_factor"])]
    line = _headroom_line(theory, 6 / 7)
    assert f"factor of {finite.min():.3g} to {finite.max():.3g} ({len(finite)} runs)" in line
    assert _headroom_line(theory, None) == ""
    text = headroom_section(theory, 6 / 7)
    assert text.startswith("| mode | n | d | seeds | KL at best σ (nats) |")
    assert f"0 of {len(head)} runs" in text  # every base-centred certificate is vacuous there
