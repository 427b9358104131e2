"""mlfolio: generate complete, working machine-learning portfolio projects, and keep them up to date.

The public API is two functions the CLI is a thin layer over::

    from mlfolio import run_new, run_update
    run_new(Path("my-project"), {"task_type": "regression"}, defaults=True)
    run_update(Path("my-project"), data={"serving": "fastapi"}, defaults=True)
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mlfolio")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

from mlfolio._errors import MlfolioError
from mlfolio._new import NewResult, run_new
from mlfolio._update import UpdateResult, run_update

__all__ = ["MlfolioError", "NewResult", "UpdateResult", "__version__", "run_new", "run_update"]
