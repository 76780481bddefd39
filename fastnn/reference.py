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
* Losses: softmax cross-entropy is ``mean_n(logsumexp(scores[n]) - scores[n, t[n]])``;
  squared error ("mse") is ``mean_n(0.5 * sum_c (y[n, c] - t[n, c])**2)``; the sum of
  squared errors ("sse") is ``sum_n sum_c (y[n, c] - t[n, c])**2``, not a mean.
* ``b`` may be None wherever a layer's bias is taken: the layer has none (x @ W); a
  network without biases has -1 as every layer's b offset in its layout.
* Inputs are assumed valid (the public API in ``fastnn.sequential`` validates them).
* Whole networks (``forward``, ``evaluate``, ``gradient``, ``sgd_step``,
  ``train_batches``) take flat buffers described by a ``layout`` (see
  ``fastnn.kernels.network``) and return status instead of raising: ``n_bad`` counts
  the first layer's non-finite pre-activations, ``bad_label`` is the index of the first
  class index out of range or -1. This module runs them with its own plain loop over
  the per-layer functions above; it shares no code with the kernels.
"""

from __future__ import annotations

import numpy as np

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
    "tanh_forward",
    "tanh_backward",
    "affine_act_forward_checked",
    "affine_act_backward_sgd",
    "softmax",
    "softmax_cross_entropy",
    "squared_error",
    "sum_squared_error",
    "sgd_update",
    "sgd_update_affine",
    "momentum_update",
    "nesterov_update",
    "adagrad_update",
    "rmsprop_update",
    "adam_update",
    "batchnorm_forward",
    "batchnorm_backward",
    "dropout_forward",
    "dropout_backward",
    "forward",
    "evaluate",
    "gradient",
    "sgd_step",
    "train_batches",
    "train_periods",
]


def _into(dest, value):
    """Return ``value``, copied into ``dest`` when a destination was given."""
    if dest is None or value is None:
        return value
    dest[...] = value
    return dest


# --- affine -----------------------------------------------------------------------


def affine_forward(x, W, b, out=None):
    """out = x @ W + b. x is (N, D), W is (D, H), b is (H,) or None (out = x @ W)."""
    return _into(out, np.dot(x, W) if b is None else np.dot(x, W) + b)


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


# --- tanh -------------------------------------------------------------------------


def tanh_forward(x, out=None):
    """out = tanh(x)."""
    return _into(out, np.tanh(x))


def tanh_backward(dout, out, dx=None):
    """dx = dout * (1 - y^2), where y = ``out`` is the forward output."""
    return _into(dx, dout * (1 - out * out))


def _identity(z, out=None):
    return _into(out, z)


# Every activation by name: (forward, backward from the output). The one table the
# reference's layers and whole-network passes read; a new activation is its two
# functions above and a row here.
ACTIVATIONS = {
    "identity": (_identity, lambda dout, out, dx=None: _into(dx, dout)),
    "relu": (relu_forward, relu_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "tanh": (tanh_forward, tanh_backward),
}


def affine_act_forward_checked(x, W, b, activation, out=None):
    """(act(x @ W + b), number of non-finite pre-activations).

    ``activation`` is a name in ``ACTIVATIONS``. A non-zero count means x, W or b held
    NaN/Inf (or the product overflowed); ``Sequential`` validates x with it.
    """
    z = affine_forward(x, W, b)
    n_bad = int(np.count_nonzero(~np.isfinite(z)))
    return _into(out, ACTIVATIONS[activation][0](z)), n_bad


def affine_act_backward_sgd(dout, x, W, b, out, activation, lr, dx=None, need_dx=True):
    """Backward of out = act(x @ W + b), then the SGD step of W and b; returns dx.

    ``activation`` is a name in ``ACTIVATIONS`` ("identity": ``out`` unused, may be None).
    dz = dout * act'(out) is left in ``dout``; dx = dz @ W.T is computed with the old W
    (None unless ``need_dx``); then W -= lr * x.T @ dz and b -= lr * sum_n dz: the same
    numbers as the layer's gradients followed by ``sgd_update`` of each.
    """
    if activation == "identity":
        dz = dout
    else:
        dz = ACTIVATIONS[activation][1](dout, out)
        dout[...] = dz
    grad_x, _, grad_b = affine_backward(dz, x, W, dx, None, None, need_dx, need_dW=False)
    sgd_update_affine(W, x, dz, lr)
    if b is not None:
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


def sum_squared_error(y, t, dy=None):
    """The sum of squared errors ``sum_n sum_c (y - t)**2`` and its gradient ``2 * (y - t)``.

    y and t are (N, C). Not a mean: the loss of PyTorch's NumPy warm-up (seed 004),
    ``np.square(y - t).sum()``, whose gradient it writes as ``2.0 * (y - t)``.
    """
    diff = y - t
    loss = np.sum(diff.astype(np.float64) ** 2)
    return float(loss), _into(dy, (2.0 * diff).astype(y.dtype, copy=False))


# --- optimiser ---------------------------------------------------------


def sgd_update(param, grad, lr):
    """In place: param -= lr * grad."""
    param -= lr * grad


def sgd_update_affine(W, x, dz, lr):
    """In place: W -= lr * (x.T @ dz), the SGD step of an affine layer's weights.

    x is (N, D), dz (N, H) the gradient at the layer's output, W (D, H).
    """
    W -= lr * np.dot(x.T, dz)


def momentum_update(param, grad, v, lr, momentum):
    """In place: v = momentum * v - lr * grad; param += v."""
    v[...] = momentum * v - lr * grad
    param += v


def nesterov_update(param, grad, v, lr, momentum):
    """In place (the book's corrected Nesterov): param += momentum**2 * v, param -=
    (1 + momentum) * lr * grad, then v = momentum * v - lr * grad."""
    param += momentum * momentum * v
    param -= (1 + momentum) * lr * grad
    v *= momentum
    v -= lr * grad


def adagrad_update(param, grad, h, lr):
    """In place: h += grad**2; param -= lr * grad / (sqrt(h) + 1e-7)."""
    h += grad * grad
    param -= lr * grad / (np.sqrt(h) + 1e-7)


def rmsprop_update(param, grad, h, lr, decay_rate):
    """In place: h = decay_rate * h + (1 - decay_rate) * grad**2; param -= lr * grad /
    (sqrt(h) + 1e-7)."""
    h *= decay_rate
    h += (1 - decay_rate) * grad * grad
    param -= lr * grad / (np.sqrt(h) + 1e-7)


def adam_update(param, grad, m, v, lr, beta1, beta2, step):
    """In place, Adam's update number ``step`` (1 for the first): with
    lr_t = lr * sqrt(1 - beta2**step) / (1 - beta1**step), m += (1 - beta1) * (grad - m),
    v += (1 - beta2) * (grad**2 - v), param -= lr_t * m / (sqrt(v) + 1e-7)."""
    lr_t = lr * np.sqrt(1.0 - beta2 ** step) / (1.0 - beta1 ** step)
    m += (1 - beta1) * (grad - m)
    v += (1 - beta2) * (grad ** 2 - v)
    param -= lr_t * m / (np.sqrt(v) + 1e-7)


# --- BatchNorm and Dropout ----------------------------------------------------------

BN_EPS = 10e-7  # the book's epsilon (1e-6)
BN_MOMENTUM = 0.9


def batchnorm_forward(x, gamma, beta, running_mean, running_var, train):
    """Batch normalisation of x (N, H): (out, xc, std).

    Training: the batch mean and biased variance, ``xc = x - mean``,
    ``std = sqrt(var + 1e-6)``, and the running statistics move in place
    (``running = 0.9 * running + 0.1 * batch``). Prediction: xc and std from the running
    statistics. out = gamma * xc / std + beta.
    """
    if train:
        mu = x.mean(axis=0)
        xc = x - mu
        var = np.mean(xc ** 2, axis=0)
        std = np.sqrt(var + BN_EPS)
        running_mean[...] = BN_MOMENTUM * running_mean + (1 - BN_MOMENTUM) * mu
        running_var[...] = BN_MOMENTUM * running_var + (1 - BN_MOMENTUM) * var
    else:
        xc = x - running_mean
        std = np.sqrt(running_var + BN_EPS)
    return gamma * (xc / std) + beta, xc, std


def batchnorm_backward(dout, xc, std, gamma):
    """Gradients (dx, dgamma, dbeta) of a training-mode ``batchnorm_forward``."""
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = np.sum((xc / std) * dout, axis=0)
    dxn = gamma * dout
    dxc = dxn / std
    dstd = -np.sum((dxn * xc) / (std * std), axis=0)
    dvar = 0.5 * dstd / std
    dxc += (2.0 / N) * xc * dvar
    dmu = np.sum(dxc, axis=0)
    return dxc - dmu / N, dgamma, dbeta


def dropout_forward(x, mask, train, ratio):
    """The book's (non-inverted) Dropout: x * mask in training, x * (1 - ratio) else."""
    return x * mask if train else x * (1.0 - ratio)


def dropout_backward(dout, mask):
    """dx = dout * mask."""
    return dout * mask


# --- whole networks ------------------------------------------------------------------

def _layers(flat, layout):
    """[(W, b), ...]: each layer's parameters, sliced from the flat buffer as layout says
    (b None: no bias)."""
    out = []
    for w, fan_in, fan_out, b, *_ in layout.tolist():
        out.append((flat[w:w + fan_in * fan_out].reshape(fan_in, fan_out),
                    flat[b:b + fan_out] if b >= 0 else None))
    return out


def _blocks(buf, layout, N):
    """[(N, fan_out), ...]: each layer's block of an activation buffer (None if empty)."""
    if buf is None or buf.shape[0] == 0:
        return [None] * layout.shape[0]
    return [buf[N * a:N * (a + fan_out)].reshape(N, fan_out)
            for _, _, fan_out, _, a, *_ in layout.tolist()]


def _bn(flat, layout, i):
    """Layer i's (gamma, beta) views, or None without BatchNorm."""
    g, be, H = int(layout[i, 5]), int(layout[i, 6]), int(layout[i, 2])
    return None if g < 0 else (flat[g:g + H], flat[be:be + H])


def _first_bad_label(t, loss, C):
    if loss != "softmax" or t.ndim != 1:
        return -1
    bad = np.flatnonzero((t < 0) | (t >= C))
    return int(bad[0]) if bad.size else -1


class _Plain:
    """The extras of a network without BatchNorm, Dropout or weight decay."""

    norm = stds = state = masks = None
    train, keep, decay = False, 1.0, 0.0


def _forward_pass(x, params, layout, acts, activation, ex, train):
    """Each layer's output into its block of acts; the first layer's non-finite count.

    Hidden layer: Affine -> BatchNorm (when the layout has one) -> activation -> Dropout
    (when ``ex.masks`` is not empty): the book's MultiLayerNetExtend.
    """
    N = x.shape[0]
    layers, h = _layers(params, layout), _blocks(acts, layout, N)
    xcs, masks = _blocks(ex.norm, layout, N), _blocks(ex.masks, layout, N)
    last = len(layers) - 1
    n_bad = 0
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf are results here
        inp = x
        for i in range(last + 1):
            z = affine_forward(inp, *layers[i])
            if i == 0:
                n_bad = int(np.count_nonzero(~np.isfinite(z)))
            if i == last:
                h[i][...] = z
                break
            bn = _bn(params, layout, i)
            if bn is not None:
                a, H = int(layout[i, 4]), int(layout[i, 2])
                s = int(layout[i, 7])
                z, xc, std = batchnorm_forward(z, *bn, ex.state[s:s + H],
                                               ex.state[s + H:s + 2 * H], train)
                xcs[i][...] = xc
                ex.stds[a:a + H] = std
            y = ACTIVATIONS[activation][0](z)
            if masks[i] is not None:
                y = dropout_forward(y, masks[i], train, 1.0 - ex.keep)
            h[i][...] = y
            inp = h[i]
    return n_bad


_LOSSES = {"softmax": softmax_cross_entropy, "mse": squared_error, "sse": sum_squared_error}


def _weight_decay(params, layout, decay):
    """The book's weight-decay term of the loss."""
    total = 0.0
    for W, _ in _layers(params, layout):
        total += 0.5 * decay * np.sum(W.astype(np.float64) ** 2)
    return total


def _scores_loss(x, t, params, layout, acts, dacts, activation, loss, ex, train):
    """Forward and the loss: (loss, n_bad, bad_label), the loss's gradient in dacts."""
    at = _first_bad_label(t, loss, int(layout[-1, 2]))
    if at >= 0:
        return float("nan"), 0, at
    n_bad = _forward_pass(x, params, layout, acts, activation, ex, train)
    if n_bad:
        return float("nan"), n_bad, -1
    N = x.shape[0]
    scores, dscores = _blocks(acts, layout, N)[-1], _blocks(dacts, layout, N)[-1]
    with np.errstate(invalid="ignore", over="ignore"):
        if loss not in _LOSSES:
            raise ValueError(f"loss: expected one of {', '.join(map(repr, _LOSSES))}, got "
                             f"{loss!r}")
        value = _LOSSES[loss](scores, t, dscores)[0]
        if ex.decay != 0:
            value = value + _weight_decay(params, layout, ex.decay)
    return value, 0, -1


def _backward_pass(x, params, layout, acts, dacts, activation, lr, grads, ex):
    """Backpropagate dacts' last block; gradients into grads, or (grads None) SGD steps."""
    N = x.shape[0]
    layers, h, dh = _layers(params, layout), _blocks(acts, layout, N), _blocks(dacts, layout, N)
    xcs, masks = _blocks(ex.norm, layout, N), _blocks(ex.masks, layout, N)
    sinks = None if grads is None else _layers(grads, layout)
    last = len(layers) - 1
    for i in range(last, -1, -1):
        W, b = layers[i]
        inp = x if i == 0 else h[i - 1]
        bn = _bn(params, layout, i)
        if i == last:
            dz = dh[i]
        else:
            dy = dh[i] if masks[i] is None else dropout_backward(dh[i], masks[i])
            dz = ACTIVATIONS[activation][1](dy, h[i])
            if bn is not None:
                a, H = int(layout[i, 4]), int(layout[i, 2])
                dz, dgamma, dbeta = batchnorm_backward(dz, xcs[i], ex.stds[a:a + H], bn[0])
        dh[i][...] = dz
        dx, dW, db = affine_backward(dz, inp, W, need_dx=i > 0, need_dW=True)
        if ex.decay != 0:
            dW = dW + ex.decay * W
        if i > 0:
            dh[i - 1][...] = dx  # computed with the old W
        if grads is None:
            sgd_update(W, dW, lr)
            if b is not None:
                sgd_update(b, db, lr)
            if bn is not None:
                sgd_update(bn[0], dgamma, lr)
                sgd_update(bn[1], dbeta, lr)
        else:
            sinks[i][0][...] = dW
            if b is not None:
                sinks[i][1][...] = db
            if bn is not None:
                gamma, beta = _bn(grads, layout, i)
                gamma[...], beta[...] = dgamma, dbeta


def forward(x, params, layout, acts, activation, extras=None):
    """Every layer's output for x into acts; returns the first layer's non-finite count.

    The network: (affine -> ``activation``) per hidden layer, then affine; the scores are
    the last (N, C) block of acts (NaN where the count is not zero, usually).
    ``extras`` (``fastnn.params.Extras``, or None for a plain network) adds BatchNorm,
    Dropout and weight decay, and says whether hidden layers run in training mode.
    """
    ex = extras or _Plain
    return _forward_pass(x, params, layout, acts, activation, ex, ex.train)


def evaluate(x, t, params, layout, acts, dacts, activation, loss, extras=None, rows=None):
    """(mean loss, number of correct rows, n_bad, bad_label) of the network on x, t.

    A row is correct when its highest score is its class (the label, or the argmax of
    its target row); always 0 for ``loss="mse"`` and ``"sse"``. The loss includes the
    weight-decay term. Passes of ``rows`` rows (default: one pass; acts and dacts hold
    that many), their losses weighted by their rows and summed in order: the evaluation
    ``train_periods`` runs after each period. A bad label or non-finite pass stops it.
    """
    ex = extras or _Plain
    N = x.shape[0]
    rows = N if rows is None else max(min(int(rows), N), 1)
    total, correct = 0.0, 0
    for start in range(0, N, rows):
        xs, ts = x[start:start + rows], t[start:start + rows]
        value, n_bad, at = _scores_loss(xs, ts, params, layout, acts, dacts, activation, loss,
                                        ex, ex.train)
        if n_bad or at >= 0:
            return np.nan, 0, n_bad, (start + at if at >= 0 else -1)
        if loss == "softmax":
            scores = _blocks(acts, layout, xs.shape[0])[-1]
            labels = ts if ts.ndim == 1 else np.argmax(ts, axis=1)
            correct += int(np.count_nonzero(np.argmax(scores, axis=1) == labels))
        total += float(value) * xs.shape[0]
    if rows >= N > 0:  # one pass: its own mean, exactly
        return value, correct, 0, -1
    return (total / N if N else np.nan), correct, 0, -1


def gradient(x, t, params, layout, acts, dacts, grads, activation, loss, extras=None):
    """(mean loss, n_bad, bad_label); every parameter's gradient into the flat ``grads``.

    ``loss`` is "softmax" (t: class indices (N,) or rows (N, C)), "mse" or "sse" (t: (N, C)).
    dz, the gradient at each layer's affine output, is left in dacts. Nothing is written
    to grads when the pass stopped (n_bad > 0 or bad_label >= 0). Training mode.
    """
    ex = extras or _Plain
    value, n_bad, at = _scores_loss(x, t, params, layout, acts, dacts, activation, loss, ex,
                                    True)
    if not n_bad and at < 0:
        _backward_pass(x, params, layout, acts, dacts, activation, None, grads, ex)
    return value, n_bad, at


def sgd_step(x, t, params, layout, acts, dacts, activation, loss, lr, extras=None):
    """One SGD step of the network on the batch x, t: (loss, n_bad, bad_label).

    ``params`` is updated in place by lr times the gradient of the mean loss (the
    numbers of ``gradient`` followed by ``params -= lr * grads``). Nothing changes when
    a label is out of range (bad_label >= 0), the first layer's pre-activations are not
    finite (n_bad > 0; the loss is NaN) or the loss is NaN or infinite.
    """
    ex = extras or _Plain
    value, n_bad, at = _scores_loss(x, t, params, layout, acts, dacts, activation, loss, ex,
                                    True)
    if n_bad or at >= 0 or not np.isfinite(value):
        return value, n_bad, at
    _backward_pass(x, params, layout, acts, dacts, activation, lr, None, ex)
    return value, 0, -1


def train_batches(x, t, order, starts, params, layout, activation, loss, lr, losses,
                  extras=None):
    """``sgd_step`` on the batches ``order[starts[i]:starts[i + 1]]`` in turn.

    Each batch's loss goes to ``losses[i]``. Returns -1, or the index of the first batch
    that was not applied (the step changed nothing); later ones are not run and their
    losses are NaN. Labels must be in range. ``extras`` may have BatchNorm, not Dropout.
    """
    width = int(layout[-1, 4] + layout[-1, 2])
    for i in range(starts.shape[0] - 1):
        idx = order[starts[i]:starts[i + 1]]
        acts = np.empty(idx.shape[0] * width, params.dtype)
        value, n_bad, at = sgd_step(x[idx], t[idx], params, layout, acts, np.empty_like(acts),
                                    activation, loss, lr, extras)
        losses[i] = value
        if n_bad or at >= 0 or not np.isfinite(value):
            losses[i + 1:] = np.nan
            return i
    return -1


class _Predicting:
    """``extras`` as they are, in prediction mode (running statistics)."""

    def __init__(self, ex):
        self.norm, self.stds, self.state, self.masks = ex.norm, ex.stds, ex.state, ex.masks
        self.keep, self.decay, self.train = ex.keep, ex.decay, False


def train_periods(x, t, x2, t2, order, starts, ends, params, layout, activation, loss, lr,
                  losses, records, rows, extras=None):
    """``train_batches`` period by period, evaluating after batch ``ends[k] - 1``.

    At each period's end: parameters (or running statistics) that are not finite stop
    it; else ``records[k]`` = (mean loss on x, correct rows of x, mean loss on x2,
    correct rows of x2; NaN and 0 without x2): ``evaluate`` in passes of ``rows`` rows,
    in prediction mode. Returns (stop, periods evaluated, stopped for non-finite
    parameters).
    """
    state = np.empty(0) if extras is None or extras.state is None else extras.state
    predicting = _Plain if extras is None else _Predicting(extras)
    width = int(layout[-1, 4] + layout[-1, 2])
    n_eval = max(x.shape[0], 0 if x2 is None else x2.shape[0])
    acts = np.empty(min(rows, n_eval) * width, params.dtype)
    done = 0
    for k, end in enumerate(ends):
        begin = 0 if k == 0 else int(ends[k - 1])
        stop = train_batches(x, t, order, starts[begin:end + 1], params, layout, activation,
                             loss, lr, losses[begin:end], extras)
        if stop >= 0:
            losses[end:] = np.nan
            return begin + stop, done, False
        if not (np.all(np.isfinite(params)) and np.all(np.isfinite(state))):
            losses[end:] = np.nan
            return int(end), done, True
        for j, (xs, ts) in enumerate(((x, t), (x2, t2))):
            records[k, 2 * j:2 * j + 2] = (np.nan, 0) if xs is None else evaluate(
                xs, ts, params, layout, acts, np.empty_like(acts), activation, loss,
                predicting, rows)[:2]
        done += 1
    last = int(ends[-1]) if len(ends) else 0
    stop = train_batches(x, t, order, starts[last:], params, layout, activation, loss, lr,
                         losses[last:], extras)
    return (last + stop if stop >= 0 else -1), done, False
