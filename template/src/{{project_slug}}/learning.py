"""What every model that learns in epochs or rounds shares, whatever its framework: the training
settings every network reads of ``model.params``, the learning curve with its early-stopping
bookkeeping, the figure of it, and the coding of class labels.

The PyTorch and Keras networks keep their epochs here (``Curve``), so the card's learning curve, the
``epochs_trained`` and ``best_epoch`` it reports and the saved ``history`` read alike for both; a
framework's training loop only adds how it steps and where it keeps the best weights. XGBoost codes
its classes with the same ``encode_labels``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Self

import numpy as np
from matplotlib.figure import Figure
from pydantic import BaseModel, ConfigDict, Field, ValidationError

# A validation loss must beat the best by more than this to count as an improvement.
MIN_IMPROVEMENT = 1e-6

# The settings' bounds, once: a modality's network settings restate a default, never a bound.
Dropout = Annotated[float, Field(ge=0, lt=1)]
LearningRate = Annotated[float, Field(gt=0)]
WeightDecay = Annotated[float, Field(ge=0)]
Count = Annotated[int, Field(ge=1)]


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
