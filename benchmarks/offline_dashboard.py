"""Make a published asv dashboard work without internet access, and easier to read.

asv 0.6's pages load jQuery, flot, bootstrap and a few small libraries from CDNs; on a
machine that cannot reach them the dashboard shows only "Can not determine continental
origin of swallow". This script fetches the same libraries from the npm registry
(``npm pack``), puts them in ``<html_dir>/vendor/`` and points the pages at them.

    asv publish && python benchmarks/offline_dashboard.py && asv preview

Plain ``asv publish`` shows that page when the libraries fail to load; asv.conf.json loads
this module as an asv plugin, whose ``OfflineNotice`` replaces it at publish time with one
that says what to run (this script, or ``benchmarks/dashboard.py``).

It also adds fastnn's display rules (``fastnn_dashboard.js``, hooked in just before asv
draws a graph): each kernel's numba series, its NumPy twin and its GEMM-only bound share
a colour (numba solid and thick, numpy faded and thin, gemm dotted), so they read at a
glance; and the axes get a
margin, so no point sits on the frame (a category x-axis such as "backend" included).

Not an asv benchmark (asv imports this module and finds none in it).
"""

import argparse
import html as html_text
import math
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# file name as referenced by asv's pages -> (npm package, path inside the package)
LIBRARIES = {
    "jquery-3.3.1.min.js": ("jquery@3.3.1", "package/dist/jquery.min.js"),
    "jquery.flot.min.js": ("flot@0.8.3", "package/jquery.flot.js"),
    "jquery.flot.time.min.js": ("flot@0.8.3", "package/jquery.flot.time.js"),
    "jquery.flot.selection.min.js": ("flot@0.8.3", "package/jquery.flot.selection.js"),
    "jquery.flot.categories.min.js": ("flot@0.8.3", "package/jquery.flot.categories.js"),
    "jquery.flot.orderBars.js": ("flot-orderbars@1.0.0", "package/js/jquery.flot.orderBars.js"),
    "stupidtable.min.js": ("stupid-table-plugin@1.1.3", "package/stupidtable.min.js"),
    "md5.min.js": ("blueimp-md5@2.19.0", "package/js/md5.min.js"),
    "bootstrap.min.js": ("bootstrap@3.1.1", "package/dist/js/bootstrap.min.js"),
    "bootstrap.min.css": ("bootstrap@3.1.1", "package/dist/css/bootstrap.min.css"),
}
_TAG = re.compile(r'(<(?:script|link)\b[^>]*?(?:src|href)=")(https?://[^"]+)("[^>]*>)')


def fetch(vendor: Path) -> None:
    if shutil.which("npm") is None:
        sys.exit("offline_dashboard: npm is needed to fetch the libraries (apt install npm)")
    vendor.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tarballs = {}
        for package in sorted({pkg for pkg, _ in LIBRARIES.values()}):
            out = subprocess.run(["npm", "pack", "--silent", package], cwd=tmp, check=True,
                                 capture_output=True, text=True).stdout.split()
            tarballs[package] = Path(tmp) / out[-1]
        for name, (package, member) in LIBRARIES.items():
            with tarfile.open(tarballs[package]) as tar:
                (vendor / name).write_bytes(tar.extractfile(member).read())


def rewrite(page: Path) -> int:
    """Point a page's CDN tags at vendor/ copies; returns how many were rewritten."""
    count = 0

    def local(match):
        nonlocal count
        name = match.group(2).rsplit("/", 1)[-1]
        if name not in LIBRARIES:
            return match.group(0)
        count += 1
        # the vendored files are not byte-identical to the CDN's minified ones
        rest = re.sub(r'\s(integrity|crossorigin|referrerpolicy)="[^"]*"', "", match.group(3))
        return f"{match.group(1)}vendor/{name}{rest}"

    page.write_text(_TAG.sub(local, page.read_text()))
    return count


_HOOK_AT = "var plot = $.plot(graph_div, graphs, options);"
_HOOK = "if (window.fastnnDashboard) { window.fastnnDashboard(graphs, options); }\n        "

