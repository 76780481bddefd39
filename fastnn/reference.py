"""The NumPy reference: the specification every numba kernel is tested against.

Plain, book-style NumPy: unfused, obvious, allocating the way the book's code does.
``fastnn.kernels`` exposes the same names with the same signatures; when the two
disagree, the kernel is wrong.

Conventions shared by both modules
----------------------------------
* Shapes: ``x`` is (N, D), ``W`` is (D, H), ``b`` is (H,), ``out`` is (N, H);
  ``scores`` is (N, C). ``N`` batch, ``D`` inputs, ``H`` hidden, ``C`` classes/outputs.
* Every optional ``out``/``dx``/``dW``/``db``/``dscores`` argument is a preallocated
  C-contiguous array of the result's shape and dtype; when given, the result is written
  into it and it is returned, otherwise a new array is returned.
* Activation backward passes take the forward *output* ``out`` (ReLU's mask is
  ``out > 0``, the sigmoid's derivative is ``out * (1 - out)``), so nothing else has to
  be cached between forward and backward.
* ``dout`` is never modified unless ``overwrite_dout=True`` is passed; then it holds
  the gradient at the affine output (dz) afterwards.
* Losses are means over the batch: softmax cross-entropy is
  ``mean_n(logsumexp(scores[n]) - scores[n, t[n]])``; squared error is
  ``mean_n(0.5 * sum_c (y[n, c] - t[n, c])**2)``.
* Inputs are assumed valid (the public API in ``fastnn.sequential`` validates them).
"""

from __future__ import annotations

import sys

import numpy as np

from ._validation import check_label_range

__all__ = [
    "affine_forward",
    "affine_backward",
    "relu_forward",
    "relu_backward",
    "affine_relu_forward",
    "affine_relu_backward",
    "sigmoid_forward",
    "sigmoid_backward",
    "affine_sigmoid_forward",
    "affine_sigmoid_backward",
    "affine_act_forward_checked",
    "affine_act_backward_sgd",
    "softmax",
    "softmax_cross_entropy",
    "squared_error",
    "sgd_update",
    "sgd_update_affine",
    "sgd_step",
]


def _into(dest, value):
    """Return ``value``, copied into ``dest`` when a destination was given."""
    if dest is None or value is None:
        return value
    dest[...] = value
    return dest


# --- affine -----------------------------------------------------------------------


def affine_forward(x, W, b, out=None):
    """out = x @ W + b. x is (N, D), W is (D, H), b is (H,); out is (N, H)."""
    return _into(out, np.dot(x, W) + b)


def affine_backward(dout, x, W, dx=None, dW=None, db=None, need_dx=True, need_dW=True):
    """Gradients of out = x @ W + b. dout is (N, H); returns (dx, dW, db).

    ``dx`` is None when ``need_dx`` is False (the first layer never needs it), ``dW`` is
    None when ``need_dW`` is False (``sgd_update_affine`` applies it instead).
    """
    grad_x = np.dot(dout, W.T) if need_dx else None
    grad_W = np.dot(x.T, dout) if need_dW else None
    grad_b = np.sum(dout, axis=0)
    return _into(dx, grad_x), _into(dW, grad_W), _into(db, grad_b)


# --- ReLU -------------------------------------------------------------------------


def relu_forward(x, out=None):
    """out = max(x, 0)."""
    return _into(out, np.maximum(x, 0))


def relu_backward(dout, out, dx=None):
    """dx = dout where the forward output was positive, else 0 (also at exactly 0)."""
    return _into(dx, dout * (out > 0))


def affine_relu_forward(x, W, b, out=None):
    """out = max(x @ W + b, 0): affine then ReLU, unfused."""
    return _into(out, relu_forward(affine_forward(x, W, b)))


def affine_relu_backward(dout, x, W, out, dx=None, dW=None, db=None, need_dx=True,
                         overwrite_dout=False, need_dW=True):
    """Gradients of out = max(x @ W + b, 0), given dout (N, H) and the forward ``out``.

    With ``overwrite_dout`` the masked gradient dz is left in ``dout``.
    """
    dz = relu_backward(dout, out)
    if overwrite_dout:
        dout[...] = dz
    return affine_backward(dz, x, W, dx, dW, db, need_dx, need_dW)


# --- sigmoid ----------------------------------------------------------------------


