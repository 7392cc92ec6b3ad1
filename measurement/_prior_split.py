"""A learnt (data-dependent) prior for :func:`measurement.certify`: its split and its checks.

A PAC-Bayes prior may depend on data the bound never sees (Dziugaite & Roy 2018; Pérez-Ortiz
et al. 2021, "Tighter risk certificates for neural networks"; Dziugaite et al. 2021): split
the training set S at random into a prior part S_P and a bound part S_B (fraction and seed
fixed in advance), fine-tune the prior's mean w_P from the base on S_P, then certify
Q = N(w_ft, σ²) against P = N(w_P, σ_p²) on S_B alone, with n = |S_B|. Conditional on S_P,
S_B is still an i.i.d. sample and P is fixed before it is seen, so the bound holds; but the KL
measures the move from w_P, not from the base: the certificate is tight, it is not the
fine-tune's complexity relative to the pretrained model.

The split is given as a **prior rows file**, JSON, either a list of 0-based row indices into
the data file, or an object

.. code-block:: json

    {"rows": [0, 3, 4, ...], "fraction": 0.5, "seed": 0, "of": 4096}

with ``rows`` the indices the prior was trained on and, optionally, the ``fraction`` and
``seed`` of the random split (recorded in the certificate) and ``of``, the number of rows of
the data file (checked). The bound set is drawn from the other rows only, and no bound row may
repeat a prior row's text (prompt + completion): a duplicated example in both parts would let
the prior see bound data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pacbound.exceptions import InvalidParameterError

__all__ = ["KIND_LABELS", "PriorSplit", "check_disjoint", "check_same_architecture"]

KIND_LABELS = {
    "learnt": "learnt prior (tightness only: the KL measures the move from w_prior, not from "
    "the base)",
    "base": "base-relative prior (the paper's meaning: the KL is the fine-tune's complexity "
    "relative to the pretrained model)",
}
"""What a certificate's KL measures, by the kind of its prior; printed beside every value."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class PriorSplit:
    """The rows of the data file a learnt prior was trained on (module docstring).

    Attributes
    ----------
    rows : tuple of int
        0-based row indices into the data file, sorted, without repeats.
    fraction : float in (0, 1) or None
        Fraction of the random split, when recorded.
    seed : int >= 0 or None
        Seed of the random split, when recorded.
    of : int >= 1 or None
        Rows of the data file the split was drawn from, when recorded (checked against it).
    source : str or None
        The rows file, when the split was read from one.
    """

    rows: tuple[int, ...]
    fraction: float | None = None
    seed: int | None = None
    of: int | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        where = f" in {self.source}" if self.source else ""
        bad = next((r for r in self.rows if not _is_int(r) or r < 0), None)
        if not self.rows or bad is not None:
            got = "an empty list" if not self.rows else f"{bad!r}"
            raise InvalidParameterError(
                f"`rows`{where} must be a non-empty list of 0-based row indices (integers "
                f">= 0) into the data file; got {got}."
            )
        object.__setattr__(self, "rows", tuple(sorted(set(self.rows))))
        if self.fraction is not None and not (
            isinstance(self.fraction, int | float)
            and not isinstance(self.fraction, bool)
            and 0.0 < self.fraction < 1.0
        ):
            raise InvalidParameterError(
                f"`fraction`{where} must be a number in (0, 1); got {self.fraction!r}."
            )
        if self.seed is not None and not (_is_int(self.seed) and self.seed >= 0):
            raise InvalidParameterError(
                f"`seed`{where} must be an integer >= 0; got {self.seed!r}."
            )
        if self.of is not None and not (_is_int(self.of) and self.of >= 1):
            raise InvalidParameterError(f"`of`{where} must be an integer >= 1; got {self.of!r}.")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PriorSplit:
        """Read a prior rows file: a JSON list of row indices, or ``{"rows": [...], ...}``."""
        path = Path(path)
        if not path.is_file():
            raise InvalidParameterError(
                f"`prior_rows` must be a JSON file of the prior's row indices; {str(path)!r} "
                "is not a file."
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidParameterError(
                f"`prior_rows` {str(path)!r} must be JSON (a list of row indices or "
                f'{{"rows": [...], "fraction": f, "seed": s}}); it is not ({exc}).'
            ) from None
        return cls.coerce(data, source=str(path))

    @classmethod
    def coerce(cls, value: Any, *, source: str | None = None) -> PriorSplit:
        """A :class:`PriorSplit` from itself, a rows file path, a mapping or a list of ints."""
        if isinstance(value, PriorSplit):
            return value
        if isinstance(value, str | os.PathLike):
            return cls.load(value)
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {"rows", "fraction", "seed", "of"})
            if "rows" not in value or unknown:
                what = "no `rows`" if "rows" not in value else f"unknown keys {unknown}"
                raise InvalidParameterError(
                    f"`prior_rows`{' ' + source if source else ''} must hold `rows` and "
                    f"optionally `fraction`, `seed`, `of`; got {what}."
                )
            rows = value["rows"]
            if not isinstance(rows, Sequence) or isinstance(rows, str):
                raise InvalidParameterError(
                    f"`rows`{' in ' + source if source else ''} must be a list of row indices; "
                    f"got {type(rows).__name__}."
                )
            return cls(
                tuple(rows), value.get("fraction"), value.get("seed"), value.get("of"), source
            )
        if isinstance(value, Sequence) and not isinstance(value, bytes):
            return cls(tuple(value), source=source)
        raise InvalidParameterError(
            "`prior_rows` must be a rows file, a list of row indices or a mapping with `rows`; "
            f"got {type(value).__name__}."
        )

    def check_against(self, total: int, data: str) -> None:
        """Refuse indices outside a data file of ``total`` rows, or a recorded size that differs."""
        where = f" ({self.source})" if self.source else ""
        if self.of is not None and self.of != total:
            raise InvalidParameterError(
                f"the prior's split{where} was drawn from {self.of} rows, but {data} has "
                f"{total}: give the data file the prior was split from."
            )
        if self.rows[-1] >= total:
            raise InvalidParameterError(
                f"the prior's rows{where} must be indices into {data} (0 to {total - 1}); got "
                f"{self.rows[-1]}."
            )
        if len(self.rows) >= total:
            raise InvalidParameterError(
                f"the prior's rows{where} cover all {total} rows of {data}, leaving no bound set."
            )

    def describe(self) -> str:
        """``k rows (fraction f, seed s, from FILE)`` with what is recorded."""
        extra = [f"fraction {self.fraction:g}"] if self.fraction is not None else []
        extra += [f"seed {self.seed}"] if self.seed is not None else []
        extra += [f"rows file {self.source}"] if self.source else []
        return f"{len(self.rows)} rows" + (f" ({', '.join(extra)})" if extra else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_rows": len(self.rows),
            "fraction": self.fraction,
            "seed": self.seed,
            "of": self.of,
            "rows_file": self.source,
        }


