"""The report renders in headless Chromium: plots present and non-empty, no console errors, no fetches."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sftscope.analyze.pipeline import analyze
from sftscope.analyze.synthetic import synthetic_runs, write_synthetic_store
from sftscope.report.build import write_report

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (dev extra)")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
)
# The flags the closed network needs: no first-run, sync, update or background traffic.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    study = tmp_path_factory.mktemp("study")
    write_synthetic_store(study / "results.duckdb", n_prompts=24)
    analysis = analyze(study, synthetic_runs(), n_boot=200)
    return write_report(analysis, study, "Synthetic study").html


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument("--window-size=1280,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: otherwise Selenium Manager would try to download one.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_report_renders_with_plots_and_without_errors(
    report: Path, browser: WebDriver, tmp_path: Path
) -> None:
    from PIL import Image
    from selenium.webdriver.common.by import By

    browser.get(report.as_uri())
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(int(height) + 100, 16000))
    screenshot = tmp_path / "report.png"
    assert browser.save_screenshot(str(screenshot))
    page = Image.open(io.BytesIO(screenshot.read_bytes())).convert("RGB")

    figures = browser.find_elements(By.CSS_SELECTOR, "figure.plot")
    assert {f.get_attribute("id") for f in figures} >= {
        "fig-scores",
        "fig-shape",
        "fig-behaviours",
        "fig-gain-cost",
    }
    for figure in figures:
        svg = figure.find_element(By.TAG_NAME, "svg")
        assert svg.size["width"] > 300 and svg.size["height"] > 150, figure.get_attribute("id")
        drawn = browser.execute_script("return arguments[0].querySelectorAll('path, use').length", svg)
        assert drawn > 50, figure.get_attribute("id")
        # Non-empty on screen, not just in the DOM: the plot's pixels hold many colours.
        box = svg.rect
        crop = page.crop((box["x"], box["y"], box["x"] + box["width"], box["y"] + box["height"]))
        assert len(crop.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 20, figure.get_attribute("id")

    assert len(browser.find_elements(By.CSS_SELECTOR, ".finding")) == 4
    assert browser.find_elements(By.CSS_SELECTOR, "table.data[data-key='dips'] tbody tr")
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    # Self-contained: the page loads nothing besides itself.
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
