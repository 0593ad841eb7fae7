"""One screenshot per report type of a demo run, taken with headless Chromium: ``make screenshots``.

Usage: ``python docs/screenshots.py RESULTS IMAGES`` where RESULTS holds a demo run's ``fmriprep`` and ``hcp``
output folders (``make demo`` writes them to ``demo_output/results``). Each report's top
:data:`HEIGHT` pixels at :data:`WIDTH` pixels across are saved as ``IMAGES/<report>.png`` in 256 colours.
Needs Debian's chromium and chromium-driver (``make browser``) and selenium (the test extra).
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "reports"))
from browser import chromium, demo_reports, missing  # noqa: E402  (the test helper, beside the tests)

WIDTH, HEIGHT = 1000, 1300


def screenshot(driver, page: Path, target: Path) -> int:
    """Save the top of ``page`` as a 256-colour PNG; its size in bytes."""
    driver.get(page.resolve().as_uri())
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT, "scale": 1}})
    image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
    return target.stat().st_size


def main(argv: list[str] | None = None) -> int:
    """Screenshot the four reports; 1 with a line naming what is missing (Chromium, a report)."""
    parser = argparse.ArgumentParser(description="One screenshot per report type of a demo run.")
    parser.add_argument("results", type=Path, help="a demo run's results folder (fmriprep/ and hcp/ in it)")
    parser.add_argument("images", type=Path, help="folder the screenshots go to")
    args = parser.parse_args(argv)
    reason = missing()
    if reason:
        print(f"screenshots: {reason}", file=sys.stderr)
        return 1
    reports = demo_reports(args.results)
    absent = [str(path) for path in reports.values() if not path.is_file()]
    if absent:
        print(f"screenshots: no report at {', '.join(absent)}: run `make demo` first", file=sys.stderr)
        return 1
    args.images.mkdir(parents=True, exist_ok=True)
    with chromium(WIDTH, HEIGHT) as driver:
        for title, page in reports.items():
            target = args.images / f"{title.lower().replace(' ', '-')}.png"
            print(f"{target}: {screenshot(driver, page, target) // 1024} KiB ({page.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
