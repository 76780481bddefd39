"""Data sets: the bundled digits (always offline), MNIST-style IDX loaders, toy problems.

* ``load_digits``: the UCI 8x8 handwritten digits that scikit-learn ships (1,797 images).
* ``load_mnist`` / ``load_fashion_mnist``: the four IDX files, from ``data_dir``, the
  cache (``$FASTNN_DATA`` or ``~/.cache/fastnn``) or the public mirrors (SHA-256 checked).
* ``make_sine``: the 63-point sine curve of the 1-3-1 sigmoid network article.
* ``make_regression``: random regression data like PyTorch's NumPy warm-up.

Every loader returns ``(x_train, t_train), (x_test, t_test)`` as the book's
``load_mnist`` does; ``make_*`` return ``(x, t)``.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from . import _validation as V

# The four IDX files of each data set: (name, SHA-256 of the .gz file as served).
_FILES = {
    "mnist": {
        "train_images": ("train-images-idx3-ubyte.gz",
                         "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "train_labels": ("train-labels-idx1-ubyte.gz",
                         "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        "test_images": ("t10k-images-idx3-ubyte.gz",
                        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        "test_labels": ("t10k-labels-idx1-ubyte.gz",
                        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    },
    "fashion-mnist": {
        "train_images": ("train-images-idx3-ubyte.gz",
                         "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        "train_labels": ("train-labels-idx1-ubyte.gz",
                         "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        "test_images": ("t10k-images-idx3-ubyte.gz",
                        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        "test_labels": ("t10k-labels-idx1-ubyte.gz",
                        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    },
}
# More than one public mirror each: single mirrors have gone away under users before.
MIRRORS = {
    "mnist": [
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ],
}
_USER_AGENT = "fastnn-datasets/0.1 (+python urllib)"
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DatasetError(RuntimeError):
    """A data set could not be found, downloaded or read; the message says what to do."""


def _one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((labels.size, n_classes), dtype=np.float64)
    out[np.arange(labels.size), labels] = 1
    return out


def _split(n: int, test_fraction: float, seed: int):
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(n * test_fraction))
    return order[n_test:], order[:n_test]


def load_digits(one_hot_label: bool = False, normalize: bool = True,
                test_fraction: float = 0.2, seed: int = 0):
    """The 8x8 handwritten digits bundled with scikit-learn, split into train and test.

    Parameters
    ----------
    one_hot_label : bool
        Labels as one-hot rows (N, 10) instead of integers (N,).
    normalize : bool
        Pixels scaled from 0..16 to [0, 1] (float64); otherwise the raw float values.
    test_fraction : float
        Share of the 1,797 images held out for testing.
    seed : int
        Seed of the shuffle that makes the split (the same seed, the same split).

    Returns
    -------
    (x_train, t_train), (x_test, t_test)
        x has 64 features per image.
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    seed = int(seed)
    data = _sk_load_digits()
    x = data.data.astype(np.float64)
    if normalize:
        x /= 16.0
    t = data.target.astype(np.int64)
    if one_hot_label:
        t = _one_hot(t, 10)
    train, test = _split(x.shape[0], float(test_fraction), seed)
    return (x[train], t[train]), (x[test], t[test])


def cache_dir() -> Path:
    """Where downloaded data sets live: ``$FASTNN_DATA``, else ``~/.cache/fastnn``."""
    return Path(os.environ.get("FASTNN_DATA") or Path.home() / ".cache" / "fastnn")


