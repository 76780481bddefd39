"""``--only convnet``: the book's convolutional networks (chapters 7 and 8), side by side.

Rows: a SimpleConvNet and a DeepConvNet training iteration (batch 100, gradient + Adam)
in float64 and float32, the evaluation (``accuracy``) of 10,000 and 1,000 images, and each
convolution and pooling op of the two networks (forward + backward). Columns: the book's
code (``book_conv.py``: what a learner's copy runs; fed float32 images it still computes
in float64, as the book's ``im2col`` allocates float64 and its weights are float64),
fastnn's numpy backend, fastnn's numba backend, and PyTorch eager CPU when installed
(``pip install torch``; never a fastnn dependency), with the ratios to fastnn numba.

The book's code and fastnn's backends are timed in one process, interleaved round by
round (``timing.interleaved``, medians); PyTorch in its own block after them, as
``peers.py`` times it (its thread pool and OpenBLAS's slow each other when interleaved).
``--quick`` runs batch 10, 100 images and one round: a smoke run for CI.
"""

from __future__ import annotations

import numpy as np

try:  # imported by asv's discovery as benchmarks.reports.*
    from .. import book, book_conv
    from ..timing import interleaved
except ImportError:  # run from compare.py as a script: benchmarks/ is on sys.path
    import book
    import book_conv
    from timing import interleaved

COLUMNS = ("book", "numpy", "numba", "torch")
SIMPLE = dict(input_dim=(1, 28, 28),
              conv_param={"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1},
              hidden_size=100, output_size=10, weight_init_std=0.01)
DEEP = dict(input_dim=(1, 28, 28), hidden_size=50, output_size=10)
# (label, x shape without the batch, kind, filter/pool (n, h, w), stride, pad): the ops
# of the two networks' first and widest layers
OPS = [
    ("SimpleConvNet conv: 1x28x28, 30 5x5", (1, 28, 28), "conv", (30, 5, 5), 1, 0),
    ("SimpleConvNet pool: 30x24x24, 2x2/2", (30, 24, 24), "pool", (0, 2, 2), 2, 0),
    ("DeepConvNet conv1: 1x28x28, 16 3x3 pad 1", (1, 28, 28), "conv", (16, 3, 3), 1, 1),
    ("DeepConvNet conv2: 16x28x28, 16 3x3 pad 1", (16, 28, 28), "conv", (16, 3, 3), 1, 1),
    ("DeepConvNet conv4: 32x14x14, 32 3x3 pad 2", (32, 14, 14), "conv", (32, 3, 3), 1, 2),
    ("DeepConvNet conv6: 64x8x8, 64 3x3 pad 1", (64, 8, 8), "conv", (64, 3, 3), 1, 1),
    ("DeepConvNet pool1: 16x28x28, 2x2/2", (16, 28, 28), "pool", (0, 2, 2), 2, 0),
]


def images(N: int, dtype, seed: int = 0, shape=(1, 28, 28)):
    """N images in [0, 1) and labels 0..9."""
    rng = np.random.default_rng(seed)
    return rng.random((N, *shape)).astype(dtype), rng.integers(0, 10, N)


# --- the networks ------------------------------------------------------------------------


def book_net(kind: str):
    np.random.seed(0)
    return book_conv.SimpleConvNet(**SIMPLE) if kind == "simple" else \
        book_conv.DeepConvNet(**DEEP)


def fastnn_net(kind: str, backend: str, dtype):
    import fastnn

    cls = fastnn.SimpleConvNet if kind == "simple" else fastnn.DeepConvNet
    return cls(**(SIMPLE if kind == "simple" else DEEP), backend=backend, dtype=dtype, seed=0)


def torch_net(kind: str, dtype):
    import torch
    from torch import nn

    torch.manual_seed(0)
    if kind == "simple":
        layers = [nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
                  nn.Linear(30 * 12 * 12, 100), nn.ReLU(), nn.Linear(100, 10)]
    else:
        layers, channels = [], 1
        for i, (filters, pad) in enumerate(book_conv.DEEP_DEFAULTS):
            layers += [nn.Conv2d(channels, filters, 3, padding=pad), nn.ReLU()]
            channels = filters
            if i % 2 == 1:
                layers.append(nn.MaxPool2d(2, 2))
        layers += [nn.Flatten(), nn.Linear(64 * 4 * 4, 50), nn.ReLU(), nn.Dropout(0.5),
                   nn.Linear(50, 10), nn.Dropout(0.5)]
    model = nn.Sequential(*layers)
    return model.double() if np.dtype(dtype) == np.float64 else model.float()


def iteration_cases(kind: str, N: int, dtype) -> dict:
    """One training iteration of each contender: the gradient of one batch of N, then an
    Adam update (lr 0.001), as the book's Trainer runs it."""
    import fastnn

    x, t = images(N, dtype)
    net, opt = book_net(kind), book.Adam(0.001)
    cases = {"book": lambda: opt.update(net.params, net.gradient(x, t))}
    for backend in ("numpy", "numba"):
        fnet, fopt = fastnn_net(kind, backend, dtype), fastnn.Adam(0.001)
        cases[backend] = _fastnn_iteration(fnet, fopt, x, t)
    return cases


def _fastnn_iteration(net, opt, x, t):
    if hasattr(net, "train_step"):  # what fit() and Trainer run: gradient and update fused
        return lambda: net.train_step(x, t, opt)
    return lambda: opt.update(net.params, net.gradient(x, t))


def torch_iteration(kind: str, N: int, dtype):
    import torch

    model = torch_net(kind, dtype)
    opt = torch.optim.Adam(model.parameters(), lr=0.001, eps=1e-7)  # (the book's eps)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, t = images(N, dtype)
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(xt), tt).backward()
        opt.step()

    return step


