"""Each report type of the demo, opened in headless Chromium: no console error, every image loaded and not uniform.

``make test`` installs Debian's chromium and chromium-driver when missing; without them these tests fail (never
skip) with a line saying so. The checks themselves are first shown to catch a broken image, a one-colour image and
a script error on a page made for it.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from browser import MIN_COLOURS, check_page, chromium, demo_reports, missing

from bidsapp.reports.html import png_html

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def driver():
    reason = missing()
    if reason:
        pytest.fail(reason)
    with chromium() as session:
        yield session


def test_checks_catch_broken_uniform_images_and_errors(driver, tmp_path):
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (40, 60, 4), dtype=np.uint8)
    noisy[..., 3] = 255
    flat = np.full((40, 60, 4), 200, np.uint8)
    broken = base64.b64encode(b"\x89PNG\r\n\x1a\nnot a png").decode()
    page = tmp_path / "checks.html"
    page.write_text(f"<!DOCTYPE html><html><body>{png_html(noisy, 'noisy')}{png_html(flat, 'flat')}"
                    f"<img alt='broken' src='data:image/png;base64,{broken}'>"
                    "<script>console.error('planted error')</script></body></html>")
    check = check_page(driver, page)
    assert any("planted error" in message for message in check.severe)
    shown = {element.name: element for element in check.elements}
    assert shown["noisy"].natural_width == 60 and shown["noisy"].colours >= MIN_COLOURS
    assert shown["flat"].natural_width == 60 and shown["flat"].colours == 1
    assert shown["broken"].natural_width == 0


@pytest.mark.parametrize("kind", ["fMRIPrep participant", "HCP participant", "fMRIPrep group", "HCP group"])
def test_report_renders(driver, demo_results, kind):
    out, codes = demo_results
    assert set(codes.values()) == {0}
    path: Path = demo_reports(out)[kind]
    assert path.is_file(), path
    check = check_page(driver, path)
    assert check.severe == [], f"{path.name}: console errors {check.severe}"
    images = [element for element in check.elements if element.kind == "img"]
    assert images, f"{path.name} shows no image"
    assert [e.name for e in check.elements if e.natural_width == 0] == [], f"{path.name}: images not loaded"
    uniform = [(e.kind, e.name, e.colours) for e in check.elements if e.colours < MIN_COLOURS]
    assert uniform == [], f"{path.name}: images of fewer than {MIN_COLOURS} colours"
