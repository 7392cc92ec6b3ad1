"""The one HTML page builder of fits: self-contained pages, escaped text, specs read back."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser

from fits.results._html import chart_block, html_page, png_img, preformatted, section

# The smallest valid PNG: 1x1, one grey pixel.
_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNoAAAAggCBd81ytgAAAABJRU5ErkJggg=="
)

_VOID = {"meta", "img", "br", "hr", "link", "input"}


class _Page(HTMLParser):
    """Collects headings, images, JSON scripts and the open-tag stack of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: dict[str, list[str]] = {}
        self.images: list[dict[str, str | None]] = []
        self.scripts: dict[str, str] = {}
        self._script: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a)
        if tag == "script":
            self._script = a.get("id")
            self.scripts[self._script] = ""
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()
        if tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self.scripts[self._script] += data
        elif self.stack:
            self.text.setdefault(self.stack[-1], []).append(data)


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == [], (parser.errors, parser.stack)
    return parser


def test_page_shell_escapes_text_and_keeps_blocks(tmp_path):
    page = html_page(
        "a <b> & c",
        "Fit: d*(n) < 3",
        [section("Config & more", preformatted("x < y && </pre>")), "<p><b>kept</b></p>"],
    )
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    parsed = _parse(page)
    assert parsed.text["title"] == ["a <b> & c"]
    assert parsed.text["h1"] == ["Fit: d*(n) < 3"]
    assert parsed.text["h2"] == ["Config & more"]
    assert "".join(parsed.text["pre"]) == "x < y && </pre>"
    assert parsed.text["b"] == ["kept"]  # HTML blocks go in as they are


def test_chart_block_embeds_the_png_and_a_spec_that_reads_back(tmp_path):
    png = tmp_path / "fit.png"
    png.write_bytes(_PNG)
    spec = {"$schema": "vega-lite", "title": "ends </script> early?", "data": [1.5, None]}
    page = html_page("t", "h", [chart_block("fit", png, caption="a < b", spec=spec)])
    parsed = _parse(page)
    (img,) = parsed.images
    assert img["alt"] == "fit"
    assert base64.b64decode(img["src"].removeprefix("data:image/png;base64,")) == _PNG
    assert json.loads(parsed.scripts["spec-fit"]) == spec
    assert parsed.text["h2"] == ["fit"] and "a < b" in parsed.text["p"]
    assert "http" not in page  # nothing fetched from elsewhere


def test_chart_block_without_spec_and_with_heading(tmp_path):
    png = tmp_path / "p.png"
    png.write_bytes(_PNG)
    block = chart_block("per_op", png, heading="Accuracy per op", level=3)
    parsed = _parse(block)
    assert parsed.text["h3"] == ["Accuracy per op"] and parsed.scripts == {}
    assert png_img(png, 'a"b').startswith('<img alt="a&quot;b" src="data:image/png;base64,')
