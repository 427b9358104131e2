"""The app: the routes around a loaded model, and how uvicorn starts it.

No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at run time,
and the request's reader (``Depends(read_records)``) is a local name of ``create_app``.
"""

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import orjson
from fastapi import Depends, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import artifacts, contract, runtime
from ..bundle import Bundle, gate_status, open_bundle
from ..config import DEFAULT_CONFIG, Config, load_config
from ..contract import too_many_missing
from ..protocols import ServingContract
from .bodies import FastJsonRoute
from .guard import API_KEY_HEADER, Guard, Metrics, refuse
from .logs import PredictionLog, error_log, log_config
from .predictor import Predictor, PredictResponse, UnusableInput

# This modality's contract module, held to the contract by mypy.
served_contract: ServingContract = contract

CONFIG_ENV = "PROJECT_CONFIG"
API_KEY_ENV = "API_KEY"
STATIC_DIR = Path(__file__).parent.with_name("static")
T = TypeVar("T")
# Records an ONNX graph answers on the event loop: a thread hop would cost more than the graph call.
INLINE_ROWS = 32


def _metadata(config: Config, trained: Bundle, api_key: bool) -> dict[str, Any]:
    schema = trained.schema
    evaluation = gate_status(trained.directory) or {}
    return {
        # Who this model is for and why: the demo page's title and its problem statement.
        "project": {
            "name": config.project.name,
            "description": config.project.description,
            "problem_statement": config.problem_statement,
            "site_url": config.project.site_url,
        },
        "model_version": trained.version,
        "framework": trained.metadata["framework"],
        "architecture": trained.metadata["architecture"],
        "task": schema.task,
        "target": schema.target,
        "classes": schema.classes,
        "metrics": {
            "validation": trained.metadata["validation_metrics"],
            "test": evaluation.get("test") or _reported_test_metrics(config),
        },
        "features": [feature.model_dump(exclude_none=True) for feature in schema.features],
        # Medians and most frequent values, built by the data stage: never a real person's record.
        "example": schema.example,
        "max_batch": config.serving.max_batch,
        "api_key_required": api_key,
        # The gate this model passed (or was served despite, with --force) when it was promoted.
        "gate": {key: evaluation[key] for key in ("gate", "forced") if key in evaluation} or None,
        # Real test rows with their true answer (serving.demo_examples of them; none by default).
        "examples": evaluation.get("examples", []),
        # Binary classification: the probability cut-off for the positive class that /predict uses.
        "decision_threshold": trained.threshold,
        "unknown_categories": config.serving.unknown_categories,
        "max_missing_share": config.serving.max_missing_share,
        # What the modality adds (a forecaster: its route, series, horizon and frequency).
        **served_contract.metadata(trained),
    }


def _reported_test_metrics(config: Config) -> dict[str, Any] | None:
    """The last report's test metrics, for a bundle promoted before bundles kept their own.

    The report only describes the model: a corrupt one is named in the log, never fatal.
    """
    path = config.reports_dir / "metrics.json"
    if not path.is_file():
        return None
    try:
        return artifacts.read_json(path).get("test")
    except artifacts.ArtifactError as error:
        error_log.warning("test metrics left out of /metadata: %s", error)
        return None


def load_runtime(config: Config, trained: Bundle) -> tuple[runtime.OnnxModel | None, dict[str, Any]]:
    """The ONNX model to answer with, or None for the native one, and which runtime that is and why.

    A corrupted export raises ``ArtifactError`` (the service refuses to start); one that is missing
    or failed its check leaves the native model answering, with a warning in the log.
    """
    native = {"name": "native", "framework": trained.metadata["framework"]}
    if config.serving.runtime == "native":
        return None, {**native, "reason": "serving.runtime is native in the config"}
    try:
        onnx = runtime.load(trained.directory, trained.metadata, config.serving.onnx_threads)
    except runtime.Unavailable as why:
        exported = (trained.metadata.get("onnx") or {}).get("exported")
        (error_log.warning if exported else error_log.info)("serving the native model: %s", why)
        return None, {**native, "reason": str(why)}
    return onnx, {"name": "onnxruntime", "version": runtime.ort.__version__, "file": onnx.file}