def read_idx(path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into an array of its shape and type.

    IDX: two zero bytes, a type code, the number of dimensions, then one big-endian
    uint32 size per dimension, then the data.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:  # (a corrupt gzip stream: zlib.error)
        raise DatasetError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number {raw[:4]!r})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + math.prod(shape) * dtype.itemsize  # Python ints: no wrap-around
    if len(raw) != expected:
        raise DatasetError(f"{path}: IDX file of shape {shape} should have {expected} bytes, "
                           f"has {len(raw)} (truncated or corrupt)")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(name: str, filename: str, sha256: str, dest: Path, mirrors) -> None:
    """Fetch one file from the first mirror that serves it with the right checksum."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.TemporaryFile(dir=dest.parent)
        probe.close()
    except OSError as exc:
        raise DatasetError(f"{name}: cannot write to the data cache {dest.parent} ({exc}); set "
                           "FASTNN_DATA to a writable folder or pass data_dir=... (fastnn "
                           "train --data-dir ...)") from None
    errors = []
    for base in mirrors:
        url = base + filename
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{filename}.", suffix=".part")
        try:
            request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
            with urllib.request.urlopen(request, timeout=60) as response, os.fdopen(fd, "wb") as f:
                fd = None
                for block in iter(lambda: response.read(1 << 20), b""):
                    f.write(block)
            got = _sha256(Path(tmp))
            if got != sha256:
                errors.append(f"{url}: checksum mismatch (got sha256 {got})")
                continue
            os.replace(tmp, dest)  # atomic: a partial download never takes the real name
            return
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors.append(f"{url}: {exc}")
        finally:
            if fd is not None:
                os.close(fd)
            if os.path.exists(tmp):
                os.remove(tmp)
    raise DatasetError(f"{name}: could not download {filename} ({'; '.join(errors)}). Put the "
                       f"four IDX files ({', '.join(f for f, _ in _FILES[name].values())}) "
                       f"in {dest.parent} or pass data_dir=... (fastnn train --data-dir ...)")


def _locate(name: str, key: str, data_dir, download: bool) -> Path:
    filename, sha256 = _FILES[name][key]
    if data_dir is not None:
        folder = Path(data_dir)
        for candidate in (folder / filename, folder / filename[:-3]):  # .gz or unpacked
            if candidate.exists():
                return candidate
        raise DatasetError(f"{name}: {filename} (or {filename[:-3]}) not found in {folder}")
    cached = cache_dir() / name / filename
    stale = ""
    if cached.exists():
        if _sha256(cached) == sha256:
            return cached
        stale = f"the cached {cached} fails its SHA-256 check"
        if not download:
            raise DatasetError(f"{name}: {stale}; delete it to download it again")
    if not download:
        raise DatasetError(f"{name}: {filename} is not in the cache {cached.parent}; put the "
                           "IDX files there, pass data_dir=..., or allow downloading")
    try:
        _download(name, filename, sha256, cached, MIRRORS[name])
    except DatasetError as exc:
        if stale:
            raise DatasetError(f"{stale}, and downloading it again failed: {exc}") from None
        raise
    return cached


def _check_labels(labels: np.ndarray, where: str) -> np.ndarray:
    """Class labels as int64, after checking they are integers in 0..9."""
    if labels.dtype.kind not in "iu":
        raise DatasetError(f"{where}: labels of type {labels.dtype}; expected integer classes")
    bad = np.flatnonzero((labels < 0) | (labels > 9))
    if bad.size:
        raise DatasetError(f"{where}: label {int(labels[bad[0]])} at index {int(bad[0])} is "
                           f"outside the classes 0..9 ({bad.size} such labels)")
    return labels.astype(np.int64)


def _identity(path: Path):
    """What changes when a file is rewritten or replaced: (device, inode, size, mtime,
    ctime), or None when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


READ_ATTEMPTS = 3


def _read_idx_files(paths: dict) -> dict:
    """Every file of ``paths`` ({key: path}) read as one version of the set: each file's
    identity (``_identity``) is taken before the first read and again after the last,
    and a set that changed in between (a download or copy replacing it while it was read:
    one version's images with another's labels) is read again, up to ``READ_ATTEMPTS``
    times, then refused."""
    for attempt in range(READ_ATTEMPTS):
        before = {key: _identity(path) for key, path in paths.items()}
        arrays = {key: read_idx(path) for key, path in paths.items()}
        changed = [key for key, path in paths.items() if _identity(path) != before[key]]
        if not changed:
            return arrays
        time.sleep(0.05 * (attempt + 1))
    shown = ", ".join(str(paths[key]) for key in changed)
    raise DatasetError(f"{shown}: changed while being read, {READ_ATTEMPTS} times (is "
                       f"another process writing the data set?); try again once it is done")


