"""Export the whole inference path to one ONNX graph, and prove it predicts what the native model does.

The fitted preprocessing is converted with skl2onnx and the model by its framework's converter
(``model.onnx_parts``); the two graphs are joined into one, so the graph takes raw feature
values (numbers as float64, categories as strings) and returns what the native model returns. The
preprocessed features are cast to float32 between the two, as the native trees and networks read them.

The graph is then run by ONNX Runtime, through the same record-to-array code the service uses, on
the whole test split and compared with the native model: labels (decided from the probabilities
with the trained threshold) must be identical and probabilities or values within
``export.tolerance``. A graph that fails is not kept and serving uses the native model; either way
the outcome is recorded in the model's metadata and its card.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import artifacts, features, model, processed, runtime
from .bundle import decide
from .config import Config
from .data import Schema
from .features import split_xy
from .model import Model
from .protocols import ModalityFeatures, ModelModule

modality: ModalityFeatures = features  # this modality's module, held to the contract by mypy
framework: ModelModule = model  # this framework's model module, likewise

if TYPE_CHECKING:  # imported where a graph is built: a model with no ONNX path never pays for it
    import onnx

# The standard operator set the graphs are written for (ONNX Runtime has run it since 1.14).
OPSET = 18
FEATURES = "features"
# The graph's one output: class probabilities (classes in the native model's order) or values.
OUTPUT = "prediction"


class ExportError(Exception):
    """The model cannot be expressed as one ONNX graph; the reason is recorded and serving stays native."""


def export(
    model: Model,
    schema: Schema,
    directory: Path,
    config: Config,
    threshold: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``model.onnx`` into the bundle being staged when it passes the check; its record either way.

    ``threshold`` is the decision threshold chosen at training: labels are compared as served.
    """
    if not config.export.onnx:
        return {"exported": False, "reason": "export.onnx is off in the config"}
    started = time.perf_counter()
    try:
        graph, spec = build_graph(model, schema)
    except ExportError as error:
        return {"exported": False, "reason": str(error)}
    path = directory / runtime.ONNX_FILE
    with artifacts.atomic_path(path) as staging:
        staging.write_bytes(graph.SerializeToString())
    # Two implementations of one model compared on the test split: nothing is chosen or fitted there.
    try:
        outcome = check(model, schema, processed.load_split(config, "test"), path, spec, config, threshold)
    except Exception as error:  # ONNX Runtime's errors share no base class beyond Exception
        outcome = {"equivalent": False, "reason": f"ONNX Runtime cannot run it: {error}"}
    record = {
        "exported": True,
        "file": runtime.ONNX_FILE,
        "sha256": artifacts.sha256_file(path),
        "opset": {entry.domain or "ai.onnx": entry.version for entry in graph.opset_import},
        **spec,
        **outcome,
        "export_seconds": round(time.perf_counter() - started, 2),
    }
    if not record["equivalent"]:
        path.unlink()  # only a graph that passed is ever in a bundle
    return record


def build_graph(model: Model, schema: Schema) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """The preprocessing and model graphs joined, and what the runtime needs to feed and read it."""
    import onnx

    for_onnx = modality.for_onnx  # the modality's part
    onnx_parts = framework.onnx_parts  # the framework's part
    if for_onnx is None:
        raise ExportError("no ONNX export for this kind of data yet")
    if onnx_parts is None:
        raise ExportError(f"no ONNX export for {framework.FRAMEWORK} models yet")
    try:
        fitted, tail, output = onnx_parts(model, FEATURES)
        preprocessor, inputs = for_onnx(fitted, schema)
        head = _preprocessor_graph(preprocessor, inputs)
        # Graph input names are made identifiers ("mean radius" -> "mean_radius"): keep both.
        inputs = [{**spec, "input": port.name} for spec, port in zip(inputs, head.graph.input, strict=True)]
        graph = _join(head, tail, output)
        onnx.checker.check_model(graph, full_check=True)
    except (RuntimeError, ValueError, TypeError, NotImplementedError, onnx.checker.ValidationError) as error:
        raise ExportError(f"conversion failed: {type(error).__name__}: {error}") from None
    spec: dict[str, Any] = {"inputs": inputs, "output": OUTPUT}
    if schema.task == "classification":  # the order of the probability columns, for the service
        spec["classes"] = [c.item() if isinstance(c, np.generic) else c for c in model.classes]
    return graph, spec