def serving_model(
    config: Config, bundle: Bundle | None = None
) -> tuple[Bundle, runtime.OnnxModel | None, dict[str, Any]]:
    """What answers: the bundle, its ONNX model (None: the native one) and which runtime that is.

    The native model is loaded (``train.load_trained``, which imports the framework) only when it
    answers: with a usable ONNX export the service never imports scikit-learn, pandas or the
    deep-learning framework, starts fast and runs in an image that leaves them out. A modality
    with its own model call (``contract.Predictor``) always uses the native model.
    """
    bundle = bundle or open_bundle(config)
    onnx, runtime_info = load_runtime(config, bundle)
    if (onnx is None or served_contract.Predictor is not None) and bundle.native_model is None:
        try:
            from ..train import load_trained  # here, not at the top: see above
        except ModuleNotFoundError as error:  # an environment built for ONNX serving only
            raise artifacts.ArtifactError(
                f"the native model is needed ({runtime_info.get('reason', 'no ONNX model')}) and this "
                f"environment lacks {error.name}: serve a model whose ONNX export passed its check, "
                "or install every dependency (uv sync; the image built with --build-arg VENV=full)"
            ) from None
        bundle = load_trained(config, bundle.directory)
    return bundle, onnx, runtime_info


def _key_docs(api_key: str | None) -> list[Any]:
    """The API key as the OpenAPI document shows it on guarded routes (``Guard`` enforces it)."""
    if not api_key:
        return []
    header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="Set when API_KEY is set")
    return [Security(header)]


def create_app(
    config: Config,
    trained: Bundle | None = None,
    api_key: str | None = None,
    log_predictions: bool | None = None,
) -> FastAPI:
    """Build the app around a loaded model (``models/model`` unless given).

    ``api_key`` defaults to the ``API_KEY`` variable and ``log_predictions`` to the config.
    """
    trained, onnx, runtime_info = serving_model(config, trained)
    api_key = api_key if api_key is not None else api_key_from_env()
    # The modality's own model call when it has one (a forecast), else records in, labels out.
    modality_predictor = served_contract.Predictor
    predictor = modality_predictor(trained) if modality_predictor else Predictor(trained, onnx)
    accept_unknown = config.serving.unknown_categories == "accept"
    offload = Offload(config.serving.concurrency)
    read_records = contract.reader(trained, config, offload)
    inline = onnx is not None and modality_predictor is None
    # The model answers one call at a time: not every framework's model (a Keras graph, a
    # forecaster that moves its own state) is safe to call from two threads. Decoding and cleaning
    # still run side by side; more model throughput comes from worker processes (--workers).
    model_lock = threading.Lock()

    def one_at_a_time(records: list[dict[str, Any]]) -> dict[str, Any]:
        with model_lock:
            return predictor(records)

    metadata = {**_metadata(config, trained, bool(api_key)), "runtime": runtime_info}
    log = (
        PredictionLog(config.predictions_dir, config.serving.log_max_bytes, config.serving.log_keep_files)
        if (config.serving.log_predictions if log_predictions is None else log_predictions)
        else None
    )
    metrics = Metrics(trained)
    guarded = _key_docs(api_key)
    # FastAPIOffline serves Swagger UI and ReDoc from files in the package: /docs works offline.
    app = FastAPIOffline(
        title=config.project.name,
        description=config.problem_statement,
        version=trained.version,
        static_url="/static-docs",
    )
    app.router.route_class = FastJsonRoute
    app.add_middleware(
        Guard,
        max_body=config.serving.max_body_bytes,
        metrics=metrics,
        body_paths=frozenset({contract.ROUTE}),
        api_key=api_key,
        guarded_paths=GUARDED_PATHS,
    )
    if config.serving.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=config.serving.cors_origins, allow_methods=["GET", "POST"]
        )
    app.state.ready = True

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # Logged here with its traceback; the client only learns that it failed.
        error_log.error("unhandled error on %s", request.url.path, exc_info=exc)
        return JSONResponse(status_code=500, content={"detail": "internal server error"})

    def note_refusal(request: Request, status: int) -> None:
        if log is not None and request.url.path == contract.ROUTE:
            log.refusal(status, trained.version)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # Type, place and message of each error; never the input echoed back (it may be NaN or huge).
        detail = [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()[:100]]
        note_refusal(request, 422)
        return refuse(422, detail)

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, exc: StarletteHTTPException) -> Response:
        # The request contract's refusals (an upload that is not a usable image) and the router's.
        if exc.status_code in {413, 415, 422}:
            note_refusal(request, exc.status_code)
        return refuse(exc.status_code, exc.detail, exc.headers)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.head("/health", include_in_schema=False)
    async def health_head() -> Response:
        """Liveness for probes that send HEAD (load balancers, curl -I)."""
        return Response(status_code=200)

    @app.get("/ready", responses={503: {"description": "The model is not loaded"}})
    async def ready() -> JSONResponse:
        """Readiness: the model is loaded and predictions will be answered."""
        if not app.state.ready:
            return JSONResponse({"status": "loading"}, status_code=503)
        # Public, so a client (the demo page) learns that it needs a key before asking for data.
        return JSONResponse(
            {"status": "ready", "model_version": trained.version, "api_key_required": bool(api_key)}
        )

    @app.get("/metadata", dependencies=guarded, responses=_KEY_REFUSED)
    async def get_metadata() -> dict[str, Any]:
        """The model, its metrics and the feature schema (the demo page builds its form from it)."""
        return metadata

    @app.get("/metrics", dependencies=guarded, response_class=Response, responses=_KEY_REFUSED)
    async def get_metrics() -> Response:
        """Prometheus metrics of this worker process."""
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        contract.ROUTE,
        response_model=served_contract.RESPONSE or PredictResponse,
        dependencies=guarded,
        responses={
            400: {"description": "Body cannot be decoded (not UTF-8) or was cut short"},
            **_KEY_REFUSED,
            413: {"description": "Body over serving.max_body_bytes, or over the request's work budget"},
            415: {"description": f"Body of a type {contract.ROUTE} does not take"},
        },
        openapi_extra=contract.openapi_body(config),
    )
    async def predict(records: Annotated[list[dict[str, Any]], Depends(read_records)]) -> Response:
        """Predict one record or a batch (up to serving.max_batch records)."""
        empty = too_many_missing(records, config.serving.max_missing_share)
        if empty:
            return refuse(422, empty)
        try:
            # A small batch for an ONNX graph is answered here; anything heavier waits for a thread.
            result = (
                predictor(records)
                if inline and len(records) <= INLINE_ROWS
                else await offload(one_at_a_time, records)
            )
        except UnusableInput as error:
            return refuse(422, [{"type": "value_error", "loc": ["body", "records"], "msg": str(error)}])
        metrics.rows.inc(len(records))
        if accept_unknown:
            result["unknown_categories"] = predictor.inputs.unknown_categories(records)
            for name, count in result["unknown_categories"].items():
                metrics.unknown.labels(name).inc(count)
        if log is not None:
            result["logged"] = log.write(contract.loggable(records), result)
            if not result["logged"]:
                metrics.unlogged.inc(len(records))
        return Response(orjson.dumps(result), media_type="application/json")

    @app.get("/", include_in_schema=False)
    async def demo() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=_PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


