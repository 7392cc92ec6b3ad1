"""pacbound.support.progress_bar: counts and notes on stderr, nothing on stdout."""

from __future__ import annotations

from pacbound.support import progress_bar


def test_notes_print_above_the_bar_on_stderr(capsys):
    with progress_bar("sweep demo", 2) as advance:
        advance(1, note="  ok run-a (1.0 s)")
        advance(note="  x run-b [bold](2.0 s)")  # printed as text, not as rich markup
    out, err = capsys.readouterr()
    assert out == ""
    assert "  ok run-a (1.0 s)" in err and "  x run-b [bold](2.0 s)" in err and "2/2" in err


def test_disabled_bar_draws_and_notes_nothing(capsys):
    with progress_bar("quiet", 3, enabled=False) as advance:
        advance(2, note="not shown")
        advance()
    assert capsys.readouterr() == ("", "")
