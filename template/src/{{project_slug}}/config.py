"""The single validated configuration object that every stage receives.

Loaded once from ``configs/config.yaml``; unknown keys are errors so a typo never passes silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_CONFIG = Path("configs/config.yaml")
# Metrics where lower is better (errors); every other metric is a score where higher is better.
ERRORS = frozenset({"rmse", "mae", "mase", "smape"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProjectConfig(_Section):
    name: str
    description: str = ""
    author: str = ""
    # Where the project site is published (GitHub/GitLab Pages), linked from the README's results.
    site_url: str | None = None


class DataConfig(_Section):
    source: str
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    target: str
    # Text encoding of a CSV; null reads UTF-8 and detects another encoding when that fails.
    encoding: str | None = None
    # How dates in the file are written: None decides from the whole column (day/month order too);
    # a strftime format ("%d/%m/%Y"); or year, quarter (20231) or month (202301) for integer periods.
    time_format: str | None = Field(default=None, pattern=r"^(year|quarter|month|.*%.*)$")
    # Tabular date columns: expand into year, month, day of week and days since 1970, or drop them.
    date_columns: Literal["expand", "drop"] = "expand"
    # Columns left out of the features, by their names in the file.
    drop_columns: list[str] = []
    # Identifier-like columns (near-unique text) are left out unless listed here.
    keep_columns: list[str] = []
    # Exact duplicate rows are data (two people can answer alike): kept unless this says otherwise.
    drop_duplicates: bool = False
    test_size: float = Field(default=0.2, gt=0, lt=0.5)
    validation_size: float = Field(default=0.2, gt=0, lt=0.5)
    min_rows: int = Field(default=50, ge=10)


class ImageConfig(_Section):
    """Image projects: what every image is normalised to, and what the data stage tolerates."""

    # (width, height) and channels (1 grey, 3 colour) of every image, in training and serving alike.
    size: list[int] = Field(default=[8, 8], min_length=2, max_length=2)
    channels: Literal[1, 3] = 1
    # An image with more pixels than this is refused before it is decoded (a decompression bomb).
    max_pixels: int = Field(default=40_000_000, ge=1)
    # Files that are not usable images are left out and listed; past this share the stage fails.
    max_unreadable_share: float = Field(default=0.05, ge=0, le=1)
    # Classes with fewer usable images are reported (a per-class metric on them is noise).
    min_class_images: int = Field(default=10, ge=1)


class TimeSeriesConfig(_Section):
    """Forecasting projects: which columns hold time and series, and what is forecast."""

    time_column: str = "time"
    # Several series in one file (one per store, sensor, ...): the column naming each; null: one series.
    series_column: str | None = None
    # A pandas offset alias ("MS" month start, "W-SUN", "D", "h"); null infers it from the timestamps.
    frequency: str | None = None
    # Steps forecast ahead; also the length of the test and validation tails of every series.
    horizon: int = Field(default=12, ge=1, le=1000)
    # Steps in one seasonal cycle (12 for monthly data); null derives it from the frequency.
    season_length: int | None = Field(default=None, ge=1)
    # Missing steps inside a series: "interpolate" (linear, counted), "fail" (stop, naming them).
    gaps: Literal["interpolate", "fail"] = "interpolate"
    # Past values the model reads (lags, in steps) and windows of rolling statistics over them.
    lags: list[int] = Field(default=[1, 2, 3, 6, 12], min_length=1)
    rolling_windows: list[int] = [3, 12]
    # Conformal prediction intervals: their target coverage, and the forecast origins (the last ones
    # of the training data) whose errors set their width.
    interval_level: float = Field(default=0.9, gt=0, lt=1)
    interval_windows: int = Field(default=24, ge=1, le=1000)


class TextConfig(_Section):
    """Text projects: which column holds the text, how it is cleaned, what the data stage tolerates."""

    column: str = "text"
    # Cleaning steps, in training and serving alike: HTML tags and entities out, runs of whitespace
    # as one space (each counted in the manifest).
    strip_html: bool = True
    collapse_whitespace: bool = True
    # Longer texts (characters, after cleaning) are left out of training and refused by the API.
    max_chars: int = Field(default=20_000, ge=1, le=1_000_000)
    # Rows with bytes the file's encoding cannot decode are left out and counted; past this share of
    # the lines the file is read in another encoding (detected and reported) instead.
    max_undecodable_share: float = Field(default=0.05, ge=0, le=1)
    # TF-IDF features of the linear models (the scikit-learn and XGBoost models, the linear reference).
    word_ngrams: list[int] = Field(default=[1, 2], min_length=2, max_length=2)
    min_df: int = Field(default=2, ge=1)
    max_features: int = Field(default=50_000, ge=10)


class ModelConfig(_Section):
    params: dict[str, Any] = {}


class EvaluationConfig(_Section):
    metric: Literal["f1", "accuracy", "roc_auc", "precision", "recall", "rmse", "mae", "r2", "mase", "smape"]
    # Absolute target for the metric; null leaves the gate to baseline_margin alone.
    threshold: float | None
    # Share of the gap between the best dummy baseline and a perfect score the model must close.
    baseline_margin: float = Field(default=0.1, ge=0, lt=1)
    slice_column: str | None = None
    slice_bins: int = Field(default=4, ge=2, le=20)
    slice_tolerance: float = Field(default=0.1, ge=0)
    positive_class: str | int | None = None
    # Binary classification: "tuned" chooses the probability cut-off on the validation split for the
    # target metric (f1 stands in for precision, recall and roc_auc), or for the cost ratio below;
    # "argmax" keeps 0.5; a number fixes it.
    decision_threshold: Literal["tuned", "argmax"] | float = "tuned"
    # Cost of a missed positive relative to a false alarm; when set, the cut-off minimises the cost.
    cost_ratio: float | None = Field(default=None, gt=0)
    # Bootstrap intervals of the test metrics (seeded); the gate reads the point estimate or the
    # pessimistic end of the interval.
    confidence_level: float = Field(default=0.95, gt=0.5, lt=1)
    bootstrap_resamples: int = Field(default=500, ge=100, le=100_000)
    gate_on: Literal["point", "interval"] = "point"
    # k-fold cross-validation of the training procedure on train + validation (0 switches it off).
    cv_folds: int = Field(default=5, ge=0, le=20)
    # About this many seconds of cross-validation, estimated from the training fit's time: beyond it,
    # fewer rows, then fewer folds; and no fold starts once those run say it would pass (never under
    # two). The report says which and why. None: always as configured.
    cv_seconds: float | None = Field(default=20.0, gt=0)
    permutation_repeats: int = Field(default=3, ge=1, le=100)
    # Cross-validation, permutation importance and partial dependence use a seeded sample of at most
    # this many rows (metrics and intervals always use every test row), so large files stay quick.
    analysis_rows: int = Field(default=5000, ge=100)
    worst_predictions: int = Field(default=10, ge=0, le=1000)

    @model_validator(mode="after")
    def _folds(self) -> EvaluationConfig:
        if self.cv_folds == 1:
            raise ValueError("evaluation.cv_folds must be 0 (off) or at least 2")
        return self

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in ERRORS


class ExportConfig(_Section):
    # Export the whole inference path to ONNX after training (tabular projects), checked on the test
    # split against the native model: probabilities (or values, relative to max(1, |value|)) within
    # tolerance and identical labels, or the graph is not kept.
    onnx: bool = True
    tolerance: float = Field(default=1e-4, gt=0, le=0.1)


class ServingConfig(_Section):
    max_batch: int = Field(default=1000, ge=1, le=100_000)
    # Requests with a larger body are refused with 413 before any parsing.
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # Append every prediction (inputs, output, model version, time) to data/predictions/*.jsonl.
    log_predictions: bool = False
    # Origins allowed to call the API from a browser; empty means CORS stays off.
    cors_origins: list[str] = []
    # A category the model never saw: "refuse" (422 naming the field and the allowed values) or
    # "accept" (predicted, counted in the response and in /metrics).
    unknown_categories: Literal["refuse", "accept"] = "refuse"
    # Records with a larger share of missing (null) features get 422: no confident guess from nothing.
    max_missing_share: float = Field(default=0.5, ge=0, le=1)
    # The prediction log is rotated past this size; this many rotated files are kept.
    log_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    log_keep_files: int = Field(default=5, ge=1)
    # Real test rows offered on the demo page (one the model gets wrong among them). Off unless set:
    # a user's rows may be people's records, and /metadata shows them to every client.
    demo_examples: int = Field(default=0, ge=0, le=20)
    # Which model answers: "onnx" runs the exported graph with ONNX Runtime when the model has one
    # that passed its check (else the native model, with a warning); "native" always the native one.
    runtime: Literal["onnx", "native"] = "onnx"
    # ONNX Runtime threads per worker: one request at a time, so more threads only add hand-over.
    onnx_threads: int = Field(default=1, ge=1, le=64)
    # Requests whose heavy work (decoding, cleaning, then the model, one call at a time) runs at once,
    # each in a thread off the event loop; more wait their turn, and /health answers meanwhile.
    concurrency: int = Field(default=2, ge=1, le=64)
    # Work budgets of one request, answered with 413 beyond them: the pixels of all its images
    # (image projects), the characters of all its texts (text projects), the points of its history
    # (time series).
    max_request_pixels: int = Field(default=100_000_000, ge=1)
    max_request_chars: int = Field(default=2_000_000, ge=1)
    max_history_points: int = Field(default=10_000, ge=1)


def too_sparse(missing: int, features: int, max_share: float) -> bool:
    """The one rule for a record with missing features: past ``serving.max_missing_share`` of them,
    the API refuses it (422) and the demo page never offers it."""
    return features > 0 and missing / features > max_share


class SearchDimension(_Section):
    """One tunable entry of ``model.params``: an int or float range, or a list of choices."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _complete(self) -> SearchDimension:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical search dimension needs a non-empty 'choices' list")
        elif self.low is None or self.high is None or self.low >= self.high:
            raise ValueError(f"an {self.type} search dimension needs 'low' < 'high'")
        elif self.log and self.low <= 0:
            raise ValueError("a log-scaled search dimension needs 'low' > 0")
        return self


