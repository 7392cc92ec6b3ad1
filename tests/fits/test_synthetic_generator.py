"""The synthetic problem generator: determinism, op counts, fixed length, checkable solutions."""

from __future__ import annotations

import pytest

from fits import (
    SyntheticProblem,
    TaskFormat,
    answer_from_completion,
    check_problem,
    generate_problems,
    solve_prompt,
)
from pacbound.exceptions import InvalidParameterError


def test_same_seed_same_problems_and_prefix_stability():
    ops = [1, 2, 3, 4, 5, 6, 7, 8] * 5
    a = generate_problems(ops, seed=3)
    b = generate_problems(ops, seed=3)
    assert a == b
    # problem i depends only on (seed, i, ops[i]): a prefix of the ops gives a prefix
    assert generate_problems(ops[:7], seed=3) == a[:7]
    c = generate_problems(ops, seed=4)
    assert sum(x.prompt != y.prompt for x, y in zip(a, c, strict=True)) >= len(ops) - 1


@pytest.mark.parametrize("max_ops,prime", [(8, 7), (6, 11), (3, 5)])
def test_op_counts_lengths_and_solutions_check(max_ops, prime):
    fmt = TaskFormat(max_ops=max_ops, prime=prime)
    ops = [k for k in range(1, max_ops + 1) for _ in range(20)]
    problems = generate_problems(ops, seed=11, fmt=fmt)
    for p, k in zip(problems, ops, strict=True):
        assert p.ops == k
        assert len(p.prompt.split()) == fmt.prompt_tokens  # same length at every difficulty
        assert len(p.completion.split()) == fmt.completion_tokens(k)
        assert len(p.completion.split(" , ")) == k
        assert 0 <= p.answer < prime
        assert check_problem(p, prime)
        # independent re-evaluation of the chain from the prompt text alone
        assert solve_prompt(p.prompt, prime) == (p.answer, k)
        assert answer_from_completion(p.completion) == p.answer
        names = [w for w in p.prompt.split() if w.isalpha()]
        assert len(set(names)) == max_ops + 2  # distinct names, one per quantity


def test_checker_rejects_wrong_solutions():
    p = generate_problems([4], seed=0)[0]
    wrong_answer = SyntheticProblem(p.prompt, p.completion, (p.answer + 1) % 7, p.ops, p.uid)
    assert not check_problem(wrong_answer)
    steps = p.completion.split(" , ")
    parts = steps[1].split()
    parts[6] = str((int(parts[6]) + 1) % 7)  # corrupt an intermediate result
    steps[1] = " ".join(parts)
    corrupted = SyntheticProblem(p.prompt, " , ".join(steps), p.answer, p.ops, p.uid)
    assert not check_problem(corrupted)
    dropped = SyntheticProblem(
        p.prompt, " , ".join(p.completion.split(" , ")[1:]), p.answer, p.ops, p.uid
    )
    assert not check_problem(dropped)


def test_answer_parser_edge_cases():
    assert answer_from_completion("a = 1 + 2 = 3 , b = 3 * 2 = 6") == 6
    assert answer_from_completion("a = 1 + 2 = 3 , b = 3 * 2") is None  # truncated last step
    assert answer_from_completion("no equals here") is None
    assert answer_from_completion("a = 1 + 2 = x") is None
    assert answer_from_completion("") is None


@pytest.mark.parametrize("ops", [[0], [9], [2.5], [[1, 2]]])
def test_bad_op_counts_are_refused(ops):
    with pytest.raises(InvalidParameterError, match="`ops` must"):
        generate_problems(ops, seed=0)


def test_bad_format_is_refused():
    with pytest.raises(InvalidParameterError, match="`prime` must be a prime"):
        TaskFormat(prime=8)
    with pytest.raises(InvalidParameterError, match="`max_ops` must be at most 24"):
        TaskFormat(max_ops=25)
    with pytest.raises(InvalidParameterError, match="`seed`"):
        generate_problems([1], seed=-1)
