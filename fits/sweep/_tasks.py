"""What a sweep trains on and evaluates: the synthetic task, or a dataset with a difficulty column.

Both expose the same small interface to the runner:

- ``difficulties()``: the difficulty levels of the grid (:class:`Difficulty`: label, numeric
  value, and for the synthetic task the op-count distribution with its exact TV to the test
  distribution);
- ``train_records(difficulty, n, seed)``: the training subset (nested across ``n``);
- ``test_records()`` and ``slices(records, difficulty)``: the test set and its named slices;
- ``answer_fn`` / ``max_new_tokens``: how accuracy is judged; ``fingerprint()``: what the run
  id must change with.

Slices: synthetic: ``test``, ``ops<k>``, ``inrange`` (op counts in the base's pre-training
range, or ``task.inrange_ops``) and ``extrap`` (the others). Dataset: ``test``, ``bin<i>`` (the
test rows of each difficulty bin, easiest first), ``inrange`` (test rows inside the run's own
training bin) and ``extrap`` (test rows harder than it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fits.sweep._spec import SpecError, SweepSpec
from pacbound.exceptions import InputFileError
from pacbound.support import read_table

__all__ = ["DatasetTask", "Difficulty", "Record", "SyntheticTask", "make_task"]


@dataclass(frozen=True)
class Record:
    """One prompt/completion example with its reference answer and difficulty."""

    prompt: str
    completion: str
    answer: str | None
    difficulty: float


@dataclass(frozen=True)
class Difficulty:
    """One difficulty level of the grid.

    Attributes
    ----------
    label : str
        Name in run folders and tables (``mix4``, ``ops3-4``, ``bin2``...).
    value : float
        Numeric difficulty used by the fit (mixture centre, mean op count of a bin, or mean
        difficulty score of a dataset bin).
    lo, hi : float
        For dataset bins: the ``[lo, hi)`` range of the difficulty column.
    info : dict
        Extra facts recorded in ``run_meta.json`` (distribution, exact TV to the test set).
    """

    label: str
    value: float
    lo: float = float("nan")
    hi: float = float("nan")
    info: dict = field(default_factory=dict)


def _range(text, name) -> tuple[int, int]:
    from fits.synthetic._data import parse_ops_range

    return parse_ops_range(str(text), name)


class SyntheticTask:
    """The synthetic iGSM-like task for a sweep spec (see :mod:`fits.synthetic`)."""

    kind = "synthetic"

    def __init__(self, spec: SweepSpec):
        from fits.synthetic._distributions import ops_bin, ops_mixture, uniform_ops
        from fits.synthetic._generator import TaskFormat, answer_from_completion

        self.spec = spec
        self.chat = bool(spec["task.chat"])
        self.fmt = TaskFormat(max_ops=spec["task.max_ops"], prime=spec["task.prime"])
        k = self.fmt.max_ops
        self.base_ops = _range(spec["base.ops"], "base.ops")
        self.test_ops = _range(spec["task.test_ops"] or f"1-{k}", "task.test_ops")
        self.inrange_ops = _range(spec["task.inrange_ops"] or spec["base.ops"], "task.inrange_ops")
        checked = [("task.test_ops", self.test_ops), ("task.inrange_ops", self.inrange_ops)]
        if spec["base.kind"] == "synthetic":
            checked.append(("base.ops", self.base_ops))
        for name, (lo, hi) in checked:
            if hi > k:
                raise SpecError(
                    f"{spec.source}: `{name}` must lie within 1-{k} (task.max_ops); got {lo}-{hi}."
                )
        self.test_dist = uniform_ops(*self.test_ops, max_ops=k)
        self.answer_fn: Callable[[str], object] = answer_from_completion
        self.max_new_tokens = self.fmt.completion_tokens(k) + 2
        diffs = []
        if spec["difficulty.kind"] == "mixture":
            dists = [
                ops_mixture(c, spec["difficulty.width"], k) for c in spec["difficulty.centers"]
            ]
        else:
            dists = []
            for b in spec["difficulty.bins"]:
                if isinstance(b, list):
                    raise SpecError(
                        f"{spec.source}: `difficulty.bins` for the synthetic task must be op "
                        f"ranges like '3-4'; got {b!r}."
                    )
                lo, hi = _range(b, "difficulty.bins")
                if hi > k:
                    raise SpecError(
                        f"{spec.source}: `difficulty.bins` must lie within 1-{k} "
                        f"(task.max_ops); got {b!r}."
                    )
                dists.append(ops_bin(lo, hi, k))
        for dist in dists:
            info = {
                "distribution": dist.to_dict(),
                "tv_test": dist.tv(self.test_dist),
                "test_distribution": self.test_dist.to_dict(),
            }
            value = dist.difficulty if dist.kind == "mixture" else dist.mean()
            diffs.append(Difficulty(dist.label, value, info=info))
        self._difficulties = diffs
        self._dists = dict(zip([d.label for d in diffs], dists, strict=True))

    def difficulties(self) -> list[Difficulty]:
        return list(self._difficulties)

    def fingerprint(self) -> dict:
        return {"task": "synthetic", "format": self.fmt.to_dict(), "test_ops": self.test_ops}

    def train_records(self, difficulty: Difficulty, n: int, seed: int) -> list[Record]:
        from fits.synthetic._data import sample_training_set

        problems = sample_training_set(self._dists[difficulty.label], n, seed, self.fmt)
        return [Record(p.prompt, p.completion, str(p.answer), float(p.ops)) for p in problems]

    def test_records(self) -> list[Record]:
        from fits.synthetic._data import decomposed_test_set

        lo, hi = self.test_ops
        problems = decomposed_test_set(
            range(lo, hi + 1), self.spec["task.test_per_op"], fmt=self.fmt
        )
        return [Record(p.prompt, p.completion, str(p.answer), float(p.ops)) for p in problems]

    def slices(self, records: list[Record], difficulty: Difficulty) -> dict[str, np.ndarray]:
        ops = np.array([r.difficulty for r in records])
        lo, hi = self.inrange_ops
        inside = (ops >= lo) & (ops <= hi)
        out = {"test": np.ones(len(records), dtype=bool), "inrange": inside, "extrap": ~inside}
        for k in sorted(set(ops.astype(int).tolist())):
            out[f"ops{k}"] = ops == k
        return out


def _normalize_answer(value) -> str:
    """Answers compare as numbers when both are numbers (``5``, ``5.0``, `` 5 ``), else as text."""
    text = str(value).strip().rstrip(".")
    try:
        number = float(text.replace(",", ""))
    except ValueError:
        return text
    if number.is_integer():
        return str(int(number))
    return repr(number)


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


class DatasetTask:
    """A prompt/completion dataset with a numeric difficulty column (real-model sweeps)."""

    kind = "dataset"

    def __init__(self, spec: SweepSpec):
        self.spec = spec
        self.chat = bool(spec["task.chat"])
        cols = {
            "prompt": spec["task.prompt_column"],
            "completion": spec["task.completion_column"],
            "difficulty": spec["task.difficulty_column"],
        }
        if spec["task.answer_column"]:
            cols["answer"] = spec["task.answer_column"]
        self.cols = cols
        train = self._load(spec["task.train"], "training")
        if spec["task.test"]:
            test = self._load(spec["task.test"], "test")
        else:
            rng = np.random.default_rng(12345)
            perm = rng.permutation(len(train))
            n_test = max(1, round(spec["task.test_fraction"] * len(train)))
            test, train = train.iloc[perm[:n_test]], train.iloc[perm[n_test:]]
        if spec["task.test_max"]:
            test = test.iloc[: spec["task.test_max"]]
        self.train = train.reset_index(drop=True)
        self.test = test.reset_index(drop=True)
        self.answer_regex = re.compile(spec["task.answer_regex"], re.S)
        self.max_new_tokens = spec["task.max_new_tokens"]
        self._difficulties = self._make_bins()

    def _load(self, path: str, what: str):
        frame = read_table(path, what=what)
        for role, col in self.cols.items():
            if col not in frame.columns:
                raise InputFileError(
                    f"{path}: the {what} file has no column {col!r} (task.{role}_column); "
                    f"columns: {', '.join(map(str, frame.columns))}."
                )
        import pandas as pd

        diff = pd.to_numeric(frame[self.cols["difficulty"]], errors="coerce")
        bad = np.flatnonzero(~np.isfinite(diff.to_numpy(dtype=float)))
        if bad.size:
            row = int(bad[0])
            raise InputFileError(
                f"{path}: row {row}, column {self.cols['difficulty']!r} must be a finite number; "
                f"got {frame[self.cols['difficulty']].iloc[row]!r}."
            )
        frame = frame.copy()
        frame[self.cols["difficulty"]] = diff.astype(float)
        return frame

    def _make_bins(self) -> list[Difficulty]:
        d = self.train[self.cols["difficulty"]].to_numpy(dtype=float)
        spec = self.spec
        if spec["difficulty.quantiles"]:
            q = spec["difficulty.quantiles"]
            edges = np.quantile(d, np.linspace(0, 1, q + 1))
            edges[-1] = np.nextafter(edges[-1], np.inf)
            ranges = [(float(edges[i]), float(edges[i + 1])) for i in range(q)]
        else:
            ranges = []
            for b in spec["difficulty.bins"]:
                if not isinstance(b, list):
                    raise SpecError(
                        f"{spec.source}: `difficulty.bins` for a dataset must be [lo, hi) pairs "
                        f"of the difficulty column; got {b!r}."
                    )
                ranges.append((float(b[0]), float(b[1])))
        out = []
        for i, (lo, hi) in enumerate(sorted(ranges)):
            inside = (d >= lo) & (d < hi)
            if not inside.any():
                raise SpecError(
                    f"{spec.source}: difficulty bin [{lo:g}, {hi:g}) holds no training rows."
                )
            out.append(
                Difficulty(
                    f"bin{i + 1}",
                    float(d[inside].mean()),
                    lo,
                    hi,
                    info={"range": [lo, hi], "pool_size": int(inside.sum())},
                )
            )
        return out

    def difficulties(self) -> list[Difficulty]:
        return list(self._difficulties)

    def fingerprint(self) -> dict:
        files = {"train": _file_digest(self.spec["task.train"])}
        if self.spec["task.test"]:
            files["test"] = _file_digest(self.spec["task.test"])
        return {"task": "dataset", "files": files, "columns": self.cols}

    def answer_fn(self, text: str) -> str | None:
        """The final answer of a generated text (``task.answer_regex``), normalised."""
        m = self.answer_regex.search(text)
        return _normalize_answer(m.group(1)) if m else None

    def _records(self, frame) -> list[Record]:
        c = self.cols
        answers = (
            [_normalize_answer(a) for a in frame[c["answer"]]]
            if "answer" in c
            else [None] * len(frame)
        )
        return [
            Record(str(p), str(q), a, float(d))
            for p, q, a, d in zip(
                frame[c["prompt"]],
                frame[c["completion"]],
                answers,
                frame[c["difficulty"]],
                strict=True,
            )
        ]

    def train_records(self, difficulty: Difficulty, n: int, seed: int) -> list[Record]:
        d = self.train[self.cols["difficulty"]].to_numpy(dtype=float)
        pool = np.flatnonzero((d >= difficulty.lo) & (d < difficulty.hi))
        if n > pool.size:
            raise SpecError(
                f"{self.spec.source}: `budget.n` = {n} exceeds the {pool.size} training rows of "
                f"difficulty bin {difficulty.label} [{difficulty.lo:g}, {difficulty.hi:g})."
            )
        order = np.random.default_rng([seed, 7919]).permutation(pool.size)
        return self._records(self.train.iloc[pool[order[:n]]])

    def test_records(self) -> list[Record]:
        return self._records(self.test)

    def slices(self, records: list[Record], difficulty: Difficulty) -> dict[str, np.ndarray]:
        d = np.array([r.difficulty for r in records])
        out = {"test": np.ones(len(records), dtype=bool)}
        for b in self._difficulties:
            out[b.label] = (d >= b.lo) & (d < b.hi)
        out["inrange"] = (d >= difficulty.lo) & (d < difficulty.hi)
        out["extrap"] = d >= difficulty.hi
        return out


def make_task(spec: SweepSpec) -> SyntheticTask | DatasetTask:
    """The task object for ``spec``."""
    return SyntheticTask(spec) if spec["task.kind"] == "synthetic" else DatasetTask(spec)
