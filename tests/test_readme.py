"""Every command and example in README.md holds as written.

- Each ``tradeoff ...`` line parses against the real command tree: the (sub)command exists,
  every option is one of its options, the values convert to the option's type (choices,
  numbers), and no argument is left over. Paths are not checked (the files are the reader's).
- The numbers quoted beside commands are what the command prints.
- The Python tour runs against tiny real checkpoints and the report's sweep, and every
  ``print`` shows a result's readable summary (its ``__str__``), not a bare repr.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests._tiny import build_tokenizer, finetune_steps, save_model, tiny_llama

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)


def _command_lines() -> list[str]:
    """The indented ``tradeoff`` lines (code blocks), comments removed."""
    out = []
    for line in TEXT.splitlines():
        m = re.match(r"^ {4}(?:.*&& )?(?:\.venv/bin/)?(tradeoff .*)$", line)
        if m:
            out.append(re.sub(r"\s+#.*$", "", m.group(1)).strip())
    return out


def _tokens(line: str) -> list[str]:
    """shlex tokens; an optional part ``[--a x --b y]`` is spelled out (tried as given)."""
    return shlex.split(line.replace("[", " ").replace("]", " "))


def _root():
    """The click command tree of ``tradeoff`` (typer may carry its own copy of click, so the
    checks below go by behaviour, not by click's classes)."""
    from fits.cli.main import app

    return typer.main.get_command(app)


def _is_path(param) -> bool:
    """Whether a parameter holds a path (its existence is the reader's business)."""
    descriptor = getattr(param, "type_descriptor", None)  # typer >= 0.2x
    if descriptor is not None:
        return "Path" in str(descriptor.annotation)
    return any(k.__name__ in ("Path", "File") for k in type(param.type).__mro__)


def test_readme_has_commands_and_a_python_tour():
    lines = _command_lines()
    assert _python_blocks(), "README.md lost its ```python example"
    assert len(lines) >= 20 and "tradeoff demo --out demo-out" in lines
    assert "tradeoff kl-inv 0.1 0.05" in lines  # comments are dropped


@pytest.mark.parametrize("line", _command_lines())
def test_readme_command_parses(line):
    root = _root()
    args = _tokens(line)[1:]
    cmd, path = root, ["tradeoff"]
    ctx = root.make_context("tradeoff", [], resilient_parsing=True)
    while hasattr(cmd, "get_command"):  # a group: the next word names a subcommand
        assert args, f"{line!r}: `{' '.join(path)}` needs a subcommand"
        name = args.pop(0)
        sub = cmd.get_command(ctx, name)
        assert sub is not None, f"{line!r}: no command `{' '.join([*path, name])}`"
        cmd, path = sub, [*path, name]
        ctx = sub.make_context(name, [], parent=ctx, resilient_parsing=True)
    known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
    for token in args:
        name = token.split("=", 1)[0]
        if name.startswith("-") and not re.fullmatch(r"-[\d.]+(e-?\d+)?", name):
            assert name in known, f"{line!r}: `{' '.join(path)}` has no option {name}"
    try:
        parsed = cmd.make_context(" ".join(path), list(args), resilient_parsing=True)
    except Exception as exc:  # click's NoSuchOption / BadOptionUsage
        pytest.fail(f"{line!r}: {getattr(exc, 'format_message', exc.__str__)()}")
    assert not parsed.args, f"{line!r}: arguments left over: {parsed.args}"
    given = 0
    for param in cmd.params:
        source = parsed.get_parameter_source(param.name)
        if source is None or source.name != "COMMANDLINE":
            continue
        given += 1
        if _is_path(param):
            continue
        # resilient parsing turns a value that does not convert into None
        assert parsed.params[param.name] is not None, (
            f"{line!r}: the value of {param.opts[0]} does not convert"
        )
    assert given or not args, f"{line!r}: nothing on the line reached the command"


def test_readme_quoted_numbers():
    from fits.cli.main import app

    res = CliRunner().invoke(app, ["kl-inv", "0.1", "0.05"])
    assert res.exit_code == 0, res.output
    assert "0.2200786011" in res.output
    res = CliRunner().invoke(app, ["derive", "--K", "power", "--T", "power"])
    assert res.exit_code == 0, res.output
    assert "d*(n) ∝ n^(1/(2b+g))" in TEXT and "1/(2*b + g)" in res.output


@pytest.mark.parametrize("block", _python_blocks())
def test_readme_python_block_runs(block, tmp_path, monkeypatch):
    import fits
    import pacbound

    tokenizer = build_tokenizer()
    base = tiny_llama(seed=0)
    save_model(base, tmp_path / "base", tokenizer=tokenizer)
    save_model(
        finetune_steps(base, tokenizer, steps=2), tmp_path / "finetuned", tokenizer=tokenizer
    )
    (tmp_path / "paper").symlink_to(ROOT / "paper", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    printed: list[object] = []
    exec(compile(block, "README.md", "exec"), {"__name__": "readme", "print": printed.append})
    assert len(printed) == block.count("print(")
    for obj in printed:
        text = str(obj)
        assert text.strip() and (isinstance(obj, str) or text != repr(obj)), type(obj)
    kinds = [type(obj).__module__.split(".")[0] for obj in printed]
    assert kinds == ["builtins", "pacbound", "pacbound", "measurement", "fits"]
    fit = printed[-1]
    assert isinstance(fit, fits.FitResult) and "d*(n)" in str(fit)
    assert isinstance(printed[1], pacbound.BoundResult) and "kl bound" in str(printed[1])
    assert printed[0].startswith(("compiled kernel (", "numpy (")), printed[0]
    assert type(printed[3]).__name__ == "KLResult" and "nats" in str(printed[3])