def sigmoid_forward(x, out=None):
    """out = 1 / (1 + exp(-x)), without overflow for large |x|."""
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    return _into(out, np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False))


def sigmoid_backward(dout, out, dx=None):
    """dx = dout * y * (1 - y), where y = ``out`` is the forward output."""
    return _into(dx, dout * out * (1 - out))


def affine_sigmoid_forward(x, W, b, out=None):
    """out = sigmoid(x @ W + b), unfused."""
    return _into(out, sigmoid_forward(affine_forward(x, W, b)))


def affine_sigmoid_backward(dout, x, W, out, dx=None, dW=None, db=None, need_dx=True,
                            overwrite_dout=False, need_dW=True):
    """Gradients of out = sigmoid(x @ W + b), given dout (N, H) and the forward ``out``.

    With ``overwrite_dout`` the gradient dz before the affine layer is left in ``dout``.
    """
    dz = sigmoid_backward(dout, out)
    if overwrite_dout:
        dout[...] = dz
    return affine_backward(dz, x, W, dx, dW, db, need_dx, need_dW)


def affine_act_forward_checked(x, W, b, activation, out=None):
    """(act(x @ W + b), number of non-finite pre-activations).

    ``activation`` is "identity", "relu" or "sigmoid". A non-zero count means x, W or b
    held NaN/Inf (or the product overflowed); ``Sequential`` validates x with it.
    """
    z = affine_forward(x, W, b)
    n_bad = int(np.count_nonzero(~np.isfinite(z)))
    act = {"identity": lambda a: a, "relu": relu_forward, "sigmoid": sigmoid_forward}
    return _into(out, act[activation](z)), n_bad


def affine_act_backward_sgd(dout, x, W, b, out, activation, lr, dx=None, need_dx=True):
    """Backward of out = act(x @ W + b), then the SGD step of W and b; returns dx.

    ``activation`` is "identity" (``out`` unused, may be None), "relu" or "sigmoid".
    dz = dout * act'(out) is left in ``dout``; dx = dz @ W.T is computed with the old W
    (None unless ``need_dx``); then W -= lr * x.T @ dz and b -= lr * sum_n dz: the same
    numbers as the layer's gradients followed by ``sgd_update`` of each.
    """
    if activation == "identity":
        dz = dout
    else:
        dz = {"relu": relu_backward, "sigmoid": sigmoid_backward}[activation](dout, out)
        dout[...] = dz
    grad_x, _, grad_b = affine_backward(dz, x, W, dx, None, None, need_dx, need_dW=False)
    sgd_update_affine(W, x, dz, lr)
    sgd_update(b, grad_b, lr)
    return grad_x


# --- losses -----------------------------------------------------------------------


def softmax(scores):
    """Row-wise softmax of scores (N, C), shifted by the row maximum."""
    shifted = scores - np.max(scores, axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=1, keepdims=True)


