"""The convolution and pooling kernels on one and two numba threads, side by side.

    python benchmarks/conv_threads.py            # quiet machine: what two threads gain
    python benchmarks/conv_threads.py --busy 1   # beside one busy-loop process

Batch 100 at SimpleConvNet's and a DeepConvNet layer's shapes, both dtypes: the median
ms per call of each op with the thread count forced to 1, to 2, and left to the
automatic policy (free cores), timed in alternating short turns (``timing.interleaved``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np

import fastnn
from fastnn import kernels

if __package__:
    from .bench_conv import LAYERS, conv_problem
    from .timing import interleaved
else:  # run as a script: the checkout's root on sys.path, for the benchmarks package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.bench_conv import LAYERS, conv_problem
    from benchmarks.timing import interleaved


def cases(layer: str, dtype: str) -> dict:
    x, W, b, stride, pad = conv_problem(layer, dtype)
    out, cache = kernels.conv_forward(x, W, b, stride, pad)
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    pout, pcache = kernels.pool_forward(out, 2, 2, 2, 0)
    ops = {"conv_forward": lambda: kernels.conv_forward(x, W, b, stride, pad),
           "conv_backward": lambda: kernels.conv_backward(dout, cache, W, stride, pad),
           "pool_forward": lambda: kernels.pool_forward(out, 2, 2, 2, 0),
           "pool_backward": lambda: kernels.pool_backward(pout, pcache, 2, 2, 2, 0)}

    def on(threads, f):
        def call():
            fastnn.set_num_threads(threads)
            try:
                f()
            finally:
                fastnn.set_num_threads(None)
        return call

    return {(op, threads): on(threads, f) for op, f in ops.items()
            for threads in (1, 2, None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=0, help="busy-loop processes beside")
    args = parser.parse_args()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(args.busy)]
    try:
        print(f"{'layer':7} {'dtype':8} {'op':14} {'1 thread':>9} {'2 threads':>10} "
              f"{'auto':>7}  (ms, median; {args.busy} busy processes)")
        for layer in LAYERS:
            for dtype in ("float32", "float64"):
                times = interleaved(cases(layer, dtype))
                for op in ("conv_forward", "conv_backward", "pool_forward", "pool_backward"):
                    one, two, auto = (1e3 * times[(op, t)] for t in (1, 2, None))
                    print(f"{layer:7} {dtype:8} {op:14} {one:9.2f} {two:10.2f} {auto:7.2f}")
    finally:
        for p in busy:
            p.kill()


if __name__ == "__main__":
    main()
