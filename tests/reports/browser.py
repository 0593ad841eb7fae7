"""Headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by selenium, for the report tests and
``docs/screenshots.py``.

The flags keep Chromium off the network (without the background-networking
ones its connections are refused on a closed network and logged as errors),
and each session gets a fresh profile directory.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
#: Images and charts with fewer distinct colours than this are taken for uniform (a blank or one-colour block).
MIN_COLOURS = 8


def missing() -> str | None:
    """Why Chromium cannot be driven here (a line naming what to run), or None."""
    absent = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if absent:
        return (f"{' and '.join(absent)} not found: `make test` installs them (or run "
                "`apt-get install -y chromium chromium-driver`)")
    return None


@contextmanager
def chromium(width: int = 1200, height: int = 1000) -> Iterator:
    """A selenium WebDriver of headless Chromium with a fresh profile, its console log kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="bidsapp-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
        try:
            yield driver
        finally:
            driver.quit()


@dataclass
class Element:
    """One ``<img>`` or inline ``<svg>`` of a page: what it is, whether it loaded, its distinct colours on screen."""

    kind: str
    name: str
    natural_width: int
    colours: int


@dataclass
class PageCheck:
    """What a page showed: its console's SEVERE entries and its images and charts."""

    severe: list[str]
    elements: list[Element]


def distinct_colours(png: bytes) -> int:
    """Distinct RGB values of a PNG screenshot."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    return len(np.unique(rgb, axis=0))


def check_page(driver, path: Path) -> PageCheck:
    """Open ``path``, then list the console's SEVERE entries and screenshot every image and chart."""
    from selenium.webdriver.common.by import By

    driver.get(path.resolve().as_uri())
    driver.execute_script("return document.readyState")
    elements = []
    for kind in ("img", "svg"):
        for element in driver.find_elements(By.TAG_NAME, kind):
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
            width = int(driver.execute_script("return arguments[0].naturalWidth || 0", element) if kind == "img"
                        else element.size["width"])
            name = element.get_attribute("alt") if kind == "img" else element.text.split("\n")[0]
            elements.append(Element(kind, name or "", width, distinct_colours(element.screenshot_as_png)))
    severe = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return PageCheck(severe, elements)


def demo_reports(results: Path) -> dict[str, Path]:
    """The four report types of a demo run (``results/fmriprep`` and ``results/hcp``, both levels; the one-sample
    group reports), by title."""
    from bidsapp.outputs.layout import GROUP_REPORT, OutputLayout

    reports = {}
    for name, title in (("fmriprep", "fMRIPrep"), ("hcp", "HCP")):
        layout = OutputLayout(results / name)
        participant = sorted(path.name[4:] for path in layout.output_dir.glob("sub-*") if path.is_dir())[0]
        reports[f"{title} participant"] = layout.participant_report(participant)
        reports[f"{title} group"] = layout.group_file(GROUP_REPORT, {"desc": "onesample"})
    return reports
