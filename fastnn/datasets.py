"""Data sets: the bundled digits (always offline), MNIST-style IDX loaders, toy problems.

* ``load_digits``: the UCI 8x8 handwritten digits that scikit-learn ships (1,797 images).
* ``load_mnist`` / ``load_fashion_mnist``: the four IDX files, from ``data_dir``, else
  ``$FASTNN_DATA``, fastnn's cache (``~/.cache/fastnn``), the system's data sets
  (Debian's ``/usr/share/datasets/<name>``), else the public mirrors; each file is
  checked by the SHA-256 of its decompressed contents (or of the mirrors' .gz bytes).
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
import warnings
import zlib
from pathlib import Path

import numpy as np

from . import _validation as V

# The four IDX files of each data set: (name, SHA-256 of the .gz file as the mirrors serve
# it). A .gz file's bytes depend on the compressor (Debian's package recompressed them), so
# the decompressed IDX contents have their own digests in _CONTENT_SHA256: one per file,
# valid for every faithful copy, compressed or not.
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
# SHA-256 of the decompressed IDX files, computed from Debian's dataset-fashion-mnist
# (whose images are the mirrors' images: first training labels 9, 0, 0, 3; 6,000 per
# class). MNIST's contents could not be hashed here (no copy on these machines): an MNIST
# file is verified by the mirrors' .gz digest, and a copy in another form is checked for
# its structure only (a damaged .gz still fails gzip's own CRC-32 of the contents).
_CONTENT_SHA256 = {
    "mnist": {},
    "fashion-mnist": {
        "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
# The shape each real file has (a file of another shape in data_dir is the user's own data).
_SHAPES = {"train_images": (60000, 28, 28), "train_labels": (60000,),
           "test_images": (10000, 28, 28), "test_labels": (10000,)}
_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
# The one command that installs a set where the system has a package for it.
INSTALL_HINTS = {"fashion-mnist": "apt-get install dataset-fashion-mnist (Debian, Ubuntu)"}
# Well-known system locations, each holding <name>/ (Debian's dataset-* packages).
SYSTEM_DIRS = [Path("/usr/share/datasets")]
# fastnn's own cache; $FASTNN_DATA, when set, is looked at first and receives downloads.
HOME_CACHE = Path.home() / ".cache" / "fastnn"
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


class DatasetWarning(UserWarning):
    """A file fastnn found (in its cache or a system location) is damaged and was skipped."""


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
                test_fraction: float = 0.2, seed: int = 0, flatten: bool = True):
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
    flatten : bool
        Images as rows of 64; otherwise (N, 1, 8, 8) images, as ``load_mnist(flatten=False)``
        gives (N, 1, 28, 28): the input of a convolutional network.

    Returns
    -------
    (x_train, t_train), (x_test, t_test)
        x has 64 features per image, or one 8x8 channel.
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
    if not flatten:
        x = x.reshape(x.shape[0], 1, 8, 8)  # (scikit-learn's rows are the images row by row)
    train, test = _split(x.shape[0], float(test_fraction), seed)
    return (x[train], t[train]), (x[test], t[test])


def cache_dir() -> Path:
    """Where downloaded data sets live: ``$FASTNN_DATA``, else ``~/.cache/fastnn``."""
    return Path(os.environ.get("FASTNN_DATA") or HOME_CACHE)


def read_idx(path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into an array of its shape and type.

    IDX: two zero bytes, a type code, the number of dimensions, then one big-endian
    uint32 size per dimension, then the data.
    """
    path = Path(path)
    _, raw = _read_file(path)
    return _parse_idx(raw, path)


