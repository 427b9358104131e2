"""A real browser for the demo pages and sites under test: Debian's headless Chromium and its driver
(``.ci/run`` installs them; missing, the browser tests fail rather than skip), with the checks every
page shares. The ``browser`` fixture itself is in ``conftest.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def open_page(driver: Any, url: str) -> None:
    """Load ``url`` with an empty console log (the log keeps what earlier pages printed)."""
    driver.get_log("browser")
    driver.get(url)


def assert_loaded_offline(driver: Any, base: str) -> None:
    """Everything the page fetched came from the server itself, and the console shows no error."""
    fetched = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href])"
    )
    foreign = [url for url in fetched if not url.startswith(base + "/")]
    assert not foreign, f"page fetched from elsewhere: {foreign}"
    errors = [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]
    ]
    assert not errors, errors