def softmax_cross_entropy(scores, labels, dscores=None):
    """Mean softmax cross-entropy and its gradient with respect to ``scores``.

    scores is (N, C); labels is either (N,) integer class indices or (N, C) rows of
    one-hot (or probability) targets. Returns ``(loss, dscores)`` with
    ``loss = mean_n(logsumexp(scores[n]) - <labels[n], scores[n]>)`` and
    ``dscores = (softmax(scores) - onehot) / N``. The log-sum-exp is shifted by the row
    maximum, so logits of any magnitude give finite results.
    """
    N = scores.shape[0]
    shifted = scores - np.max(scores, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    if labels.ndim == 1:
        onehot = np.zeros_like(scores)
        onehot[np.arange(N), labels] = 1
    else:
        onehot = labels
    loss = -np.sum(onehot * log_probs, dtype=np.float64) / N
    grad = (np.exp(log_probs) - onehot) / N
    return float(loss), _into(dscores, grad.astype(scores.dtype, copy=False))


def squared_error(y, t, dy=None):
    """Mean squared error ``mean_n(0.5 * sum_c (y - t)**2)`` and its gradient ``(y - t) / N``.

    y and t are (N, C). The 0.5 and the mean over the batch are the book's convention;
    a plain sum of squares (as in PyTorch's NumPy warm-up) is ``2 * N`` times this loss.
    """
    N = y.shape[0]
    diff = y - t
    loss = 0.5 * np.sum(diff.astype(np.float64) ** 2) / N
    return float(loss), _into(dy, (diff / N).astype(y.dtype, copy=False))


# --- optimiser ---------------------------------------------------------


def sgd_update(param, grad, lr):
    """In place: param -= lr * grad."""
    param -= lr * grad


def sgd_update_affine(W, x, dz, lr):
    """In place: W -= lr * (x.T @ dz), the SGD step of an affine layer's weights.

    x is (N, D), dz (N, H) the gradient at the layer's output, W (D, H).
    """
    W -= lr * np.dot(x.T, dz)


# --- a whole training step ----------------------------------------------------------


def param_views(flat, sizes):
    """{"W1": (sizes[0], sizes[1]) view, "b1": ..., ...} of a flat parameter buffer.

    The layout of ``Sequential.params.flat``: W1 (row-major), b1, W2, b2, ... back to back.
    """
    views, offset = {}, 0
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        views[f"W{i}"] = flat[offset:offset + fan_in * fan_out].reshape(fan_in, fan_out)
        offset += fan_in * fan_out
        views[f"b{i}"] = flat[offset:offset + fan_out]
        offset += fan_out
    return views


def layer_views(flat, N, sizes):
    """[(N, sizes[1]), (N, sizes[2]), ...] views of a flat buffer of N * sum(sizes[1:])."""
    views, offset = [], 0
    for width in sizes[1:]:
        views.append(flat[offset:offset + N * width].reshape(N, width))
        offset += N * width
    return views


def sgd_step(x, t, params, sizes, acts, dacts, activation, loss, lr):
    """One SGD step of the network with layer sizes ``sizes``; returns (loss, n_bad).

    The network: (affine -> ``activation``) for each hidden layer, then affine -> ``loss``
    ("softmax": t holds class indices (N,) or rows (N, C); "mse": t is (N, C)).
    ``params`` is the flat buffer of ``param_views``, updated in place by lr times the
    gradient of the mean loss; ``acts`` / ``dacts`` are flat work buffers of
    N * sum(sizes[1:]) (``layer_views``) for each layer's output and its gradient.

    ``n_bad`` counts the non-finite pre-activations of the first layer (NaN/Inf in x,
    W1 or b1, or an overflow). When it is not zero the step stops there: nothing is
    updated and the loss is NaN. When the loss is NaN or infinite nothing is updated.

    Unlike the other functions here, this one checks one thing itself: class indices
    outside [0, C) raise a ValueError before anything changes. (Its numba twin does it
    inside the kernel for free; between steps, from Python, it cost ~30 us.)
    """
    return sgd_step_with(sys.modules[__name__], x, t, params, sizes, acts, dacts, activation,
                         loss, lr)


def sgd_step_with(ops, x, t, params, sizes, acts, dacts, activation, loss, lr):
    """``sgd_step`` composed from a backend's per-layer ops (this module's or the kernels')."""
    if loss == "softmax" and t.ndim == 1:
        check_label_range(t, "t", sizes[-1])
    p = param_views(params, sizes)
    h, dh = layer_views(acts, x.shape[0], sizes), layer_views(dacts, x.shape[0], sizes)
    last = len(sizes) - 2
    acts_of = [activation] * last + ["identity"]
    with np.errstate(invalid="ignore", over="ignore"):  # the caller sees NaN/Inf as a result
        _, n_bad = ops.affine_act_forward_checked(x, p["W1"], p["b1"], acts_of[0], out=h[0])
        if n_bad:
            return float("nan"), n_bad
        for i in range(1, last + 1):
            forward = {"identity": ops.affine_forward, "relu": ops.affine_relu_forward,
                       "sigmoid": ops.affine_sigmoid_forward}[acts_of[i]]
            forward(h[i - 1], p[f"W{i + 1}"], p[f"b{i + 1}"], out=h[i])
        loss_op = ops.softmax_cross_entropy if loss == "softmax" else ops.squared_error
        value = loss_op(h[last], t, dh[last])[0]
    if not np.isfinite(value):
        return value, 0
    for i in range(last, -1, -1):
        ops.affine_act_backward_sgd(dh[i], x if i == 0 else h[i - 1], p[f"W{i + 1}"],
                                    p[f"b{i + 1}"], None if i == last else h[i], acts_of[i],
                                    lr, dx=dh[i - 1] if i > 0 else None, need_dx=i > 0)
    return value, 0
