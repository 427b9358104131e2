"""Settings every generator test shares: the order in which test files start.

The suite runs on two xdist workers, a whole test file per worker (``--dist loadfile``). A worker
that draws a long file last keeps the run going while the other one idles, so files start longest
first (xdist's own reordering, by number of tests, would start last the one-test files that run a
Ray cluster or twenty concurrent retrains). Tests inside a file keep their order.
"""

from __future__ import annotations

import pytest

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
