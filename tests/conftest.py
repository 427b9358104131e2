"""What every generator test shares: the order in which test files start, and the browser.

The suite runs on two xdist workers, a whole test file per worker (``--dist loadfile``). A worker
that draws a long file last keeps the run going while the other one idles, so files start longest
first (xdist's own reordering, by number of tests, would start last the one-test files that run a
Ray cluster or twenty concurrent retrains). Tests inside a file keep their order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import CHROMEDRIVER, CHROMIUM

# Longest first, by the seconds each file takes on a 2-core machine (CI's durations); unlisted files
# start after these.
LONGEST_FIRST = (
    "test_scale_out.py",
    "test_frameworks.py",
    "test_update_history.py",
    "test_text.py",
    "test_options.py",
    "test_images.py",
    "test_timeseries.py",
    "test_faults.py",
    "test_serving.py",
    "test_render.py",
    "test_update.py",
    "test_conventions.py",
    "test_team_scale.py",
    "test_cli.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium that can reach 127.0.0.1 and nothing else (every other name fails to resolve)."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    assert not missing, f"{missing} missing: apt-get install chromium chromium-driver (.ci/run does)"
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