def _read_file(path: Path):
    """(SHA-256 of the file's bytes, its decompressed contents) of an IDX file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        raw = gzip.decompress(data) if path.suffix == ".gz" else data
    except (OSError, EOFError, zlib.error) as exc:  # (a corrupt gzip stream: zlib.error)
        raise DatasetError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    return hashlib.sha256(data).hexdigest(), raw


def _parse_idx(raw: bytes, path: Path) -> np.ndarray:
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
                           "FASTNN_DATA to a writable folder, or pass data_dir=... (--data-dir "
                           "on the command line)") from None
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
    raise DatasetError(f"{name}: could not download {filename} ({'; '.join(errors)}). "
                       + _advice(name, dest.parent))


def _advice(name: str, folder: Path) -> str:
    """What an offline user does next: the one install command, else where files go."""
    files = ", ".join(f for f, _ in _FILES[name].values())
    where = (f"put the four IDX files ({files}, .gz or unpacked) in {folder}, or pass "
             "data_dir=... (--data-dir on the command line)")
    if name in INSTALL_HINTS:
        return f"Install it with: {INSTALL_HINTS[name]}; or {where}."
    return where[0].upper() + where[1:] + "."


def _identify(file_sha: str, content_sha: str):
    """(set, key) whose known digest this file has, or None."""
    for name, files in _FILES.items():
        for key, (_, gz_sha) in files.items():
            if file_sha == gz_sha or content_sha == _CONTENT_SHA256[name].get(key):
                return name, key
    return None


def _check_file(name: str, key: str, path: Path, own_data_ok: bool) -> np.ndarray:
    """The array of one IDX file, after checking it is ``name``'s ``key`` file.

    A file with a known digest of another file (Fashion-MNIST's given as MNIST's) is
    refused. A file with the real shape but no known digest is corrupt where the set's
    contents have a digest. ``own_data_ok``: a file of another shape is the user's own
    data (data_dir), accepted as it is.
    """
    file_sha, raw = _read_file(path)
    content_sha = hashlib.sha256(raw).hexdigest()
    array = _parse_idx(raw, path)
    known = _identify(file_sha, content_sha)
    if known == (name, key):
        return array
    if known is not None:
        other, other_key = known
        hint = "" if other == name else f" (use load_{other.replace('-', '_')} / --dataset {other})"
        raise DatasetError(f"{path}: this is {_TITLES[other]}'s {other_key.replace('_', ' ')} "
                           f"file, not {_TITLES[name]}'s {key.replace('_', ' ')}{hint}")
    if array.shape != _SHAPES[key]:
        if own_data_ok:
            return array
        raise DatasetError(f"{path}: shape {array.shape}, {_TITLES[name]}'s "
                           f"{key.replace('_', ' ')} are {_SHAPES[key]}")
    expected = _CONTENT_SHA256[name].get(key)
    if expected is not None:
        raise DatasetError(f"{path}: corrupt: its contents' SHA-256 is {content_sha}, "
                           f"{_TITLES[name]}'s {key.replace('_', ' ')} have {expected}")
    return array  # MNIST in a form whose digest is not known here: structure checked only


def _candidates(folder: Path, filename: str):
    return [p for p in (folder / filename, folder / filename[:-3]) if p.is_file()]


def search_folders(name: str) -> list:
    """Where ``name`` is looked for when no data_dir is given, in order: ``$FASTNN_DATA``,
    fastnn's cache, then the system locations (Debian's ``/usr/share/datasets/<name>``)."""
    folders = []
    if os.environ.get("FASTNN_DATA"):
        folders.append(Path(os.environ["FASTNN_DATA"]) / name)
    folders.append(Path(HOME_CACHE) / name)
    folders += [Path(d) / name for d in SYSTEM_DIRS]
    unique = []
    for folder in folders:
        if folder not in unique:
            unique.append(folder)
    return unique


def _load_one(name: str, key: str, data_dir, download: bool):
    """(path, array, identity before reading) of one of the set's files, from the first
    source that has it whole."""
    filename, sha256 = _FILES[name][key]
    if data_dir is not None:  # the user's folder: what is wrong there is an error
        folder = Path(data_dir)
        found = _candidates(folder, filename)
        if not found:
            raise DatasetError(f"{name}: {filename} (or {filename[:-3]}) not found in {folder}")
        return _checked(name, key, found[0], own_data_ok=True)
    problems = []
    for folder in search_folders(name):
        for path in _candidates(folder, filename):
            try:
                return _checked(name, key, path, own_data_ok=False)
            except DatasetError as exc:  # named, and the next source is tried
                problems.append(str(exc))
                warnings.warn(f"skipping {exc}", DatasetWarning, stacklevel=4)
    cached = cache_dir() / name / filename
    looked = ", ".join(str(f) for f in search_folders(name))
    if not download:
        detail = f" ({'; '.join(problems)})" if problems else ""
        raise DatasetError(f"{name}: {filename} is not in {looked}{detail}, and downloading "
                           f"is off. {_advice(name, cached.parent)}")
    try:
        _download(name, filename, sha256, cached, MIRRORS[name])
    except DatasetError as exc:
        if problems:
            raise DatasetError(f"{'; '.join(problems)}; and downloading it again failed: "
                               f"{exc}") from None
        raise
    return _checked(name, key, cached, own_data_ok=False)


def _checked(name, key, path, own_data_ok):
    before = _identity(path)
    return path, _check_file(name, key, path, own_data_ok=own_data_ok), before


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


def _read_idx_set(name, data_dir, download) -> tuple[dict, dict]:
    """The set's four files read as one version: each file's identity (``_identity``) is
    taken before it is read and again after the last one is, and a set that changed in
    between (a download or copy replacing it while it was read: one version's images
    with another's labels) is read again, up to ``READ_ATTEMPTS`` times, then refused.
    Returns ({key: path}, {key: array})."""
    for attempt in range(READ_ATTEMPTS):
        found = {key: _load_one(name, key, data_dir, download) for key in _FILES[name]}
        changed = [key for key, (path, _, before) in found.items()
                   if _identity(path) != before]
        if not changed:
            return ({key: path for key, (path, _, _) in found.items()},
                    {key: array for key, (_, array, _) in found.items()})
        time.sleep(0.05 * (attempt + 1))
    shown = ", ".join(str(found[key][0]) for key in changed)
    raise DatasetError(f"{shown}: changed while being read, {READ_ATTEMPTS} times (is "
                       f"another process writing the data set?); try again once it is done")


def _load_idx_set(name, normalize, flatten, one_hot_label, data_dir, download):
    paths, arrays = _read_idx_set(name, data_dir, download)
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
        A folder holding the four IDX files (``.gz`` or unpacked); anything wrong there
        is an error (files of other shapes are taken as your own data). None looks in
        ``$FASTNN_DATA/<name>``, ``~/.cache/fastnn/<name>``, ``/usr/share/datasets/<name>``
        (``search_folders``), skipping a damaged file with a ``DatasetWarning`` naming it,
        then downloads what is missing from the public mirrors (written atomically to
        ``$FASTNN_DATA`` or the cache).
    download : bool
        With False, never touch the network: missing files are an error.

    Each file is accepted when the SHA-256 of its decompressed contents, or of the
    mirrors' ``.gz`` bytes, is the set's: Debian's recompressed files, the mirrors' files
    and unpacked copies all pass, a corrupt copy is named, and the other set's files
    (Fashion-MNIST's given as MNIST's) are refused. MNIST's content digests are not
    recorded yet, so an MNIST copy other than the mirrors' ``.gz`` is checked for its
    structure only.

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
    """Fashion-MNIST (Zalando's clothing images), with the same options as ``load_mnist``.

    Offline, ``apt-get install dataset-fashion-mnist`` (Debian, Ubuntu) installs the real
    files where this finds them.
    """
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