class Offload:
    """Run a blocking call in a pool of ``concurrency`` threads, so the event loop stays free.

    Requests beyond ``concurrency`` wait their turn (a queue, not more threads): /health and
    /ready still answer at once, and the work at hand stays bounded by the config, not by the
    number of clients. Decoding, cleaning and the model release the GIL for their heavy parts (Pillow, NumPy,
    the model libraries), so the loop gets its turn within Python's switch interval.
    """

    def __init__(self, concurrency: int) -> None:
        self.limiter = anyio.CapacityLimiter(concurrency)

    async def __call__(self, work: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(work, *args, limiter=self.limiter)


def api_key_from_env() -> str | None:
    """The key ``API_KEY`` sets, or None when it is unset. A set but empty key is a mistake (an
    unfilled secret, ``API_KEY=$UNSET``): refused, never read as "no authentication"."""
    value = os.environ.get(API_KEY_ENV)
    if value is None:
        return None
    if not value.strip():
        raise ValueError(
            f"{API_KEY_ENV} is set but empty: set it to the key clients must send in {API_KEY_HEADER}, "
            f"or unset it to serve without a key"
        )
    return value


# Routes that need the key when API_KEY is set (checked in Guard, before the body is read).
GUARDED_PATHS = frozenset({contract.ROUTE, "/metadata", "/metrics"})
# Documented on every guarded route, so clients (and Schemathesis) know a 401 can come back.
_KEY_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"description": "API key missing or wrong (only when API_KEY is set)"}
}

# The demo page loads only its own script and style, and nothing may frame it.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def app_from_env() -> FastAPI:
    """Factory for uvicorn (``--factory``), so several workers each load the model once."""
    return create_app(load_config(os.environ.get(CONFIG_ENV, str(DEFAULT_CONFIG))))


def run(config_path: Path, host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    # Fail here, with a clear message, rather than inside a worker process.
    config = load_config(config_path)
    api_key_from_env()
    serving_model(config)
    os.environ[CONFIG_ENV] = str(config_path)
    print(f"Serving on http://{host}:{port} (demo page /, API docs /docs)", file=sys.stderr)
    uvicorn.run(
        f"{__name__}:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=log_config(),
        access_log=False,
        server_header=False,
        # Idle keep-alive connections close after 5 s; shutdown waits at most 5 s for slow clients.
        timeout_keep_alive=5,
        timeout_graceful_shutdown=5,
    )
