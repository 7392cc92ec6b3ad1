"""One builder for the self-contained HTML pages of fits (the fit report and the demo report).

A page is one file that opens offline: the style sheet is inline, every image is a PNG data URI,
and each chart's Vega-Lite spec is embedded as JSON in a ``<script type='application/json'>``
block (never executed; it is there to be read back or re-rendered). Text is escaped here;
blocks given as HTML (a fit summary's table) are inserted as they are.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["chart_block", "html_page", "png_img", "preformatted", "section"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:2px 8px;
font-size:13px;text-align:left}th{background:#f3f3f3}img{max-width:100%;margin:.5em 0}
pre{background:#f7f7f7;padding:.5em;overflow:auto;font-size:12px}.verdict{font-size:15px}
"""


def html_page(title: str, heading: str, blocks: Iterable[str]) -> str:
    """A whole page: ``<head>`` with ``title`` and the inline style, ``<h1>heading</h1>``, then
    the HTML ``blocks`` in order (e.g. from :func:`section`, :func:`chart_block`)."""
    esc = html.escape
    return "\n".join(
        [
            "<!DOCTYPE html>",
            "<html><head><meta charset='utf-8'>",
            f"<title>{esc(title)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>{esc(heading)}</h1>",
            *blocks,
            "</body></html>",
        ]
    )


def section(heading: str, *blocks: str, level: int = 2) -> str:
    """``<h{level}>heading</h{level}>`` (escaped) followed by the HTML ``blocks``."""
    return "\n".join([f"<h{level}>{html.escape(heading)}</h{level}>", *blocks])


def preformatted(text: str) -> str:
    """``text`` escaped in a ``<pre>`` block (summaries, configurations)."""
    return f"<pre>{html.escape(text)}</pre>"


def png_img(path: str | os.PathLike[str], alt: str) -> str:
    """An ``<img>`` holding the PNG file ``path`` as a base64 data URI."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def chart_block(
    name: str,
    png: str | os.PathLike[str],
    *,
    heading: str | None = None,
    caption: str = "",
    spec: Mapping[str, Any] | None = None,
    level: int = 2,
) -> str:
    """A chart: heading (``name`` by default), caption, the PNG inline and, when given, its
    Vega-Lite ``spec`` as JSON in ``<script type='application/json' id='spec-<name>'>``."""
    blocks = []
    if caption:
        blocks.append(f"<p>{html.escape(caption)}</p>")
    blocks.append(png_img(png, name))
    if spec is not None:
        body = json.dumps(spec).replace("</", "<\\/")  # a "</script>" inside cannot end the block
        ident = html.escape(f"spec-{name}")
        blocks.append(
            f"<details><summary>Vega-Lite spec</summary><script type='application/json' "
            f"id='{ident}'>{body}</script><p>The spec is embedded in this page "
            f"(script id {ident}).</p></details>"
        )
    return section(heading if heading is not None else name, *blocks, level=level)
