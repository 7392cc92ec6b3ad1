"""Apply the fixed criterion of CRITERION.md to the tables written by collect.py.

Usage: ``python paper/calibration/verdict.py calibrated-epochs calibrated-steps`` (table names
under ``paper/calibration/tables/``). Prints, per table and budget mode: criterion L (at the
largest n every d >= 4 has in-distribution error >= 0.10 below the base's), criterion H (at the
smallest n the best difficulty beats the base's test accuracy by >= 0.05), d*(n) with P(best),
and the claim's verdict by the rule fixed in CRITERION.md.
"""

from __future__ import annotations

import json
import sys
from itertools import pairwise
from pathlib import Path

import pandas as pd

TABLES = Path(__file__).resolve().parent / "tables"


def verdict(name: str) -> None:
    cells = pd.read_csv(TABLES / f"{name}-cells.csv")
    pbest = pd.read_csv(TABLES / f"{name}-pbest.csv")
    base = json.loads((TABLES / f"{name}-base.json").read_text())["base_test_accuracy"]
    for mode, c in cells.groupby("budget_mode"):
        ns = sorted(c["n"].unique())
        big = c[(c["n"] == ns[-1]) & (c["difficulty"] >= 4)]
        gains = dict(
            zip(big["difficulty"], big["base_indist_error"] - big["indist_error"], strict=True)
        )
        ok_l = all(g >= 0.10 for g in gains.values())
        small = c[c["n"] == ns[0]]
        best_small = small.loc[small["test_accuracy"].idxmax()]
        gain_h = best_small["test_accuracy"] - base
        ok_h = gain_h >= 0.05
        print(f"== {name} [{mode}]  base test accuracy {base:.3f}")
        print(
            f"L (n={ns[-1]}, in-dist gain per d>=4 >= 0.10): {'met' if ok_l else 'NOT met'}: "
            + ", ".join(f"d={d:g}: {g:+.3f}" for d, g in gains.items())
        )
        print(
            f"H (n={ns[0]}, best d beats base by >= 0.05): {'met' if ok_h else 'NOT met'}: "
            f"best d={best_small['difficulty']:g}, acc {best_small['test_accuracy']:.3f} "
            f"({gain_h:+.3f})"
        )
        rows = []
        for n in ns:
            p = pbest[(pbest["budget_mode"] == mode) & (pbest["n"] == n)]
            top = p.loc[p["mean"].idxmax()]
            beats = top["mean"] - base
            rows.append((n, top["difficulty"], top["p_best"], top["mean"], beats))
            print(
                f"  n={n}: d*={top['difficulty']:g} (P(best) {top['p_best']:.3f}), acc "
                f"{top['mean']:.3f}, {beats:+.3f} vs base; P(best) by d: "
                + " ".join(
                    f"{d:g}:{q:.2f}" for d, q in zip(p["difficulty"], p["p_best"], strict=True)
                )
            )
        ds = [r[1] for r in rows]
        mono_up = all(b >= a for a, b in pairwise(ds)) and ds[-1] > ds[0]
        mono_down = all(b <= a for a, b in pairwise(ds)) and ds[-1] < ds[0]
        sure = rows[0][2] >= 0.8 and rows[-1][2] >= 0.8
        claim = (
            "supported"
            if mono_up and sure
            else "reversed"
            if mono_down and sure
            else "not supported"
        )
        regime = "inside" if ok_l and ok_h else "OUTSIDE"
        print(f"  claim 'd* moves harder with n': {claim} (regime criteria: {regime})")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        verdict(arg)