def evaluation_cases(kind: str, n: int) -> dict:
    """``accuracy`` of n images (float64, batches of 100 as the book's)."""
    x, t = images(n, np.float64, seed=1)
    net = book_net(kind)
    cases = {"book": lambda: net.accuracy(x, t)}
    for backend in ("numpy", "numba"):
        fnet = fastnn_net(kind, backend, np.float64)
        cases[backend] = lambda fnet=fnet: fnet.accuracy(x, t)
    return cases


def torch_evaluation(kind: str, n: int):
    import torch

    model = torch_net(kind, np.float64).eval()
    x, t = images(n, np.float64, seed=1)
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)

    def accuracy():
        with torch.no_grad():
            right = sum(int((model(xt[i:i + 100]).argmax(1) == tt[i:i + 100]).sum())
                        for i in range(0, n, 100))
        return right / n

    return accuracy


# --- the ops -------------------------------------------------------------------------------


def op_cases(op, N: int, dtype) -> dict:
    """Forward + backward of one op: the book's layer, fastnn.reference, fastnn.kernels."""
    from fastnn import kernels, reference

    _, shape, kind, (FN, FH, FW), stride, pad = op
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, *shape)).astype(dtype)
    if kind == "conv":
        W = (0.1 * rng.standard_normal((FN, shape[0], FH, FW))).astype(dtype)
        b = (0.1 * rng.standard_normal(FN)).astype(dtype)
        layer = book_conv.Convolution(W, b, stride, pad)
        out, _ = reference.conv_forward(x, W, b, stride, pad)
    else:
        layer = book_conv.Pooling(FH, FW, stride, pad)
        out, _ = reference.pool_forward(x, FH, FW, stride, pad)
    dout = rng.standard_normal(out.shape).astype(dtype)
    cases = {"book": lambda: layer.backward(layer.forward(x))}
    for name, ops in (("numpy", reference), ("numba", kernels)):
        if kind == "conv":
            def run(ops=ops):
                _, cache = ops.conv_forward(x, W, b, stride, pad)
                ops.conv_backward(dout, cache, W, stride, pad)
        else:
            def run(ops=ops):
                _, cache = ops.pool_forward(x, FH, FW, stride, pad)
                ops.pool_backward(dout, cache, FH, FW, stride, pad)
        cases[name] = run
    return cases