def _load_idx_set(name, normalize, flatten, one_hot_label, data_dir, download):
    paths = {key: _locate(name, key, data_dir, download) for key in _FILES[name]}
    arrays = _read_idx_files(paths)
    out = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise DatasetError(f"{name}: {split} images {images.shape} and labels "
                               f"{labels.shape} do not match")
        x = images.astype(np.float32) / 255.0 if normalize else images
        x = x.reshape(x.shape[0], -1) if flatten else x.reshape(x.shape[0], 1, *x.shape[1:])
        t = _check_labels(labels, str(paths[f"{split}_labels"]))
        if one_hot_label:
            t = _one_hot(t, 10)
        out.append((x, t))
    train_shape, test_shape = arrays["train_images"].shape[1:], arrays["test_images"].shape[1:]
    if train_shape != test_shape:
        raise DatasetError(f"{name}: train images are {train_shape}, test images {test_shape}; "
                           "the two splits must have one image size")
    return tuple(out)


def load_mnist(normalize: bool = True, flatten: bool = True, one_hot_label: bool = False,
               data_dir=None, download: bool = True):
    """MNIST handwritten digits, with the book's options.

    Parameters
    ----------
    normalize : bool
        Pixels as float32 in [0, 1]; otherwise uint8 0..255.
    flatten : bool
        Images as rows of 784; otherwise (N, 1, 28, 28).
    one_hot_label : bool
        Labels as one-hot rows (N, 10) instead of integers.
    data_dir : path or None
        A folder holding the four IDX files (``.gz`` or unpacked). None uses the cache
        (``$FASTNN_DATA`` or ``~/.cache/fastnn``), downloading what is missing from the
        public mirrors (SHA-256 checked, written atomically).
    download : bool
        With False, never touch the network: missing files are an error.

    Returns
    -------
    (x_train, t_train), (x_test, t_test) : 60,000 and 10,000 images.

    Raises
    ------
    DatasetError
        When the files cannot be found, downloaded or read; the message says where to
        put them.
    """
    return _load_idx_set("mnist", normalize, flatten, one_hot_label, data_dir, download)


def load_fashion_mnist(normalize: bool = True, flatten: bool = True,
                       one_hot_label: bool = False, data_dir=None, download: bool = True):
    """Fashion-MNIST (Zalando's clothing images), with the same options as ``load_mnist``."""
    return _load_idx_set("fashion-mnist", normalize, flatten, one_hot_label, data_dir, download)


def make_sine():
    """The sine-fitting data of the 1-3-1 network article: (x, t), each of shape (63, 1).

    x is ``arange(0, 2*pi, 0.1)`` mapped to [-1, 1) by ``(x - pi) / pi``; t is the sine
    of the unscaled points.
    """
    angles = np.arange(0, 2 * np.pi, 0.1)
    return ((angles - np.pi) / np.pi).reshape(-1, 1), np.sin(angles).reshape(-1, 1)


def make_regression(n: int = 64, d_in: int = 1000, d_out: int = 10, seed: int | None = 0):
    """Random regression data as in PyTorch's NumPy warm-up: x (n, d_in), t (n, d_out).

    Both are standard normal; the warm-up's network is 1000 -> 100 -> 10 with ReLU.
    """
    n = V.check_positive_int(n, "n")
    d_in = V.check_positive_int(d_in, "d_in")
    d_out = V.check_positive_int(d_out, "d_out")
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d_in)), rng.standard_normal((n, d_out))
