"""Two seed articles' training loops in plain NumPy, as the articles run them: the
specification the drop-in tests (``test_seed_dropins.py``) and ``benchmarks/seeds.py``
compare fastnn with. Written for fastnn from the articles' descriptions: the draws from
NumPy's global random state and the arithmetic come in the articles' order.
"""

import numpy as np


def warmup_004(seed: int = 0, steps: int = 500, N: int = 64, D: int = 1000, H: int = 100,
               C: int = 10, lr: float = 1e-6):
    """PyTorch's NumPy warm-up (seed 004): a 1000-100-10 ReLU network without biases,
    full batch, the plain sum of squared errors, ``steps`` gradient steps.

    Draws x (N, D), y (N, C), then w1 (D, H), w2 (H, C), all ``np.random.randn``.
    Returns (x, y, the loss before each step, w1, w2 after the last step).
    """
    np.random.seed(seed)
    x = np.random.randn(N, D)
    y = np.random.randn(N, C)
    w1 = np.random.randn(D, H)
    w2 = np.random.randn(H, C)
    losses = []
    for _ in range(steps):
        h = x.dot(w1)  # (N, H)
        h_relu = np.maximum(h, 0)
        y_pred = h_relu.dot(w2)  # (N, C)
        losses.append(np.square(y_pred - y).sum())
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.T.dot(grad_y_pred)
        grad_h = grad_y_pred.dot(w2.T)
        grad_h[h < 0] = 0  # (the article keeps the gradient where h == 0)
        grad_w1 = x.T.dot(grad_h)
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
    return x, y, np.array(losses), w1, w2


def warmup_004_fastnn(seed: int = 0, steps: int = 500, backend: str = "numba",
                      fused: bool = False, N: int = 64, D: int = 1000, H: int = 100,
                      C: int = 10, lr: float = 1e-6):
    """The warm-up with fastnn in place of the hand-written network: the same draws (x,
    y, then the network's W1, W2 from ``np.random.randn``: ``weight_init_std=1.0``), the
    user's own update ``params[key] -= lr * grads[key]`` (``fused``: ``train_step`` with
    SGD instead, the weights' step inside the backward GEMMs).

    Returns (x, y, the loss before each step, the network).
    """
    import fastnn

    np.random.seed(seed)
    x = np.random.randn(N, D)
    y = np.random.randn(N, C)
    net = fastnn.Sequential(D, [H], C, weight_init_std=1.0, bias=False, loss="sse",
                            backend=backend)
    optimizer = fastnn.SGD(lr)
    losses = []
    for _ in range(steps):
        if fused:
            losses.append(net.train_step(x, y, optimizer))
            continue
        loss, grads = net.loss_and_gradient(x, y)
        losses.append(loss)
        for key in net.params:
            net.params[key] -= lr * grads[key]
    return x, y, np.array(losses), net


def sine_data():
    """The sine article's 63 points: x in [-1, 1) (column), sin of the unscaled x."""
    x = np.arange(0, np.pi * 2, 0.1)
    t = np.sin(x)
    return ((x - np.pi) / np.pi).reshape(-1, 1), t.reshape(-1, 1)


def _sigmoid(u):
    return 1 / (1 + np.exp(-u))


def sine_002(seed: int = 0, epochs: int = 2001, interval: int = 200, wb_width: float = 0.01,
             eta: float = 0.1, n_mid: int = 3):
    """The sine article's run (seed 002): a 1-3-1 network, sigmoid hidden layer, identity
    output, one sample per step, a fresh ``np.random.shuffle`` of the indices each epoch.

    Draws, from ``np.random.seed(seed)``: the hidden layer's weights then its biases,
    the output layer's weights then its bias (each ``wb_width * randn``), then each
    epoch's shuffle. Every ``interval`` epochs the article prints the epoch's summed
    error, sum over the samples (in visiting order) of 0.5 * (y - t)**2 before the
    sample's update, divided by the number of samples.

    Returns ({epoch: error}, the final parameters (w1, b1, w2, b2)).
    """
    np.random.seed(seed)
    x_all, t_all = sine_data()
    x_all, t_all = x_all.reshape(-1), t_all.reshape(-1)
    n = x_all.shape[0]
    w1 = wb_width * np.random.randn(1, n_mid)
    b1 = wb_width * np.random.randn(n_mid)
    w2 = wb_width * np.random.randn(n_mid, 1)
    b2 = wb_width * np.random.randn(1)
    errors = {}
    for epoch in range(epochs):
        order = np.arange(n)
        np.random.shuffle(order)
        total = 0
        for idx in order:
            x = x_all[idx:idx + 1].reshape(1, 1)
            t = t_all[idx:idx + 1].reshape(1, 1)
            h = _sigmoid(x.dot(w1) + b1)  # (1, n_mid)
            y = h.dot(w2) + b2  # (1, 1)
            delta2 = y - t
            grad_w2 = h.T.dot(delta2)
            grad_b2 = np.sum(delta2, axis=0)
            grad_h = delta2.dot(w2.T)
            delta1 = grad_h * (1 - h) * h
            grad_w1 = x.T.dot(delta1)
            grad_b1 = delta1.sum(axis=0)
            w1 -= eta * grad_w1
            b1 -= eta * grad_b1
            w2 -= eta * grad_w2
            b2 -= eta * grad_b2
            if epoch % interval == 0:
                total += 1.0 / 2.0 * np.sum(np.square(y - t))
        if epoch % interval == 0:
            errors[epoch] = total / n
    return errors, (w1, b1, w2, b2)