def _preprocessor_graph(preprocessor: Any, inputs: list[dict[str, str]]) -> onnx.ModelProto:
    """The fitted preprocessing with skl2onnx: one ``[rows, 1]`` input per feature, float32 out."""
    import onnx

    # Imported here: skl2onnx takes most of a second to import, and only training exports.
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    _use_float64_imputer()
    types = {"double": DoubleTensorType, "string": StringTensorType}
    initial = [(spec["name"], types[spec["type"]]([None, 1])) for spec in inputs]
    graph = convert_sklearn(
        preprocessor,
        initial_types=initial,
        final_types=[("transformed", DoubleTensorType([None, None]))],
        target_opset={"": OPSET, "ai.onnx.ml": 2},
    )
    # The native model reads float32 (trees compare float32 values, networks compute in float32).
    graph.graph.node.append(
        onnx.helper.make_node(
            "Cast", ["transformed"], [FEATURES], to=onnx.TensorProto.FLOAT, name="to_float32"
        )
    )
    del graph.graph.output[:]
    graph.graph.output.append(onnx.helper.make_tensor_value_info(FEATURES, onnx.TensorProto.FLOAT, None))
    return graph


def _use_float64_imputer() -> None:
    """Convert numeric ``SimpleImputer`` steps with IsNaN + Where in float64.

    skl2onnx's converter uses ONNX's ``Imputer``, which ONNX Runtime runs in float32 only: the
    scaled values then differ from the native ones in the last bits, enough to send a value to the
    other side of a tree's threshold (probabilities off by 0.1 on real data). Strings keep the stock
    converter.
    """
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import StringTensorType
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
    from sklearn.impute import SimpleImputer

    def convert(scope: Any, operator: Any, container: Any) -> None:
        import onnx

        if isinstance(operator.inputs[0].type, StringTensorType):
            convert_sklearn_imputer(scope, operator, container)
            return
        values = concatenate_variables(scope, operator.inputs, container)
        fills = scope.get_unique_variable_name("imputed_values")
        statistics = operator.raw_operator.statistics_.astype(np.float64)
        container.add_initializer(fills, onnx.TensorProto.DOUBLE, [statistics.size], statistics.tolist())
        missing = scope.get_unique_variable_name("missing")
        container.add_node("IsNaN", [values], [missing], name=scope.get_unique_operator_name("IsNaN"))
        container.add_node(
            "Where",
            [missing, fills, values],
            [operator.outputs[0].full_name],
            name=scope.get_unique_operator_name("Where"),
        )

    update_registered_converter(
        SimpleImputer, "SklearnImputer", calculate_sklearn_imputer_output_shapes, convert
    )


def _join(head: onnx.ModelProto, tail: onnx.ModelProto, output: str) -> onnx.ModelProto:
    """One graph: the preprocessing's float32 features into the model, its ``output`` out as ``OUTPUT``."""
    import onnx

    versions: dict[str, int] = {}
    for graph in (head, tail):
        for entry in graph.opset_import:
            versions[entry.domain] = max(versions.get(entry.domain, 0), entry.version)
    for graph in (head, tail):
        del graph.opset_import[:]
        graph.opset_import.extend(onnx.helper.make_opsetid(domain, v) for domain, v in versions.items())
        graph.ir_version = max(head.ir_version, tail.ir_version)
    tail_input = tail.graph.input[0].name
    # The model's names are prefixed (they could clash with the preprocessing's); its output is
    # renamed to the one name the runtime asks for.
    prefixed = f"model_{output}"
    joined = onnx.compose.merge_models(
        head, tail, io_map=[(FEATURES, tail_input)], outputs=[prefixed], prefix2="model_"
    )
    for node in joined.graph.node:
        node.output[:] = [OUTPUT if name == prefixed else name for name in node.output]
    joined.graph.output[0].name = OUTPUT
    joined.producer_name = "mlfolio export"
    return joined


def check(
    model: Model,
    schema: Schema,
    test: pd.DataFrame,
    path: Path,
    spec: dict[str, Any],
    config: Config,
    threshold: dict[str, Any] | None,
) -> dict[str, Any]:
    """Run the graph as the service will and compare it with the native model on every test row."""
    x_test, _ = split_xy(test, schema)
    records = x_test.astype(object).where(x_test.notna(), None).to_dict("records")
    exported = runtime.OnnxModel(path, spec).run(records)  # type: ignore[arg-type]
    tolerance = config.export.tolerance
    result: dict[str, Any] = {"checked_rows": len(records), "tolerance": tolerance}
    if schema.task == "classification":
        native = np.asarray(model.predict_proba(x_test), dtype=np.float64)
        difference = float(np.max(np.abs(exported - native))) if len(native) else 0.0
        same = decide(exported, model.classes, threshold) == decide(native, model.classes, threshold)
        mismatched = int(np.size(same) - np.count_nonzero(same))
        result.update({"max_abs_difference": difference, "label_mismatches": mismatched})
        passed = mismatched == 0 and difference <= tolerance
    else:
        native = np.asarray(model.predict(x_test), dtype=np.float64).reshape(-1)
        scale = np.maximum(1.0, np.abs(native))
        difference = float(np.max(np.abs(exported - native) / scale)) if len(native) else 0.0
        result["max_relative_difference"] = difference
        passed = difference <= tolerance
    result["equivalent"] = bool(passed)
    if not passed:
        result["reason"] = f"differences beyond the tolerance {tolerance:g} on the test split"
    return result
