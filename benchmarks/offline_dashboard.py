"""Make a published asv dashboard work without internet access.

asv 0.6's pages load jQuery, flot, bootstrap and a few small libraries from CDNs; on a
machine that cannot reach them the dashboard shows only "Can not determine continental
origin of swallow". This script fetches the same libraries from the npm registry
(``npm pack``), puts them in ``<html_dir>/vendor/`` and points the pages at them.

    asv publish && python benchmarks/offline_dashboard.py && asv preview

Not an asv benchmark (asv imports this module and finds none in it).
"""

import argparse
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", nargs="?", default=".asv/html")
    args = parser.parse_args(argv)
    html = Path(args.html_dir)
    if not (html / "index.html").is_file():
        sys.exit(f"offline_dashboard: no {html / 'index.html'}; run `asv publish` first")
    fetch(html / "vendor")
    total = sum(rewrite(page) for page in html.glob("*.html"))
    print(f"offline_dashboard: {total} tags now load from {html / 'vendor'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