def torch_op(op, N: int, dtype):
    import torch
    import torch.nn.functional as F

    _, shape, kind, (FN, FH, FW), stride, pad = op
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((N, *shape)).astype(dtype)).requires_grad_()
    if kind == "conv":
        W = torch.from_numpy((0.1 * rng.standard_normal((FN, shape[0], FH, FW)))
                             .astype(dtype)).requires_grad_()
        b = torch.from_numpy((0.1 * rng.standard_normal(FN)).astype(dtype)).requires_grad_()

        def forward():
            return F.conv2d(x, W, b, stride=stride, padding=pad)
    else:
        def forward():
            return F.max_pool2d(x, (FH, FW), stride=stride, padding=pad)

    dout = torch.from_numpy(rng.standard_normal(tuple(forward().shape)).astype(dtype))

    def run():
        forward().backward(dout)

    return run


# --- the report ----------------------------------------------------------------------------


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _row(label: str, r: dict, scale: float = 1e3) -> str:
    cells = [f"{r[c] * scale:.2f}" if c in r else "not installed" for c in COLUMNS]
    numba = r["numba"]
    ratios = [f"{r[c] / numba:.2f}" if c in r else "-" for c in ("book", "numpy", "torch")]
    return f"| {label} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |"


HEADER = ("| {what} | book code | fastnn numpy | fastnn numba | PyTorch eager | book / numba | "
          "numpy / numba | PyTorch / numba |\n|---|---|---|---|---|---|---|---|")


def _time(cases: dict, torch_case, rounds: int) -> dict:
    """Medians of the interleaved cases, then PyTorch's in its own block."""
    r = interleaved(cases, rounds=rounds, budget=0.3, slices=1)
    if torch_case is not None:
        r["torch"] = interleaved({"torch": torch_case()}, rounds=rounds, budget=0.3,
                                 slices=1)["torch"]
    return r


def report_convnet(quick: bool = False) -> dict:
    """Print the tables; returns {row label: {column: median seconds}}."""
    import fastnn

    has_torch = torch_available()
    N = 10 if quick else 100
    rounds = 1 if quick else 5
    sizes = (100,) if quick else (10000, 1000)  # (the book's: 5-40 s per 1,000 images)
    threads = ""
    if has_torch:
        import torch

        threads = f"; PyTorch {torch.__version__}, {torch.get_num_threads()} threads"
    else:
        threads = "; PyTorch: not installed (pip install torch adds its column)"
    print(f"## The book's convolutional networks: median ms (fastnn {fastnn.__version__}"
          f"{threads})\n")
    results = {}

    print(f"### One training iteration: gradient of a batch of {N} + Adam (lr 0.001)\n")
    print(HEADER.format(what="network, dtype"))
    for kind, title in (("simple", "SimpleConvNet"), ("deep", "DeepConvNet")):
        for dtype in (np.float64, np.float32):
            label = f"{title} {np.dtype(dtype).name}"
            torch_case = (lambda kind=kind, dtype=dtype: torch_iteration(kind, N, dtype)) \
                if has_torch else None
            results[label] = r = _time(iteration_cases(kind, N, dtype), torch_case, rounds)
            print(_row(label, r), flush=True)

    print("\n### Evaluation: `accuracy(x, t)` (batches of 100), float64\n")
    print(HEADER.format(what="network, images"))
    for kind, title, ns in (("simple", "SimpleConvNet", sizes),
                            ("deep", "DeepConvNet", sizes[-1:])):
        for n in ns:
            label = f"{title}, {n:,} images"
            torch_case = (lambda kind=kind, n=n: torch_evaluation(kind, n)) if has_torch \
                else None
            results[label] = r = _time(evaluation_cases(kind, n), torch_case,
                                       max(1, rounds - 2))
            print(_row(label, r), flush=True)

    print(f"\n### Each op, forward + backward, batch {N}\n")
    print(HEADER.format(what="op, dtype"))
    for op in OPS:
        for dtype in (np.float64, np.float32):
            label = f"{op[0]}, {np.dtype(dtype).name}"
            torch_case = (lambda op=op, dtype=dtype: torch_op(op, N, dtype)) if has_torch \
                else None
            results[label] = r = _time(op_cases(op, N, dtype), torch_case, rounds)
            print(_row(label, r), flush=True)
    print()
    return results
