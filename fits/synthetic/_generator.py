"""iGSM-like problems: chains of named quantities under arithmetic modulo a small prime.

A problem with ``ops`` operations and ``max_ops`` slots reads (prime 7, ops 2, max_ops 4)::

    prompt:      k = 5 , q = k + 5 , e = q * 3 , w = 2 , b = w - 1 , z = b + 6 , ? e >
    completion:  q = 5 + 5 = 3 , e = 3 * 3 = 2

The dependency graph has two chains: the main chain (a leaf and ``ops`` operations, each
defined from the previous quantity and a literal) and a distractor chain (a leaf and
``max_ops - ops`` operations). The question asks for the last quantity of the main chain, so
answering takes exactly ``ops`` operations, and every prompt has the same number of tokens,
``11 + 6 * max_ops`` (without BOS). The completion computes the main chain step by step
(``8 * ops - 1`` tokens; the model adds EOS). Names are distinct letters drawn per problem.

Everything is deterministic given the seed (numpy ``SeedSequence``), and :func:`check_problem`
re-evaluates a chain from its text, independently of how it was generated.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_positive_int

__all__ = [
    "OPERATORS",
    "SyntheticProblem",
    "TaskFormat",
    "answer_from_completion",
    "check_problem",
    "generate_problems",
    "solve_prompt",
]

OPERATORS = ("+", "-", "*")
NAMES = tuple(string.ascii_lowercase)


@dataclass(frozen=True)
class TaskFormat:
    """The shape of the synthetic task.

    Attributes
    ----------
    max_ops : int
        Operation slots in every prompt (main chain + distractor chain); also the largest
        difficulty. The prompt has ``11 + 6 * max_ops`` tokens whatever the difficulty.
    prime : int
        Arithmetic is modulo this prime; answers are in ``0 .. prime - 1`` (chance accuracy is
        ``1 / prime``).
    """

    max_ops: int = 8
    prime: int = 7

    def __post_init__(self) -> None:
        check_positive_int(self.max_ops, "max_ops")
        if self.max_ops + 2 > len(NAMES):
            raise InvalidParameterError(
                f"`max_ops` must be at most {len(NAMES) - 2} (one letter per quantity); "
                f"got {self.max_ops}."
            )
        p = check_positive_int(self.prime, "prime", minimum=2)
        if any(p % q == 0 for q in range(2, int(p**0.5) + 1)):
            raise InvalidParameterError(f"`prime` must be a prime number; got {p}.")

    @property
    def prompt_tokens(self) -> int:
        """Tokens in every prompt, without BOS."""
        return 11 + 6 * self.max_ops

    def completion_tokens(self, ops: int) -> int:
        """Tokens in the completion of a problem with ``ops`` operations, without EOS."""
        return 8 * ops - 1

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class SyntheticProblem:
    """One problem with its step-by-step solution.

    Attributes
    ----------
    prompt : str
        The statements and the question, tokens separated by single spaces.
    completion : str
        The solution steps (no EOS).
    answer : int
        The value of the asked quantity.
    ops : int
        Number of operations needed (the difficulty).
    uid : str
        A stable identifier: ``"<seed>-<index>"`` within the generating call.
    """

    prompt: str
    completion: str
    answer: int
    ops: int
    uid: str

    def __str__(self) -> str:
        return f"[ops={self.ops}] {self.prompt}  =>  {self.completion}  (answer {self.answer})"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _apply(op: str, a: int, b: int, prime: int) -> int:
    if op == "+":
        return (a + b) % prime
    if op == "-":
        return (a - b) % prime
    return (a * b) % prime


def _chain(names: Sequence[str], draws: list[int], ops: int, prime: int):
    """Statements and solution steps of one chain: a leaf then ``ops`` operations.

    ``draws`` holds ``1 + 2 * ops`` pre-drawn integers: the leaf value, then (operator index,
    literal) per operation.
    """
    value = draws[0] % prime
    statements = [f"{names[0]} = {value}"]
    steps = []
    for i in range(1, ops + 1):
        op = OPERATORS[draws[2 * i - 1] % len(OPERATORS)]
        literal = draws[2 * i] % prime
        new = _apply(op, value, literal, prime)
        statements.append(f"{names[i]} = {names[i - 1]} {op} {literal}")
        steps.append(f"{names[i]} = {value} {op} {literal} = {new}")
        value = new
    return statements, steps, value


def generate_problems(
    ops: Sequence[int] | np.ndarray,
    *,
    seed: int,
    fmt: TaskFormat | None = None,
) -> list[SyntheticProblem]:
    """Generate one problem per entry of ``ops`` (the operation count of each problem).

    Parameters
    ----------
    ops : sequence of int
        Operation count of each problem, each in ``1 .. fmt.max_ops``.
    seed : int
        Seed; the same ``(ops, seed, fmt)`` always gives the same problems, and problem ``i``
        depends only on ``(seed, i, ops[i])``.
    fmt : TaskFormat, optional
        Task shape (default: 8 operation slots, modulo 7).

    Returns
    -------
    list of SyntheticProblem
    """
    fmt = fmt or TaskFormat()
    ops_arr = np.asarray(ops)
    if ops_arr.ndim != 1:
        raise InvalidParameterError(f"`ops` must be a 1-D sequence of integers; got {ops!r}.")
    for k in ops_arr.tolist():
        if isinstance(k, bool) or not float(k).is_integer() or not 1 <= k <= fmt.max_ops:
            raise InvalidParameterError(
                f"`ops` must contain integers in [1, {fmt.max_ops}] (max_ops); got {k!r}."
            )
    ops_arr = ops_arr.astype(np.int64)
    seed = int(seed)
    if seed < 0:
        raise InvalidParameterError(f"`seed` must be a non-negative integer; got {seed}.")
    out = []
    for i, k in enumerate(ops_arr.tolist()):
        # One independent stream per problem: problem i depends only on (seed, i, ops[i]).
        rng = np.random.default_rng([seed, i])
        names = [NAMES[j] for j in rng.permutation(len(NAMES))[: fmt.max_ops + 2]]
        # A fixed number of draws per problem whatever k: 3 per operation slot + 2 leaves.
        ints = rng.integers(0, 3 * fmt.prime, size=2 * fmt.max_ops + 2).tolist()
        main_st, main_steps, answer = _chain(names[: k + 1], ints[: 2 * k + 1], k, fmt.prime)
        dist_st, _, _ = _chain(names[k + 1 :], ints[2 * k + 1 :], fmt.max_ops - k, fmt.prime)
        prompt = " , ".join(main_st + dist_st) + f" , ? {names[k]} >"
        out.append(
            SyntheticProblem(
                prompt=prompt,
                completion=" , ".join(main_steps),
                answer=answer,
                ops=int(k),
                uid=f"{seed}-{i}",
            )
        )
    return out


def _parse_statements(prompt: str) -> tuple[dict[str, tuple], str]:
    body, sep, question = prompt.rpartition(" , ? ")
    if not sep or not question.endswith(" >"):
        raise InvalidParameterError(f"`prompt` must end with ', ? <name> >'; got {prompt!r}.")
    defs: dict[str, tuple] = {}
    for stmt in body.split(" , "):
        parts = stmt.split()
        if len(parts) == 3 and parts[1] == "=":
            defs[parts[0]] = (int(parts[2]),)
        elif len(parts) == 5 and parts[1] == "=" and parts[3] in OPERATORS:
            defs[parts[0]] = (parts[2], parts[3], int(parts[4]))
        else:
            raise InvalidParameterError(f"`prompt` has a malformed statement {stmt!r}.")
    return defs, question[: -len(" >")].strip()


def solve_prompt(prompt: str, prime: int = 7) -> tuple[int, int]:
    """Evaluate the asked quantity of ``prompt`` from its text.

    Returns
    -------
    (answer, ops) : tuple of int
        The value of the asked quantity and the number of operations on its dependency path.
    """
    defs, target = _parse_statements(prompt)
    if target not in defs:
        raise InvalidParameterError(f"`prompt` asks for {target!r}, which is not defined.")

    def value(name: str, depth: int = 0) -> tuple[int, int]:
        if depth > len(defs):
            raise InvalidParameterError(f"`prompt` has a cyclic definition at {name!r}.")
        d = defs[name]
        if len(d) == 1:
            return d[0] % prime, 0
        v, k = value(d[0], depth + 1)
        return _apply(d[1], v, d[2], prime), k + 1

    return value(target)


def answer_from_completion(completion: str) -> int | None:
    """The final answer written in a completion: the result of its last step.

    The last step (text after the last ``,``) must read ``x = a op b = c`` with an integer
    ``c``; otherwise (a truncated or malformed generation) the answer is None.
    """
    parts = completion.rpartition(",")[2].split()
    if len(parts) != 7 or parts[1] != "=" or parts[5] != "=":
        return None
    word = parts[6]
    return int(word) if word.lstrip("-").isdigit() else None


def check_problem(problem: SyntheticProblem, prime: int = 7) -> bool:
    """Re-evaluate the chain of ``problem`` from its prompt and check every solution step.

    True when the asked value and operation count match ``answer`` and ``ops``, and every step
    ``x = a op b = c`` of the completion has the right operands and result.
    """
    answer, ops = solve_prompt(problem.prompt, prime)
    if (answer, ops) != (problem.answer, problem.ops):
        return False
    defs, _ = _parse_statements(problem.prompt)
    steps = problem.completion.split(" , ")
    if len(steps) != ops:
        return False
    for step in steps:
        parts = step.split()
        if len(parts) != 7 or parts[1] != "=" or parts[5] != "=":
            return False
        name, a, op, b, c = parts[0], int(parts[2]), parts[3], int(parts[4]), int(parts[6])
        d = defs.get(name)
        if d is None or len(d) != 3 or (op, b) != (d[1], d[2]):
            return False
        if solve_prompt_value(defs, d[0], prime) != a or _apply(op, a, b, prime) != c:
            return False
    return answer_from_completion(problem.completion) == problem.answer


def solve_prompt_value(defs: dict[str, tuple], name: str, prime: int) -> int:
    """Value of ``name`` given parsed definitions (helper of :func:`check_problem`)."""
    d = defs[name]
    if len(d) == 1:
        return d[0] % prime
    return _apply(d[1], solve_prompt_value(defs, d[0], prime), d[2], prime)
