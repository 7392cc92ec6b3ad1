"""Answer checkers: is a generated completion correct?

Two modes. ``"regex"`` extracts a final answer with a pattern (by default the number after
``####``, "answer is" or "answer:", as in GSM8K-style solutions) from both the generation and
the reference, and compares them (numerically when both parse as numbers). ``"exact"``
compares the whole generated text with the reference after stripping whitespace.

The reference answer of an example is its ``answer`` column when the dataset has one, else
the answer extracted from its reference completion.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_choice

__all__ = ["DEFAULT_ANSWER_PATTERN", "AnswerChecker"]

#: The number after ``####``, "answer is" or "answer:" (case-insensitive).
DEFAULT_ANSWER_PATTERN = r"(?:####|answer\s+is|answer\s*:)\s*\$?\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)"


@dataclass(frozen=True)
class AnswerChecker:
    """Decide whether a generated completion gives the reference answer.

    Attributes
    ----------
    mode : {"regex", "exact"}
        ``"regex"``: compare the final answers extracted with :attr:`pattern` (first match;
        its first group, or the whole match when it has none). ``"exact"``: compare the whole
        stripped texts.
    pattern : str
        The final-answer regular expression (``re.IGNORECASE``), used in ``"regex"`` mode.
    """

    mode: str = "regex"
    pattern: str = DEFAULT_ANSWER_PATTERN

    def __post_init__(self) -> None:
        check_choice(self.mode, "mode", ("regex", "exact"))
        try:
            re.compile(self.pattern, re.IGNORECASE)
        except re.error as exc:
            raise InvalidParameterError(
                f"`pattern` must be a valid regular expression; got {self.pattern!r} ({exc})."
            ) from None

    def __str__(self) -> str:
        if self.mode == "exact":
            return "AnswerChecker(exact match)"
        return f"AnswerChecker(final-answer regex {self.pattern!r})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description."""
        return {"mode": self.mode, "pattern": self.pattern if self.mode == "regex" else None}

    def extract(self, text: str) -> str | None:
        """The final answer in ``text``, normalised, or None when there is none."""
        if self.mode == "exact":
            stripped = text.strip()
            return stripped or None
        match = re.search(self.pattern, text, flags=re.IGNORECASE)
        if match is None:
            return None
        value = match.group(1) if match.groups() else match.group(0)
        return _normalise(value)

    def reference(self, completion: str, answer: str | None = None) -> str | None:
        """The reference answer: ``answer`` when given, else extracted from ``completion``."""
        if answer is not None and str(answer).strip():
            return _normalise(str(answer)) if self.mode == "regex" else str(answer).strip()
        return self.extract(completion)

    def references(
        self, completions: Sequence[str], answers: Sequence[str | None] | None = None
    ) -> list[str | None]:
        """The reference answer of each example (see :meth:`reference`); ``answers`` may be
        None (every answer is then extracted from its completion)."""
        answers = answers or (None,) * len(completions)
        return [self.reference(c, a) for c, a in zip(completions, answers, strict=True)]

    def is_correct(self, generated: str, reference: str | None) -> bool:
        """Whether ``generated`` gives ``reference`` (False when either has no answer)."""
        if reference is None:
            return False
        got = self.extract(generated)
        if got is None:
            return False
        if self.mode == "exact":
            return got == reference.strip()
        return _same_answer(got, _normalise(reference))


def _normalise(value: str) -> str:
    text = value.strip().strip("$").strip()
    text = text.rstrip(".")
    return text.replace(",", "") if re.fullmatch(r"-?[0-9][0-9,]*(\.[0-9]+)?", text) else text


def _same_answer(a: str, b: str) -> bool:
    try:
        x, y = float(a), float(b)
    except ValueError:
        return a.strip().lower() == b.strip().lower()
    return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