DISPLAY_JS = r"""
/* fastnn's display rules for asv's graphs (benchmarks/offline_dashboard.py). */
window.fastnnDashboard = function (graphs, options) {
    var palette = $.asv.colors, keys = [];
    function faded(hex, alpha) {
        var n = parseInt(hex.slice(1), 16);
        return "rgba(" + (n >> 16 & 255) + "," + (n >> 8 & 255) + "," + (n & 255) + "," +
            alpha + ")";
    }
    graphs.forEach(function (g) {
        var backend = null;
        var rest = String(g.label || "").split("; ").filter(function (part) {
            var value = part.replace(/^backend-/, "");
            if (value === "numba" || value === "numpy" || value === "gemm") {
                backend = value;
                return false;
            }
            return true;
        }).join("; ");
        if (backend === null) { return; }
        var i = keys.indexOf(rest);
        if (i < 0) { keys.push(rest); i = keys.length - 1; }
        var colour = palette[i % palette.length];
        if (backend === "numba") {
            g.color = colour;
            g.lines = {show: true, lineWidth: 2.5};
        } else if (backend === "numpy") {
            g.color = faded(colour, 0.45);
            g.lines = {show: true, lineWidth: 1};
        } else {  /* gemm: the GEMMs alone, the kernel's bound: a dotted trace */
            g.color = faded(colour, 0.6);
            g.lines = {show: false};
            g.points = {show: true, radius: 1.5, lineWidth: 1};
        }
    });
    options.yaxis.autoscaleMargin = 0.1;
    options.xaxis.autoscaleMargin = 0.05;
    var categories = {};
    graphs.forEach(function (g) {
        (g.data || []).forEach(function (point) {
            if (typeof point[0] === "string") { categories[point[0]] = true; }
        });
    });
    var n = Object.keys(categories).length;
    if (n > 0) {  /* flot's categories sit at 0 .. n-1: half a step of margin each side */
        options.xaxis.min = -0.5;
        options.xaxis.max = n - 0.5;
    }
};
"""


def add_display_rules(html: Path) -> None:
    """Write fastnn_dashboard.js and hook it in before asv draws each graph."""
    (html / "fastnn_dashboard.js").write_text(DISPLAY_JS)
    graph_js = html / "graphdisplay.js"
    code = graph_js.read_text()
    if _HOOK not in code:
        if _HOOK_AT not in code:
            sys.exit("offline_dashboard: this asv's graphdisplay.js has no plot call to hook")
        graph_js.write_text(code.replace(_HOOK_AT, _HOOK + _HOOK_AT, 1))
    index = html / "index.html"
    page = index.read_text()
    if "fastnn_dashboard.js" not in page:
        page = page.replace("</head>", '<script src="fastnn_dashboard.js"></script>\n</head>', 1)
        index.write_text(page)


ERROR_PAGE = """<!doctype html>
<html>
  <head>
    <meta http-equiv="Content-Type" content="text/html; charset=utf-8">
    <title>fastnn benchmarks: the dashboard's scripts did not load</title>
  </head>
  <body>
    <h1>The dashboard's JavaScript libraries did not load</h1>
    <p>asv's pages load jQuery, flot and bootstrap from CDNs, which this browser could not
    reach (no internet access?). Make these pages work offline, from the fastnn checkout:</p>
    <pre>python benchmarks/offline_dashboard.py {html_dir}</pre>
    <p>(it fetches the same libraries with <code>npm pack</code> into
    <code>vendor/</code>), then reload. Or benchmark, publish and serve in one command,
    which does this too:</p>
    <pre>python benchmarks/dashboard.py --last 5</pre>
    <p>(asv's own message: "Can not determine continental origin of swallow".)</p>
  </body>
</html>
"""


def write_error_page(html: Path) -> None:
    """asv's error.html (shown when a library fails to load), saying what to run."""
    (html / "error.html").write_text(ERROR_PAGE.format(html_dir=html_text.escape(str(html))))


try:  # loaded by asv as a plugin ("plugins" in asv.conf.json)
    from asv.publishing import OutputPublisher
except ImportError:  # asv's benchmark environments have asv_runner only
    OutputPublisher = None

if OutputPublisher is not None:
    class OfflineNotice(OutputPublisher):
        """At ``asv publish``: the error page tells the user how to fix it."""

        name = "fastnn-offline-notice"
        button_label = "Offline use"
        description = "What to run when the dashboard's libraries cannot load"
        order = math.inf

        @classmethod
        def publish(cls, conf, repo, benchmarks, graphs, revisions):
            write_error_page(Path(conf.html_dir))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Make a published asv dashboard work "
                                     "offline and pair each kernel's series with its twin.")
    parser.add_argument("html_dir", nargs="?", default=".asv/html")
    args = parser.parse_args(argv)
    html = Path(args.html_dir)
    if not (html / "index.html").is_file():
        sys.exit(f"offline_dashboard: no {html / 'index.html'}; run `asv publish` first")
    fetch(html / "vendor")
    total = sum(rewrite(page) for page in html.glob("*.html"))
    add_display_rules(html)
    write_error_page(html)
    print(f"offline_dashboard: {total} tags now load from {html / 'vendor'}; fastnn's "
          "display rules added")
    return 0


if __name__ == "__main__":
    sys.exit(main())
