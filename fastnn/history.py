"""What fit() records (``History``), and the error it raises when training diverges."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; ``history`` holds what was recorded until then."""

    def __init__(self, message: str, history: History, iteration: int):
        super().__init__(message)
        self.history = history
        self.iteration = iteration


@dataclass
class History:
    """What ``fit`` recorded at each evaluation.

    ``loss`` is the mean training-batch loss since the previous evaluation;
    ``train_acc``/``test_acc`` are accuracies over the whole sets (None for regression);
    ``test_loss`` is the mean loss on the test set (None without one);
    ``seconds_per_iter`` is training time per iteration in that period (evaluation
    excluded; on the compiled path, whose kernel evaluates too, training's share of the
    kernel's time is estimated from the rows each part processes).
    """

    iteration: list = field(default_factory=list)
    epoch: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    seconds_per_iter: list = field(default_factory=list)
    iterations: int = 0
    train_seconds: float = 0.0
    compile_seconds: float = 0.0  # first-use compilation (or cache loading), not training
    initial_loss: float = float("nan")  # the untrained network's loss on the training set
    path: str = "step"  # "step" (one step at a time) or "compiled" (whole epochs in numba)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> dict:
        """The final numbers: accuracies, losses, total and per-iteration time."""
        last = len(self.iteration) - 1
        return {
            "iterations": self.iterations,
            "train_acc": self.train_acc[last] if last >= 0 else None,
            "test_acc": self.test_acc[last] if last >= 0 else None,
            "loss": self.loss[last] if last >= 0 else None,
            "test_loss": self.test_loss[last] if last >= 0 else None,
            "train_seconds": self.train_seconds,
            "seconds_per_iter": self.train_seconds / max(self.iterations, 1),
            "compile_seconds": self.compile_seconds,
            "path": self.path,
        }
