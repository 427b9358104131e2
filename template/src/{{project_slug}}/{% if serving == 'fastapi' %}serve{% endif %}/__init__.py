"""Stage 5 — serve predictions over HTTP with FastAPI.

The request schema comes from ``contract``, generated from the feature schema saved with the model,
so a wrong type, a missing feature, an unknown one or a NaN is answered with a 422 that names the
field, before the model is touched. The model is loaded once, when the app is created.

Fast by construction, and never blocked: records are validated straight into plain dicts and
responses are serialised with orjson; work that can take more than a few milliseconds (decoding
images, cleaning texts, the model call) runs in a bounded pool of ``serving.concurrency`` threads,
so ``/health`` answers while the heaviest request the contract allows is worked on. Only a small
batch for an ONNX graph (well under a millisecond) is answered on the event loop. One thin ASGI
guard in front of the routes refuses a body of a type the contract does not take (415) and
oversized bodies (413), writes one JSON access-log line per request and feeds the Prometheus
metrics. Errors never carry a stack trace; CORS is off unless origins are configured.

When the ``API_KEY`` variable is set (set but empty, the server refuses to start), ``/predict``,
``/metadata`` and ``/metrics`` need it in ``X-API-Key`` (checked before the body is read); ``/``,
``/health``, ``/ready``, ``/docs``, ``/openapi.json`` and the static files stay public. A category
the model never saw is refused with a 422 naming the field and the allowed values, or, with
``serving.unknown_categories: accept``, predicted and counted; a record with too many missing
features is refused rather than guessed.

One module per concern: ``predictor`` (records in, labels out), ``logs`` (the prediction log and
JSON log lines), ``guard`` (the ASGI layer: types, sizes, the key, metrics), ``bodies`` (fast JSON)
and ``app`` (the routes, built around a loaded model).
"""

from .app import STATIC_DIR, app_from_env, create_app, run, serving_model
from .predictor import Predictor, PredictResponse

__all__ = ["STATIC_DIR", "PredictResponse", "Predictor", "app_from_env", "create_app", "run", "serving_model"]
