"""The README's Python tour runs as written (against tiny real checkpoints and the report's sweep)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests._tiny import build_tokenizer, finetune_steps, save_model, tiny_llama

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_a_python_tour():
    assert _python_blocks(), "README.md lost its ```python example"


@pytest.mark.parametrize("block", _python_blocks())
def test_readme_python_block_runs(block, tmp_path, monkeypatch, capsys):
    tokenizer = build_tokenizer()
    base = tiny_llama(seed=0)
    save_model(base, tmp_path / "base", tokenizer=tokenizer)
    save_model(
        finetune_steps(base, tokenizer, steps=2), tmp_path / "finetuned", tokenizer=tokenizer
    )
    (tmp_path / "paper").symlink_to(ROOT / "paper", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    # Each print in the block is a result's summary, not an empty string or a bare repr.
    assert out.count("\n") > 10
    assert "d*(n)" in out and "kl bound" in out
