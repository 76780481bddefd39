"""The order in which fit() visits the training samples: batches handed out in stretches."""

from __future__ import annotations

import math

import numpy as np


def iterations_per_epoch(n: int, batch_size: int, sampling: str) -> int:
    if sampling == "replacement":
        return max(n // batch_size, 1)
    return math.ceil(n / batch_size)


class BatchSchedule:
    """The order in which fit() visits samples, handed out in stretches of batches.

    "epoch" sampling: each epoch is a permutation of the n samples (in order when
    ``shuffle`` is False; with ``shuffle="global"`` each epoch's is ``idx = np.arange(n);
    np.random.shuffle(idx)`` from NumPy's global state, drawn as the epoch begins) cut
    into batches of ``batch_size``; the last batch of an epoch may be smaller.
    "replacement": every batch is drawn with replacement, as the book's
    ``np.random.choice(train_size, batch_size)`` does.

    ``take(k)`` returns the next k batches as ``(order, starts)``: batch i is
    ``order[starts[i]:starts[i + 1]]``. Everything is vectorised (permutations are drawn
    a block of epochs at a time), so the schedule of 126,000 one-sample batches costs
    milliseconds, and the step and compiled paths see exactly the same batches.
    """

    def __init__(self, n: int, batch_size: int, *, shuffle: bool, sampling: str,
                 rng: np.random.Generator):
        self.n, self.batch_size = n, batch_size
        self.shuffle, self.sampling, self.rng = shuffle, sampling, rng
        self.per_epoch = iterations_per_epoch(n, batch_size, sampling)
        self.done = 0  # batches handed out so far
        self._perms = np.empty((0, n), dtype=np.int64)  # epochs drawn, not yet finished
        self._first_epoch = 0  # the epoch of self._perms[0]

    def _epochs(self, first: int, last: int) -> np.ndarray:
        """Rows of the permutations of epochs first..last (drawing new ones as needed)."""
        drop = first - self._first_epoch
        self._perms, self._first_epoch = self._perms[drop:], first
        missing = last - first + 1 - self._perms.shape[0]
        if missing > 0:
            rows = np.broadcast_to(np.arange(self.n, dtype=np.int64), (missing, self.n))
            if self.shuffle == "global":  # the scripts' own per-epoch shuffle, in order
                new = np.array(rows)
                for row in new:
                    np.random.shuffle(row)
            else:
                new = self.rng.permuted(rows, axis=1) if self.shuffle else np.array(rows)
            self._perms = np.concatenate([self._perms, new])
        return self._perms[: last - first + 1]

    def take(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        B, n = self.batch_size, self.n
        if self.sampling == "replacement":
            order = self.rng.integers(0, n, k * B, dtype=np.int64)
            self.done += k
            return order, np.arange(0, k * B + 1, B, dtype=np.int64)
        P = self.per_epoch
        first, j0 = divmod(self.done, P)  # the epoch and batch of the first batch
        last, j_last = divmod(self.done + k - 1, P)
        # batch starts of the epochs first..last, laid end to end, from batch j0 on
        grid = (np.arange(last - first + 1, dtype=np.int64)[:, None] * n
                + np.arange(0, P * B, B, dtype=np.int64)[None, :]).reshape(-1)
        starts = np.empty(k + 1, dtype=np.int64)
        starts[:k] = grid[j0:j0 + k]
        starts[k] = (last - first) * n + min((j_last + 1) * B, n)
        order = self._epochs(first, last).reshape(-1)
        self.done += k
        return order, starts