def check_disjoint(prior_keys: Sequence[str], bound_keys: Sequence[str]) -> None:
    """Refuse a learnt prior whose training rows overlap the bound set (one-line error).

    The keys identify examples (e.g. their text); the error counts the bound rows whose key is
    a prior row's and names the first.
    """
    prior = set(prior_keys)
    shared = [k for k in bound_keys if k in prior]
    if shared:
        example = shared[0] if len(shared[0]) <= 80 else shared[0][:77] + "..."
        raise InvalidParameterError(
            f"the prior's training split must be disjoint from the bound set; {len(shared)} of "
            f"the {len(bound_keys)} bound rows were in the prior's split, e.g. {example!r}."
        )


def check_same_architecture(prior: str | os.PathLike[str], finetuned: str | os.PathLike[str]):
    """Refuse a prior checkpoint whose tensor names or shapes differ from the fine-tune's.

    Reads only the headers (:func:`measurement._checkpoint.open_checkpoint`); the error names
    the first mismatching tensor.
    """
    from measurement._checkpoint import open_checkpoint

    ours = open_checkpoint(prior, role="prior").tensors
    theirs = open_checkpoint(finetuned, role="fine-tune").tensors
    rule = "`prior` must have the fine-tune's architecture (same tensor names and shapes)"
    for name, info in theirs.items():
        if name not in ours:
            raise InvalidParameterError(
                f"{rule}; first mismatch: `{name}` is in the fine-tune {finetuned} but not in "
                f"the prior {prior}."
            )
        if tuple(ours[name].shape) != tuple(info.shape):
            raise InvalidParameterError(
                f"{rule}; first mismatch: `{name}` has shape {tuple(ours[name].shape)} in the "
                f"prior {prior}, {tuple(info.shape)} in the fine-tune."
            )
    extra = next((n for n in ours if n not in theirs), None)
    if extra is not None:
        raise InvalidParameterError(
            f"{rule}; first mismatch: `{extra}` is in the prior {prior} but not in the "
            f"fine-tune {finetuned}."
        )
