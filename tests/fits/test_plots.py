"""Plots: valid PNG and SVG files written offline; layered/faceted specs keep data at the top."""

from __future__ import annotations

import struct

import pytest

from fits import fit_charts, save_chart
from fits.results._plots import CHART_NAMES


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (after checking the signature)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def charts(small_fit):
    return fit_charts(small_fit)


def test_charts_have_top_level_data(charts):
    assert set(charts) == set(CHART_NAMES)
    fit_spec = charts["fit"].to_dict()
    assert (
        "facet" in fit_spec
        and "spec" in fit_spec
        and ("data" in fit_spec or "datasets" in fit_spec)
    )
    assert fit_spec["spec"]["layer"] and all(
        "data" not in layer for layer in fit_spec["spec"]["layer"]
    )
    assert charts["dstar"].to_dict()["layer"][0]["encoding"]["x"]["scale"]["type"] == "log"


def test_saved_files_are_valid_images(charts, tmp_path):
    files = save_chart(charts["heatmap"], tmp_path / "heatmap")
    data = files["png"].read_bytes()
    width, height = png_size(data)
    assert width > 100 and height > 100
    svg = files["svg"].read_text()
    assert svg.lstrip().startswith("<svg") and "</svg>" in svg
    html = files["html"].read_text()
    assert "vega" in html.lower() and "https://cdn" not in html  # offline: scripts inlined
