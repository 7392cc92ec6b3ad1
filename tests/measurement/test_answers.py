"""Answer checkers: final-answer regex and exact match."""

from __future__ import annotations

import pytest

from measurement import AnswerChecker
from pacbound.exceptions import InvalidParameterError


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Step 1: 7 * 6 = 42.\n#### 42", "42"),
        ("so the answer is 1,234.", "1234"),
        ("The answer is $-3.50", "-3.50"),
        ("Answer: 7 apples", "7"),
        ("The ANSWER IS 5. Then the answer is 6.", "5"),  # the first final answer counts
        ("no number here", None),
    ],
)
def test_default_regex_extracts_the_final_answer(text, answer):
    assert AnswerChecker().extract(text) == answer


def test_regex_mode_compares_numbers_and_uses_the_answer_column():
    checker = AnswerChecker()
    assert checker.is_correct("The answer is 5.0", "5")
    assert checker.is_correct("#### 1,000", "1000")
    assert not checker.is_correct("The answer is 6", "5")
    assert not checker.is_correct("I do not know", "5")
    assert not checker.is_correct("The answer is 5", None)
    # reference: the answer column when present, else extracted from the completion
    assert checker.reference(" so 2 + 3 = 5. The answer is 5.", None) == "5"
    assert checker.reference("whatever", " 12 ") == "12"
    assert checker.reference("no final answer", None) is None
    words = AnswerChecker(pattern=r"answer:\s*(\w+)")
    assert words.is_correct("Answer: Paris", "paris")


def test_exact_mode():
    checker = AnswerChecker(mode="exact")
    assert checker.is_correct("  Paris.\n", " Paris.")
    assert not checker.is_correct("Paris", "Paris.")
    assert checker.reference("Paris.", None) == "Paris."
    assert "exact" in str(checker) and checker.to_dict() == {"mode": "exact", "pattern": None}


def test_bad_checker_arguments():
    with pytest.raises(InvalidParameterError, match="`mode` must be one of 'regex', 'exact'"):
        AnswerChecker(mode="fuzzy")
    with pytest.raises(InvalidParameterError, match="`pattern` must be a valid regular"):
        AnswerChecker(pattern="(unclosed")
