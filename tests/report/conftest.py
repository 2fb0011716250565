"""Fixtures of the report tests: a small synthetic lake + MLflow store, a headless browser."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from report.small_lake import SmallLake, shared_small_lake

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")


@pytest.fixture(scope="session")
def small_lake(spark, tmp_path_factory) -> SmallLake:
    """Every table the report reads, schema-correct, plus one finished MLflow run per job."""
    return shared_small_lake(spark, tmp_path_factory)


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium through selenium (skipped with the reason when it is not installed)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.skip(f"{missing} not found: run `make install` (infra/ensure_browser.sh installs chromium and "
                    "chromium-driver with apt)")
    profile = tempfile.mkdtemp(prefix="marketlab-chromium-")
    opts = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                "--hide-scrollbars", "--window-size=1400,1000", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    opts.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
