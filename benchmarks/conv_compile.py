"""Cold compile of the convolution and pooling kernels, and their load from the cache.

    python benchmarks/conv_compile.py

A fresh process with an empty cache folder (``FASTNN_CACHE_DIR``) calls each op once per
dtype, on the shapes of SimpleConvNet's first layer, and prints the first call's time
(wall clock and the process's CPU time: compiling is one thread, so on a busy machine
the CPU time is the steadier figure); a second process then loads them from that cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, time
import numpy as np
from fastnn import kernels

rows = []
for dtype in ("float64", "float32"):
    rng = np.random.default_rng(0)
    x = rng.random((100, 1, 28, 28)).astype(dtype)
    W = rng.standard_normal((30, 1, 5, 5)).astype(dtype)
    b = np.zeros(30, dtype)
    state = {}

    def conv_forward():
        state["out"], state["cache"] = kernels.conv_forward(x, W, b, 1, 0)

    def conv_backward():
        kernels.conv_backward(state["out"], state["cache"], W, 1, 0)

    def pool_forward():
        state["pout"], state["pcache"] = kernels.pool_forward(state["out"], 2, 2, 2, 0)

    def pool_backward():
        kernels.pool_backward(state["pout"], state["pcache"], 2, 2, 2, 0)

    def im2col_col2im():
        kernels.col2im(kernels.im2col(x, 5, 5, 1, 0), x.shape, 5, 5, 1, 0)

    for f in (conv_forward, conv_backward, pool_forward, pool_backward, im2col_col2im):
        wall, cpu = time.perf_counter(), time.process_time()
        f()
        rows.append((dtype, f.__name__, time.perf_counter() - wall, time.process_time() - cpu))
print(json.dumps(rows))
"""


def run(cache: str) -> list:
    env = dict(os.environ, FASTNN_CACHE_DIR=cache)
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        cold, warm = run(cache), run(cache)
    print(f"{'dtype':8} {'op':14} {'cold wall':>10} {'cold CPU':>9} {'cached wall':>12}")
    totals = {}
    for (dtype, op, wall, cpu), (_, _, cached, _) in zip(cold, warm):
        print(f"{dtype:8} {op:14} {wall:9.2f}s {cpu:8.2f}s {cached:11.3f}s")
        t = totals.setdefault(dtype, [0.0, 0.0, 0.0])
        t[0], t[1], t[2] = t[0] + wall, t[1] + cpu, t[2] + cached
    for dtype, (wall, cpu, cached) in totals.items():
        print(f"{dtype:8} {'all':14} {wall:9.2f}s {cpu:8.2f}s {cached:11.3f}s")


if __name__ == "__main__":
    main()
