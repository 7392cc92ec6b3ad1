"""``tradeoff sweep status``: which runs of a sweep are done, running, failed or pending."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from fits.sweep._runner import is_complete, load_plan

__all__ = ["SweepStatus", "sweep_status"]

STATES = ("done", "running", "failed", "pending")


@dataclass(frozen=True)
class SweepStatus:
    """The state of every planned run of a sweep folder.

    Attributes
    ----------
    root : str
        The sweep folder.
    rows : tuple of dict
        One per planned run (plus complete runs of earlier plans): ``run_id,
        difficulty_label, difficulty, n, seed, budget_mode, steps, state`` and, when done,
        ``test_accuracy, test_loss, seconds``; when failed, ``error``.
    counts : dict
        Runs per state.
    """

    root: str
    rows: tuple[dict, ...]
    counts: dict

    @property
    def complete(self) -> bool:
        return self.counts.get("done", 0) == len(self.rows)

    def __str__(self) -> str:
        counts = ", ".join(f"{self.counts.get(s, 0)} {s}" for s in STATES)
        lines = [f"sweep {self.root}: {len(self.rows)} runs ({counts})"]
        header = f"{'run_id':<44} {'state':<8} {'test_acc':>8} {'test_loss':>9} {'secs':>7}"
        lines.append(header)
        for r in self.rows:
            acc = r.get("test_accuracy")
            loss = r.get("test_loss")
            secs = r.get("seconds")
            lines.append(
                f"{r['run_id']:<44} {r['state']:<8} "
                f"{'' if acc is None else f'{acc:.3f}':>8} "
                f"{'' if loss is None else f'{loss:.4f}':>9} "
                f"{'' if secs is None else f'{secs:.1f}':>7}"
                + (f"  {r['error']}" if r.get("error") else "")
            )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"root": self.root, "counts": dict(self.counts), "runs": list(self.rows)}


def _running_ids(root: Path) -> set[str]:
    runs = root / "runs"
    if not runs.is_dir():
        return set()
    out = set()
    for p in runs.iterdir():
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            out.add(p.name[1:].rsplit(".", 2)[0])
    return out


def sweep_status(root: str | Path) -> SweepStatus:
    """Read the state of the sweep at ``root`` (no process is started)."""
    from fits.sweep._runner import clean_stale_tmp

    plan = load_plan(root)
    root = plan.root
    clean_stale_tmp(root)
    running = _running_ids(root)
    rows = []
    planned = {r.run_id for r in plan.runs}
    extra = []
    runs_dir = root / "runs"
    if runs_dir.is_dir():
        extra = sorted(
            p.name
            for p in runs_dir.iterdir()
            if not p.name.startswith(".") and p.name not in planned and is_complete(root, p.name)
        )
    for run in plan.runs:
        row = {
            "run_id": run.run_id,
            "difficulty_label": run.difficulty_label,
            "difficulty": run.difficulty,
            "n": run.n,
            "seed": run.seed,
            "budget_mode": run.budget_mode,
            "steps": run.steps,
        }
        rows.append(_fill_state(root, row, running))
    for run_id in extra:
        meta = json.loads((runs_dir / run_id / "run_meta.json").read_text())
        row = {
            k: meta.get(k)
            for k in (
                "run_id",
                "difficulty_label",
                "difficulty",
                "n",
                "seed",
                "budget_mode",
                "steps",
            )
        }
        rows.append(_fill_state(root, row, running))
    counts = Counter(r["state"] for r in rows)
    return SweepStatus(str(root), tuple(rows), dict(counts))


def _fill_state(root: Path, row: dict, running: set[str]) -> dict:
    run_id = row["run_id"]
    failed = root / "failed" / f"{run_id}.json"
    if is_complete(root, run_id):
        row["state"] = "done"
        folder = root / "runs" / run_id
        try:
            results = json.loads((folder / "all_results.json").read_text())
            meta = json.loads((folder / "run_meta.json").read_text())
            row["test_accuracy"] = results.get("eval_test_accuracy")
            row["test_loss"] = results.get("eval_test_loss")
            row["seconds"] = meta.get("timing", {}).get("total_seconds")
        except (OSError, ValueError):
            pass
    elif run_id in running:
        row["state"] = "running"
    elif failed.is_file():
        row["state"] = "failed"
        try:
            row["error"] = json.loads(failed.read_text()).get("error")
        except (OSError, ValueError):
            row["error"] = "unreadable failure record"
    else:
        row["state"] = "pending"
    return row
