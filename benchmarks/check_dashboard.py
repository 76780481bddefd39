"""Publish the asv dashboard, serve it on localhost and load it in headless Chromium.

    python benchmarks/check_dashboard.py        # CI runs this; exit status 1 on a failure

A rendering check, not a measurement: in a temporary asv configuration (the project's,
with results and pages in a temporary folder, so no real history is touched) it runs a
few benchmarks once against the installed package, recorded under the last two commits'
hashes so that every graph has two points per line; publishes; makes the pages work
offline and adds fastnn's display rules (``offline_dashboard.py``); serves the folder on
127.0.0.1; and loads each page below in Chromium (Debian's ``chromium``). A page fails
when its graph has no drawn canvas, no legend (series) or, for kernel benchmarks, when
the numba series, its NumPy twin and its GEMM bound do not share a colour.

Not an asv benchmark (asv imports this module and finds none in it).
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

try:  # imported as benchmarks.check_dashboard (asv's discovery)
    from . import dashboard
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import dashboard

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = "SGDUpdate|AffineReluForward"
PAGES = {  # page -> what it must show
    "bench_kernels.SGDUpdate.track_seconds": "paired",
    "bench_kernels.AffineReluForward.track_seconds": "paired",
    "bench_kernels.SGDUpdate.track_seconds?x-axis=backend": "drawn",
    "bench_kernels.AffineReluForward.track_speedup": "paired",
}


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("check_dashboard: no Chromium found (Debian: apt install chromium)")


def _config(tmp: Path) -> Path:
    """The project's asv.conf.json with temporary outputs, drawing the checked-out branch
    (the commits benchmarked must be on a branch asv draws)."""
    conf = dashboard.read_config(ROOT / "asv.conf.json")
    branch = subprocess.run(["git", "-C", str(ROOT), "symbolic-ref", "--short", "-q", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    if branch:
        conf["branches"] = [branch]
    conf.update(env_dir=str(tmp / "env"), results_dir=str(tmp / "results"),
                html_dir=str(tmp / "html"))
    return dashboard.write_config(conf, tmp)


def _asv(config: Path, *args) -> None:
    subprocess.run([sys.executable, "-m", "asv", "--config", str(config), *args], cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL)


def _dom(browser: str, url: str) -> str:
    out = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                          "--virtual-time-budget=20000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    return out.stdout


def _rgb(colour: str) -> tuple:
    """(r, g, b) of "#rrggbb", "rgb(r, g, b)" or "rgba(r, g, b, a)"."""
    colour = colour.strip()
    if colour.startswith("#") and len(colour) == 7:
        return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return tuple(int(v) for v in re.findall(r"\d+", colour)[:3])


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no line per request
        pass


def check(dom: str, want: str) -> str | None:
    """None when the page shows what it must, else why not."""
    if 'class="flot-base"' not in dom:
        return "no graph was drawn (no flot canvas)"
    labels = re.findall(r'class="legendLabel">([^<]*)<', dom)
    if not labels:
        return "the graph has no series (no legend labels)"
    if want == "paired":
        colours = re.findall(r'class="legendColorBox"><div[^>]*><div style="[^"]*border:'
                             r'\s*\d+px solid ([^;"]+)', dom)
        if len(colours) != len(labels):
            return f"could not read the legend's colours ({len(colours)} for {len(labels)})"
        by_rest: dict[str, dict[str, str]] = {}
        for label, colour in zip(labels, colours):
            parts = label.split("; ")
            backend = next((p.replace("backend-", "") for p in parts
                            if p.replace("backend-", "") in ("numba", "numpy", "gemm")), None)
            rest = "; ".join(p for p in parts if p.replace("backend-", "") != backend)
            by_rest.setdefault(rest, {})[backend] = colour
        for rest, pair in by_rest.items():
            numba, numpy, gemm = pair.get("numba"), pair.get("numpy"), pair.get("gemm")
            if numba is None or numpy is None:
                return f"{rest}: no numba/numpy pair in the legend"
            if _rgb(numba) != _rgb(numpy) or numba == numpy:
                return f"{rest}: numba {numba} and numpy {numpy} are not one colour, faded"
            if gemm is not None and (_rgb(gemm) != _rgb(numba) or gemm == numba):
                return f"{rest}: gemm {gemm} is not numba's colour {numba}, faded"
    return None


def main() -> int:
    browser = _browser()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        config = _config(tmp)
        _asv(config, "machine", "--yes")
        commits = subprocess.run(["git", "rev-list", "-n", "2", "HEAD"], cwd=ROOT, check=True,
                                 capture_output=True, text=True).stdout.split()
        for commit in reversed(commits):
            _asv(config, "run", "-E", "existing", "--set-commit-hash", commit, "--bench",
                 BENCHMARKS, "-a", "repeat=1", "-a", "number=1", "-a", "rounds=1",
                 "-a", "warmup_time=0")
        _asv(config, "publish")
        html = tmp / "html"
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "offline_dashboard.py"),
                        str(html)], check=True, stdout=subprocess.DEVNULL)
        handler = functools.partial(_QuietHandler, directory=str(html))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        failures = 0
        try:
            for page, want in PAGES.items():
                why = check(_dom(browser, f"http://127.0.0.1:{port}/#{page}"), want)
                print(f"check_dashboard: {page}: {'ok' if why is None else 'FAILED: ' + why}")
                failures += why is not None
        finally:
            server.shutdown()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
