"""fastnn's convnet training steps under two installs, side by side: before / after.

    python benchmarks/convnet_ab.py OTHER_PYTHON [--rounds 2] [--steps 8] [--threads N]
        [--cases simple-float64,simple-float32,deep-float64,deep-float32]

e.g. ``python benchmarks/convnet_ab.py /work/main/.venv/bin/python`` against this
checkout's interpreter (``sys.executable``). Each round runs one process per install,
alternating which goes first, each timing ``--steps`` training steps per case (batch
100, Adam, after warm-up; the book's SimpleConvNet and DeepConvNet on 1x28x28 images);
the table gives the medians over all rounds and their ratio. ``--threads`` forces
fastnn's thread count (default: its automatic policy). Processes never overlap, so on a
busy machine both installs see the same kind of load; report the ratio, not the times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

CHILD = r"""
import json, sys, time
import numpy as np
import fastnn

steps, cases, threads = int(sys.argv[1]), sys.argv[2].split(","), int(sys.argv[3])
if threads:
    fastnn.set_num_threads(threads)
SIMPLE = dict(input_dim=(1, 28, 28), conv_param={"filter_num": 30, "filter_size": 5,
              "pad": 0, "stride": 1}, hidden_size=100, output_size=10, weight_init_std=0.01)
out = {}
for case in cases:
    kind, dtype = case.split("-")
    net = (fastnn.SimpleConvNet(**SIMPLE, dtype=dtype, seed=0) if kind == "simple"
           else fastnn.DeepConvNet(dtype=dtype, seed=0))
    rng = np.random.default_rng(0)
    x, t = rng.random((100, 1, 28, 28)).astype(dtype), rng.integers(0, 10, 100)
    opt = fastnn.Adam(0.001)
    for _ in range(3):
        net.train_step(x, t, opt)
    time.sleep(0.5)  # (a background compile, where one started, is done by now)
    for _ in range(2):
        net.train_step(x, t, opt)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        net.train_step(x, t, opt)
        times.append(time.perf_counter() - start)
    out[case] = times
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("other", help="the other install's python")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--cases", default="simple-float64,simple-float32,deep-float64,"
                                       "deep-float32")
    args = ap.parse_args()
    pythons = {"other": args.other, "this": sys.executable}
    times = {name: {} for name in pythons}
    for r in range(args.rounds):
        order = list(pythons.items())
        for name, python in (order if r % 2 == 0 else order[::-1]):
            done = subprocess.run([python, "-c", CHILD, str(args.steps), args.cases,
                                   str(args.threads)], capture_output=True, text=True,
                                  check=True, env=dict(os.environ))
            for case, ts in json.loads(done.stdout.strip().splitlines()[-1]).items():
                times[name].setdefault(case, []).extend(ts)
    print(f"{'case':16} {'other ms':>9} {'this ms':>9} {'other/this':>10}")
    for case in args.cases.split(","):
        a, b = (1e3 * float(np.median(times[n][case])) for n in ("other", "this"))
        print(f"{case:16} {a:9.2f} {b:9.2f} {a / b:9.2f}x")


if __name__ == "__main__":
    main()
