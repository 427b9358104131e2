"""What every model that learns in epochs or rounds shares, whatever its framework: the training
settings every network reads of ``model.params``, the learning curve with its early-stopping
bookkeeping, the figure of it, and what a network's outputs stand for (``Targets``: class codes, or
the standardised target).

The PyTorch and Keras networks keep their epochs here (``Curve``), so the card's learning curve, the
``epochs_trained`` and ``best_epoch`` it reports and the saved ``history`` read alike for both; a
framework's training loop only adds how it steps and where it keeps the best weights. XGBoost codes
its classes with the same ``encode_labels``.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Generic, Protocol, Self, TypeVar

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .config import Config
from .protocols import ModelDefaults

# A validation loss must beat the best by more than this to count as an improvement.
MIN_IMPROVEMENT = 1e-6

# The settings' bounds, once: a modality's network settings restate a default, never a bound.
Dropout = Annotated[float, Field(ge=0, lt=1)]
LearningRate = Annotated[float, Field(gt=0)]
WeightDecay = Annotated[float, Field(ge=0)]
Count = Annotated[int, Field(ge=1)]


class LoopSettings(Protocol):
    """What a framework's training loop reads of a model's settings: ``TrainingSettings`` has it, and
    so does a forecaster's scikit-learn-style regressor (its own constructor arguments)."""

    @property
    def learning_rate(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def max_epochs(self) -> int: ...
    @property
    def patience(self) -> int: ...


class TrainingSettings(BaseModel):
    """What every network's training reads of ``model.params``; each modality's ``NetworkParams``
    (in its ``features`` module) adds the shape of its network and its own defaults. An unknown key
    is an error, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")

    dropout: Dropout = 0.1
    learning_rate: LearningRate = 0.003
    weight_decay: WeightDecay = 0.0001
    batch_size: Count = 32
    max_epochs: Count = 150
    patience: Count = 10  # epochs without a better validation loss before training stops

    @classmethod
    def parse(cls, params: dict[str, Any]) -> Self:
        """``model.params`` checked, or one line naming what is wrong with it."""
        try:
            return cls.model_validate(params)
        except ValidationError as error:
            raise ValueError(f"model.params in the config: {error}") from None


@dataclass
class Curve:
    """Training and validation loss per epoch, the best epoch so far, and how long ago it was."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_loss: float = math.inf
    stale: int = 0
    # The epoch a restarted fit resumed after (its checkpoint), when it was one.
    resumed_after: int | None = None

    def record(self, epoch: int, train_loss: float, val_loss: float) -> bool:
        """Add an epoch's losses; True when it is the new best (the weights to keep)."""
        self.train_loss.append(train_loss)
        self.val_loss.append(val_loss)
        if val_loss < self.best_loss - MIN_IMPROVEMENT:
            self.best_loss, self.stale, self.best_epoch = val_loss, 0, epoch
            return True
        self.stale += 1
        return False

    def exhausted(self, patience: int) -> bool:
        """Early stopping: ``patience`` epochs in a row without an improvement."""
        return self.stale >= patience

    @property
    def epochs(self) -> int:
        return len(self.val_loss)

    @property
    def history(self) -> dict[str, list[float]]:
        """The losses as saved beside the model and read back by ``from_history``."""
        return {"train_loss": list(self.train_loss), "val_loss": list(self.val_loss)}

    @classmethod
    def from_history(cls, history: dict[str, list[float]], best_epoch: int) -> Curve:
        val_loss = [float(value) for value in history["val_loss"]]
        best = val_loss[best_epoch - 1] if 0 < best_epoch <= len(val_loss) else math.inf
        return cls([float(value) for value in history["train_loss"]], val_loss, best_epoch, best)

    def state(self) -> dict[str, Any]:
        """Everything early stopping depends on, as JSON: a checkpoint's share of it."""
        return {
            "best_loss": self.best_loss,
            "stale": self.stale,
            "best_epoch": self.best_epoch,
            "history": self.history,
        }

    def resume(self, state: dict[str, Any], epoch: int) -> None:
        """Continue from a checkpoint's ``state()`` saved after ``epoch``."""
        self.train_loss = [float(value) for value in state["history"]["train_loss"]]
        self.val_loss = [float(value) for value in state["history"]["val_loss"]]
        self.best_loss, self.stale = float(state["best_loss"]), int(state["stale"])
        self.best_epoch, self.resumed_after = int(state["best_epoch"]), epoch

    def figure(self, framework: str) -> Figure:
        """Training and validation loss per epoch, with the epoch whose weights were kept."""
        figure = Figure(figsize=(6, 4))
        axis = figure.subplots()
        epochs = range(1, self.epochs + 1)
        axis.plot(epochs, self.train_loss, label="train")
        axis.plot(epochs, self.val_loss, label="validation")
        if self.best_epoch:
            axis.axvline(
                self.best_epoch, color="grey", linestyle="--", label=f"kept (epoch {self.best_epoch})"
            )
        axis.set_xlabel("epoch")
        axis.set_ylabel("loss")
        axis.set_title(f"Learning curve ({framework})")
        axis.legend()
        return figure


def plain(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds: labels compare and serialise as themselves."""
    return value.item() if isinstance(value, np.generic) else value


def sorted_classes(labels: Iterable[Any]) -> list[Any]:
    """The distinct labels in a fixed order: the positions of the network's outputs."""
    return sorted({plain(label) for label in labels})


def encode_labels(classes: list[Any], labels: Iterable[Any]) -> np.ndarray:
    """Each label's position among ``classes``; a label never seen in training is an error that
    names it, not a silent wrong code."""
    labels = list(labels)
    index = {label: code for code, label in enumerate(classes)}
    unknown = sorted({str(label) for label in labels if plain(label) not in index})
    if unknown:
        raise ValueError(f"labels {unknown} are not among the training classes {classes}")
    return np.array([index[plain(label)] for label in labels], dtype=np.int64)


@dataclass
class Targets:
    """How a network's outputs stand for the task's targets, the same for PyTorch and Keras: one
    output per training class (probabilities, in ``classes`` order), or one output for the target
    standardised on the training rows (``mean`` and ``scale``), scaled back to its units."""

    task: str
    classes: list[Any] = field(default_factory=list)
    mean: float = 0.0
    scale: float = 1.0

    @property
    def is_classifier(self) -> bool:
        return self.task == "classification"

    @property
    def outputs(self) -> int:
        return len(self.classes) if self.is_classifier else 1

    def fit(self, target: pd.Series) -> Targets:
        """The classes, or the mean and spread, of the training targets only."""
        if self.is_classifier:
            self.classes = sorted_classes(pd.unique(target))
        else:
            self.mean, self.scale = float(target.mean()), float(target.std()) or 1.0
        return self

    def encode(self, target: pd.Series) -> np.ndarray:
        """What the network learns to output: class codes, or the standardised target."""
        if self.is_classifier:
            return encode_labels(self.classes, target)
        return ((target.to_numpy(dtype=float) - self.mean) / self.scale).astype(np.float32)

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        """Predictions from the network's outputs: the likeliest class, or the value in its units."""
        if self.is_classifier:
            return np.asarray(self.classes)[np.argmax(outputs, axis=1)]
        return np.asarray(outputs[:, 0] * self.scale + self.mean)

    def to_json(self) -> dict[str, Any]:
        return {"classes": self.classes, "target_mean": self.mean, "target_scale": self.scale}

    @classmethod
    def from_json(cls, task: str, saved: dict[str, Any]) -> Targets:
        return cls(task, list(saved["classes"]), float(saved["target_mean"]), float(saved["target_scale"]))


Params = TypeVar("Params", bound=TrainingSettings)
SPEC_FILE = "network.json"


class EpochModel(ModelDefaults, ABC, Generic[Params]):
    """The framework-neutral half of every network model: settings, targets, the learning curve, the
    description the model card reads and the JSON saved beside the network. A framework's half
    (``network.NetworkModel``) trains, predicts and stores the network; a modality's model module
    adds the network and its input encoding (``_fit_inputs``, ``architecture``, ``_state``)."""

    framework: str  # as the model card and metadata name it
    library: str  # as the learning curve's title names it
    # The modality's network settings (``features.NetworkParams``): what ``model.params`` may hold.
    params_type: type[Params]

    def __init__(self, params: Params, task: str, seed: int = 42) -> None:
        self.params = params
        self.task = task
        self.seed = seed
        self.targets = Targets(task)
        self.curve = Curve()
        self.device = "cpu"

    @classmethod
    def create(cls, config: Config) -> Self:
        """An untrained model with the config's ``model.params``, task and seed."""
        return cls(cls.params_type.parse(config.model.params), config.task, config.seed)

    @abstractmethod
    def _fit_inputs(self, features: pd.DataFrame) -> None:
        """Learn the input encoding (a vocabulary, a preprocessing, a shape) on the training rows."""

    @abstractmethod
    def architecture(self) -> str:
        """The network in one line, for the model card."""

    @abstractmethod
    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Class probabilities (for regression: the network's standardised output)."""

    @abstractmethod
    def _runtime(self) -> dict[str, Any]:
        """The trainable parameters, library versions and processes, for the description."""

    @abstractmethod
    def _save_network(self, directory: Path) -> None: ...

    @abstractmethod
    def _load_network(self, directory: Path) -> None: ...

    def _state(self) -> dict[str, Any]:
        """What the input encoding learnt, as JSON beside the network."""
        return {}

    def _restore(self, state: dict[str, Any]) -> None:
        """Read back what ``_state`` saved."""

    @property
    def is_classifier(self) -> bool:
        return self.targets.is_classifier

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return self.targets.decode(self.predict_proba(features))

    @property
    def classes(self) -> list[Any]:
        return list(self.targets.classes)

    def describe(self) -> dict[str, Any]:
        resumed = self.curve.resumed_after
        return {
            "framework": self.framework,
            "architecture": self.architecture(),
            "params": {
                **self.params.model_dump(),
                "epochs_trained": self.curve.epochs,
                "best_epoch": self.curve.best_epoch,
                **({"resumed_after_epoch": resumed} if resumed else {}),
                **self._runtime(),
            },
            "device": self.device,
        }

    def figures(self) -> list[tuple[str, Figure]]:
        return [("learning_curve.png", self.curve.figure(self.library))]

    def save(self, directory: Path) -> None:
        """The network in its framework's safe format, the rest as JSON (no pickle anywhere)."""
        self._save_network(directory)
        spec = {
            "task": self.task,
            "seed": self.seed,
            **self.targets.to_json(),
            **self._state(),
            "params": self.params.model_dump(),
            "history": self.curve.history,
            "best_epoch": self.curve.best_epoch,
        }
        (directory / SPEC_FILE).write_text(json.dumps(spec, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> Self:
        spec: dict[str, Any] = json.loads((directory / SPEC_FILE).read_text(encoding="utf-8"))
        model = cls.from_spec(spec, directory)
        model.targets = Targets.from_json(model.task, spec)
        model.curve = Curve.from_history(spec["history"], spec["best_epoch"])
        model._restore(spec)
        model._load_network(directory)
        return model

    @classmethod
    def from_spec(cls, spec: dict[str, Any], directory: Path) -> Self:
        """An untrained model with the saved settings; a modality with files of its own reads them."""
        return cls(cls.params_type.parse(spec["params"]), spec["task"], spec["seed"])
