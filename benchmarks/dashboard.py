"""Benchmark the last N commits with asv, publish the dashboard, make it work offline, serve it.

    python benchmarks/dashboard.py --last 5             # then open the URL it prints
    python benchmarks/dashboard.py --last 5 --no-serve  # publish only; `asv preview` serves

One command for what otherwise takes four (docs/internals.md): ``asv machine --yes``;
``asv run`` of the last N commits of the current branch (commits already benchmarked are
skipped, so running it again after a new commit benchmarks only that one); ``asv
publish`` (results and pages under ``.asv/``, as asv.conf.json says); the pages' CDN
libraries replaced by local copies and fastnn's display rules added
(``offline_dashboard.py``; the libraries are fetched once with ``npm pack`` and kept in
``.asv/vendor``); a count of the regressions asv flagged; and a local web server (asv's
pages read their data with requests a ``file://`` page may not make).

Not an asv benchmark (asv imports this module and finds none in it).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:  # imported as benchmarks.dashboard (asv's discovery, other scripts)
    from . import offline_dashboard
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import offline_dashboard

ROOT = Path(__file__).resolve().parents[1]


def read_config(path: Path) -> dict:
    """asv.conf.json (JSON with whole-line // comments), relative paths made absolute."""
    conf = json.loads(re.sub(r"^\s*//.*$", "", path.read_text(), flags=re.M))
    base = path.resolve().parent
    for key in ("repo", "benchmark_dir", "env_dir", "results_dir", "html_dir"):
        if key in conf:
            conf[key] = str((base / conf[key]).resolve())
    return conf


def write_config(conf: dict, folder: Path) -> Path:
    path = folder / "asv.conf.json"
    path.write_text(json.dumps(conf, indent=1))
    return path


def asv(config: Path, *args: str, quiet: bool = False, check: bool = True) -> int:
    """Run ``python -m asv --config config ARGS`` in the checkout (its plugins load from
    there); returns the exit status."""
    out = subprocess.DEVNULL if quiet else None
    return subprocess.run([sys.executable, "-m", "asv", "--config", str(config), *args],
                          cwd=ROOT, check=check, stdout=out).returncode


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def regressions(html: Path) -> list[tuple[str, str, float, float]]:
    """The regressions ``asv publish`` flagged: (benchmark entry, commit where the step up
    lands, value before, value after), one per step."""
    data = json.loads((html / "regressions.json").read_text())["regressions"]
    to_hash = json.loads((html / "index.json").read_text())["revision_to_hash"]
    found = []
    for entry, _path, _params, _idx, _last, _best, jumps in data:
        for _before_rev, after_rev, before, after in jumps:
            found.append((entry, to_hash[str(after_rev)], before, after))
    return found


def make_offline(html: Path, cache: Path) -> None:
    """offline_dashboard's vendoring, fetching the libraries only when ``cache`` lacks one."""
    if not all((cache / name).is_file() for name in offline_dashboard.LIBRARIES):
        offline_dashboard.fetch(cache)
    shutil.copytree(cache, html / "vendor", dirs_exist_ok=True)
    for page in html.glob("*.html"):
        offline_dashboard.rewrite(page)
    offline_dashboard.add_display_rules(html)
    offline_dashboard.write_error_page(html)


def serve(html: Path, port: int) -> None:
    handler = functools.partial(_QuietHandler, directory=str(html))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError:  # the port is taken: any free one
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    print(f"dashboard: open http://127.0.0.1:{server.server_address[1]}/  "
          "(Ctrl-C stops the server)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no line per request
        pass


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of commits, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 commit, got {n}")
    return n


def _port(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port in 0..65535, got {n}")
    return n


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the last N commits with asv, "
                                     "publish the dashboard, make it work offline, serve it.")
    parser.add_argument("--last", type=_count, default=5, metavar="N",
                        help="benchmark the last N commits of the current branch (default 5)")
    parser.add_argument("--bench", metavar="REGEX", help="only the benchmarks matching REGEX")
    parser.add_argument("--port", type=_port, default=8080, help="port to serve on (8080)")
    parser.add_argument("--no-serve", action="store_true", help="publish, do not serve")
    parser.add_argument("--config", type=Path, default=ROOT / "asv.conf.json",
                        help="asv configuration (the project's asv.conf.json)")
    args = parser.parse_args(argv)
    if not args.config.is_file():
        parser.error(f"--config: no file {args.config}")
    branch = subprocess.run(["git", "-C", str(ROOT), "symbolic-ref", "--short", "-q", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    if not branch:
        parser.error("HEAD is detached: check out a branch (asv draws a branch's commits)")
    commits = git(ROOT, "rev-list", "-n", str(args.last), "HEAD").split()
    if len(commits) < args.last:
        parser.error(f"--last {args.last}: branch {branch} has only {len(commits)} commits")
    if importlib.util.find_spec("asv") is None:
        sys.exit("dashboard: asv is not installed; from the checkout: pip install -e '.[dev]'")

    conf = read_config(args.config)
    conf["branches"] = [branch]  # the branch benchmarked, whatever asv.conf.json names
    html = Path(conf["html_dir"])
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(conf, Path(tmp))
        hashes = Path(tmp) / "commits.txt"
        hashes.write_text("\n".join(commits) + "\n")
        asv(config, "machine", "--yes", quiet=True)
        run = ["run", f"HASHFILE:{hashes}", "--skip-existing"]
        if args.bench:
            run += ["--bench", args.bench]
        failed = asv(config, *run, check=False)
        asv(config, "publish", quiet=True)
    try:
        make_offline(html, Path(conf["results_dir"]).parent / "vendor")
    except (subprocess.CalledProcessError, SystemExit) as exc:
        print(f"dashboard: the pages could not be made to work offline ({exc}); they need "
              "internet access to load their scripts", file=sys.stderr)
    flagged = regressions(html)
    print(f"dashboard: {len(commits)} commits of {branch} published to {html}; "
          f"{len(flagged)} regressions flagged" + (" (see the Regressions page)" if flagged
                                                  else ""))
    if failed:
        print("dashboard: some benchmarks failed (asv's output above)", file=sys.stderr)
    if args.no_serve:
        print("dashboard: serve it with `asv preview` (http://127.0.0.1:8080/)")
    else:
        serve(html, args.port)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
