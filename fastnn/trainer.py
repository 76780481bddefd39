"""Trainer: the book's ``common/trainer.py`` loop, running each step as one fused step.

The schedule and every random draw are the book's: ``np.random.choice(N, B)`` per
iteration (from NumPy's global state, in the same order as the network's own draws when
its ``seed`` is None), a gradient step, then the batch's loss in prediction mode; an
evaluation of train and test accuracy whenever ``current_iter % iter_per_epoch == 0``
(a float, so for N / B not an integer only the first iteration evaluates, as in the
book), on the first ``evaluate_sample_num_per_epoch`` rows when given.

For fastnn networks the gradient and the update are one ``net.train_step`` (with SGD a
single compiled call); any other network with the book's ``gradient``, ``params``,
``loss`` and ``accuracy`` is driven the book's way.
"""

from __future__ import annotations

import numpy as np

from . import _validation as V
from .optim import Optimizer, optimizer_named


class Trainer:
    """Train ``network`` on (x_train, t_train), tracking the book's three lists.

    Parameters are the book's: ``epochs``, ``mini_batch_size``, ``optimizer`` (a name:
    'SGD', 'Momentum', 'Nesterov', 'AdaGrad', 'RMSprop' (or the book's 'rmsprpo'),
    'Adam'; or a fastnn optimizer instance), ``optimizer_param`` (its keyword
    arguments), ``evaluate_sample_num_per_epoch`` and ``verbose``.

    After ``train()``: ``train_loss_list`` (every iteration), ``train_acc_list`` and
    ``test_acc_list`` (every epoch), and the final ``test_acc``.
    """

    def __init__(self, network, x_train, t_train, x_test, t_test, epochs=20,
                 mini_batch_size=100, optimizer="SGD", optimizer_param=None,
                 evaluate_sample_num_per_epoch=None, verbose=True):
        for name in ("gradient", "loss", "accuracy", "params"):
            if not hasattr(network, name):
                raise TypeError(f"network: expected a network with params, gradient, loss "
                                f"and accuracy (e.g. fastnn.MultiLayerNet), got "
                                f"{type(network).__name__}")
        self.network = network
        self.verbose = bool(verbose)
        self.epochs = V.check_positive_int(epochs, "epochs")
        self.batch_size = V.check_positive_int(mini_batch_size, "mini_batch_size")
        if evaluate_sample_num_per_epoch is not None:
            evaluate_sample_num_per_epoch = V.check_positive_int(
                evaluate_sample_num_per_epoch, "evaluate_sample_num_per_epoch")
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        if optimizer_param is None:
            optimizer_param = {"lr": 0.01}
        if not isinstance(optimizer_param, dict):
            raise TypeError(f"optimizer_param: expected a dict of keyword arguments, got "
                            f"{type(optimizer_param).__name__}")
        if isinstance(optimizer, Optimizer):
            self.optimizer = optimizer
        else:
            self.optimizer = optimizer_named(optimizer, "optimizer", **optimizer_param)
        self._fast = hasattr(network, "train_step") and hasattr(network, "validate")
        self._loss_trains = bool(getattr(network, "_loss_trains", False))
        if self._fast:  # validated once; the batches are rows of these arrays
            self.x_train, self.t_train = network.validate(x_train, t_train,
                                                          names=("x_train", "t_train"))
            self.x_test, self.t_test = network.validate(x_test, t_test,
                                                        names=("x_test", "t_test"))
            V.raise_if_nonfinite(self.x_train, "x_train")
            self.optimizer.prepare(network)  # another network's optimizer: refused now
        else:
            self.x_train, self.t_train = np.asarray(x_train), np.asarray(t_train)
            self.x_test, self.t_test = np.asarray(x_test), np.asarray(t_test)
        self.train_size = self.x_train.shape[0]
        if self.t_train.shape[0] != self.train_size:
            raise ValueError(f"t_train: expected {self.train_size} rows (as x_train), got "
                             f"{self.t_train.shape[0]}")
        self.iter_per_epoch = max(self.train_size / self.batch_size, 1)
        self.max_iter = int(self.epochs * self.iter_per_epoch)
        self.current_iter = 0
        self.current_epoch = 0
        self.train_loss_list: list[float] = []
        self.train_acc_list: list[float] = []
        self.test_acc_list: list[float] = []
        self.test_acc = None

    def train_step(self) -> float:
        """One iteration: a random batch, a gradient step, the batch's loss afterwards."""
        net = self.network
        batch_mask = np.random.choice(self.train_size, self.batch_size)
        x_batch, t_batch = self.x_train[batch_mask], self.t_train[batch_mask]
        if self._fast:
            net.engine.step(x_batch, t_batch, self.optimizer, ("x_train", "t_train"))
            # the network's own loss(): the book's DeepConvNet computes it with Dropout
            # as in training, drawing masks (the next batch's draw comes after them)
            loss = net.engine.evaluate(x_batch, t_batch, ("x_train", "t_train"),
                                       train=self._loss_trains)[0]
        else:
            grads = net.gradient(x_batch, t_batch)
            self.optimizer.update(net.params, grads)
            loss = net.loss(x_batch, t_batch)
        self.train_loss_list.append(loss)
        if self.verbose:
            print("train loss:" + str(loss))
        if self.current_iter % self.iter_per_epoch == 0:
            self.current_epoch += 1
            n = self.evaluate_sample_num_per_epoch
            x_tr, t_tr = (self.x_train, self.t_train) if n is None else \
                (self.x_train[:n], self.t_train[:n])
            x_te, t_te = (self.x_test, self.t_test) if n is None else \
                (self.x_test[:n], self.t_test[:n])
            train_acc, test_acc = self._accuracy(x_tr, t_tr), self._accuracy(x_te, t_te)
            self.train_acc_list.append(train_acc)
            self.test_acc_list.append(test_acc)
            if self.verbose:
                print(f"=== epoch:{self.current_epoch}, train acc:{train_acc}, "
                      f"test acc:{test_acc} ===")
        self.current_iter += 1
        return loss

    def _accuracy(self, x, t) -> float:
        if self._fast and self.network.loss_name == "softmax":
            return self.network.engine.evaluate(x, t)[1]
        return self.network.accuracy(x, t)

    def train(self) -> None:
        """``max_iter`` iterations, then the test accuracy on the whole test set."""
        for _ in range(self.max_iter):
            self.train_step()
        self.test_acc = self._accuracy(self.x_test, self.t_test)
        if self.verbose:
            print("=============== Final Test Accuracy ===============")
            print("test acc:" + str(self.test_acc))


__all__ = ["Trainer"]