class TuningConfig(_Section):
    """Hyperparameter search (the tune stage); ignored by projects without one."""

    n_trials: int = Field(default=20, ge=1)
    timeout_seconds: float | None = Field(default=None, gt=0)
    cv_folds: int = Field(default=3, ge=2, le=10)
    # SQLite in the project by default (relative paths are resolved from the root); any SQLAlchemy URL.
    storage: str = "sqlite:///optuna.db"
    study_name: str = "tuning"
    best_params: str = "configs/best_params.yaml"
    search_space: dict[str, SearchDimension] = {}


class DistributedConfig(_Section):
    """Scale-out on a cluster engine (projects rendered with one); the others ignore this section.

    Sized for this machine's two cores by default; on a real cluster raise ``workers`` and give each
    worker the CPUs (and GPUs) of one node.
    """

    # Training: data-parallel workers, the resources each one reserves, and how many times a lost
    # worker is replaced (the group then resumes from the last checkpoint) before the run fails.
    workers: int = Field(default=2, ge=1, le=1024)
    cpus_per_worker: float = Field(default=1.0, gt=0)
    gpus_per_worker: float = Field(default=0.0, ge=0)
    max_failures: int = Field(default=2, ge=0)
    # Epochs between two checkpoints (models trained in epochs): what a replaced worker can lose.
    checkpoint_every: int = Field(default=5, ge=1)
    # Tuning: trials running at once (each one a fit on the cluster).
    concurrent_trials: int = Field(default=2, ge=1)
    # Batch scoring: rows per batch (memory per scoring task) and scoring tasks at once.
    batch_rows: int = Field(default=4096, ge=1)
    scoring_tasks: int = Field(default=2, ge=1)
    cpus_per_scoring_task: float = Field(default=1.0, gt=0)
    # Serving: replicas of the API; with max_replicas set, the number follows the load between them.
    replicas: int = Field(default=2, ge=1)
    max_replicas: int | None = Field(default=None, ge=1)
    cpus_per_replica: float = Field(default=0.5, gt=0)

    @model_validator(mode="after")
    def _replica_range(self) -> DistributedConfig:
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError("distributed.max_replicas must be at least distributed.replicas")
        return self


class MonitorConfig(_Section):
    current: str = "data/processed/test.parquet"
    # The logged predictions replace `current` once they hold at least this many rows.
    min_logged_rows: int = Field(default=100, ge=1)
    psi_threshold: float = Field(default=0.2, gt=0)
    # A feature drifts when its PSI passes the threshold and the test of the two samples (KS or
    # chi-square) is significant at this level: a handful of rows is never called drift.
    p_value: float = Field(default=0.01, gt=0, lt=1)
    min_rows: int = Field(default=30, ge=1)
    drift_share: float = Field(default=0.3, gt=0, le=1)
    # The newest logged rows read, at most (the log is streamed; memory stays bounded).
    max_logged_rows: int = Field(default=100_000, ge=1)
    # Alert when more than this share of logged requests was refused for its content.
    max_refused_share: float = Field(default=0.05, ge=0, le=1)
    # Forecasting: retrain when the realised MAE passes this multiple of the error the backtest
    # measured at the same steps ahead.
    max_error_ratio: float = Field(default=1.5, gt=1)


class Config(_Section):
    project: ProjectConfig
    problem_statement: str
    task: Literal["classification", "regression"]
    seed: int = 42
    data: DataConfig
    image: ImageConfig = ImageConfig()
    timeseries: TimeSeriesConfig = TimeSeriesConfig()
    text: TextConfig = TextConfig()
    model: ModelConfig = ModelConfig()
    export: ExportConfig = ExportConfig()
    evaluation: EvaluationConfig
    serving: ServingConfig = ServingConfig()
    monitor: MonitorConfig = MonitorConfig()
    tuning: TuningConfig = TuningConfig()
    distributed: DistributedConfig = DistributedConfig()
    root: Path = Path()

    @model_validator(mode="after")
    def _metric_fits_task(self) -> Config:
        regression_metrics = {"rmse", "mae", "r2", "mase", "smape"}
        if (self.task == "regression") != (self.evaluation.metric in regression_metrics):
            raise ValueError(f"evaluation.metric {self.evaluation.metric!r} does not fit task {self.task!r}")
        return self

    @property
    def is_classification(self) -> bool:
        return self.task == "classification"

    # Locations, all derived from the root so tests can point a whole run at a temporary folder.
    @property
    def raw_dir(self) -> Path:
        return self.root / "data" / "raw"

    @property
    def processed_dir(self) -> Path:
        return self.root / "data" / "processed"

    @property
    def model_dir(self) -> Path:
        """The served model (a complete bundle); promotion swaps candidates in."""
        return self.root / "models" / "model"

    @property
    def candidates_dir(self) -> Path:
        """One folder per training run, until evaluation promotes it (or keeps it, gate failed)."""
        return self.root / "models" / "candidates"

    @property
    def predictions_dir(self) -> Path:
        return self.root / "data" / "predictions"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def figures_dir(self) -> Path:
        return self.reports_dir / "figures"

    @property
    def model_card_path(self) -> Path:
        return self.root / "MODEL_CARD.md"

    def with_best_params(self) -> Config:
        """This config with ``model.params`` overlaid by tuned values, when a tune run wrote any."""
        path = self.resolve(self.tuning.best_params)
        if not path.is_file():
            return self
        tuned = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("params") or {}
        if not isinstance(tuned, dict):
            raise ValueError(f"{path}: 'params' must be a mapping of parameter names to values")
        model = self.model.model_copy(update={"params": {**self.model.params, **tuned}})
        return self.model_copy(update={"model": model})

    def resolve(self, path: str | Path) -> Path:
        """A path from the config, relative to the project root unless absolute."""
        path = Path(path)
        return path if path.is_absolute() else self.root / path


def load_config(path: str | Path = DEFAULT_CONFIG) -> Config:
    """Read and validate the YAML config; the project root is the folder above ``configs/``."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    root = path.parent.parent if path.parent.name == "configs" else path.parent
    return Config.model_validate({**raw, "root": root})
