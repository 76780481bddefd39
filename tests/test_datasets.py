"""Data sets: digits, the IDX parser, the cache, downloads (from local files), errors."""

import gzip
import hashlib

import numpy as np
import pytest

from fastnn import datasets


def write_idx(path, array, compress=True):
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    data = header + array.tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)
    return path


def fake_set(folder, n_train=12, n_test=5, compress=True, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, array in arrays.items():
        name = datasets._FILES["mnist"][key][0]
        write_idx(folder / (name if compress else name[:-3]), array, compress)
    return arrays


def test_load_digits_split_and_options():
    (x, t), (xt, tt) = datasets.load_digits()
    assert x.shape == (1438, 64) and xt.shape == (359, 64) and x.max() <= 1.0
    (x2, _), _ = datasets.load_digits()
    np.testing.assert_array_equal(x, x2)
    (_, t1), _ = datasets.load_digits(one_hot_label=True, seed=5)
    assert t1.shape == (1438, 10) and np.all(t1.sum(axis=1) == 1)
    with pytest.raises(ValueError, match="test_fraction"):
        datasets.load_digits(test_fraction=1.5)


def test_make_sine_and_regression():
    x, t = datasets.make_sine()
    assert x.shape == t.shape == (63, 1)
    assert x.min() == -1.0 and x.max() < 1.0
    np.testing.assert_allclose(t[:, 0], np.sin(np.arange(0, 2 * np.pi, 0.1)))
    x, y = datasets.make_regression(64, 1000, 10, seed=0)
    assert x.shape == (64, 1000) and y.shape == (64, 10)


@pytest.mark.parametrize("compress", [True, False])
def test_load_mnist_from_data_dir(tmp_path, compress):
    arrays = fake_set(tmp_path, compress=compress)
    (x, t), (xt, tt) = datasets.load_mnist(data_dir=tmp_path)
    assert x.shape == (12, 784) and x.dtype == np.float32 and x.max() <= 1
    np.testing.assert_array_equal(t, arrays["train_labels"])
    np.testing.assert_allclose(xt * 255, arrays["test_images"].reshape(5, -1), atol=1e-4)
    (x, t), _ = datasets.load_mnist(normalize=False, flatten=False, one_hot_label=True,
                                    data_dir=tmp_path)
    assert x.shape == (12, 1, 28, 28) and x.dtype == np.uint8 and t.shape == (12, 10)


def test_idx_parser_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(datasets.DatasetError, match="not an IDX file"):
        datasets.read_idx(bad)
    short = write_idx(tmp_path / "short.gz", np.zeros((3, 2), np.uint8))
    data = gzip.open(short).read()[:-1]
    gzip.open(short, "wb").write(data)
    with pytest.raises(datasets.DatasetError, match="truncated or corrupt"):
        datasets.read_idx(short)
    big = write_idx(tmp_path / "big.gz", np.arange(6, dtype=">i4").reshape(2, 3))
    np.testing.assert_array_equal(datasets.read_idx(big), np.arange(6).reshape(2, 3))


def test_missing_files_say_where_to_put_them(tmp_path, monkeypatch):
    with pytest.raises(datasets.DatasetError, match="not found in"):
        datasets.load_mnist(data_dir=tmp_path)
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "cache"))
    with pytest.raises(datasets.DatasetError, match="is not in .*downloading is off. Install it "
                                                    "with: apt-get install dataset-fashion-mnist"):
        datasets.load_fashion_mnist(download=False)
    with pytest.raises(datasets.DatasetError, match="downloading is off. Put the four IDX files"):
        datasets.load_mnist(download=False)


def local_mirror(tmp_path, monkeypatch):
    """A 'mirror' served from local files (file:// URLs), with matching checksums."""
    src = tmp_path / "mirror"
    fake_set(src)
    files = {key: (name, hashlib.sha256((src / name).read_bytes()).hexdigest())
             for key, (name, _) in datasets._FILES["mnist"].items()}
    monkeypatch.setitem(datasets._FILES, "mnist", files)
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "cache"))
    return src


def test_download_fills_the_cache_and_falls_back_across_mirrors(tmp_path, monkeypatch):
    src = local_mirror(tmp_path, monkeypatch)
    dead = (tmp_path / "dead").as_uri() + "/"
    monkeypatch.setitem(datasets.MIRRORS, "mnist", [dead, src.as_uri() + "/"])
    (x, _), _ = datasets.load_mnist()
    cached = sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir())
    assert cached == sorted(name for name, _ in datasets._FILES["mnist"].values())
    monkeypatch.setitem(datasets.MIRRORS, "mnist", [dead])  # now served from the cache
    (x2, _), _ = datasets.load_mnist()
    np.testing.assert_array_equal(x, x2)


def test_checksum_mismatch_is_an_error_and_leaves_nothing(tmp_path, monkeypatch):
    src = local_mirror(tmp_path, monkeypatch)
    files = {k: (name, "0" * 64) for k, (name, _) in datasets._FILES["mnist"].items()}
    monkeypatch.setitem(datasets._FILES, "mnist", files)
    monkeypatch.setitem(datasets.MIRRORS, "mnist", [src.as_uri() + "/"])
    with pytest.raises(datasets.DatasetError, match="checksum mismatch.*Put the four IDX files"):
        datasets.load_mnist()
    leftovers = list((tmp_path / "cache" / "mnist").iterdir())
    assert leftovers == []


# --- where the files are found, and their contents' checksums --------------------------


def small_real_set(monkeypatch, folder, name="fashion-mnist", seed=0):
    """A small set registered as ``name``'s real files: its content digests and shapes
    stand in for the real ones, so every rule of the real sets applies to it."""
    arrays = fake_set(folder, seed=seed)
    digests = {key: hashlib.sha256(gzip.decompress((folder / datasets._FILES[name][key][0])
                                                   .read_bytes())).hexdigest()
               for key in arrays}
    monkeypatch.setitem(datasets._CONTENT_SHA256, name, digests)
    monkeypatch.setattr(datasets, "_SHAPES", {k: a.shape for k, a in arrays.items()})
    return arrays


def test_lookup_order_data_dir_env_cache_then_system(tmp_path, monkeypatch):
    system, home, env = tmp_path / "usr", tmp_path / "home", tmp_path / "env"
    arrays = small_real_set(monkeypatch, system / "fashion-mnist")
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", [system])
    monkeypatch.setattr(datasets, "HOME_CACHE", home)
    monkeypatch.setenv("FASTNN_DATA", str(env))
    assert datasets.search_folders("fashion-mnist") == [
        env / "fashion-mnist", home / "fashion-mnist", system / "fashion-mnist"]
    (x, t), _ = datasets.load_fashion_mnist(normalize=False, download=False)
    np.testing.assert_array_equal(t, arrays["train_labels"])
    # a copy in fastnn's cache, unpacked and recompressed: the same contents, accepted
    for folder, level in ((home / "fashion-mnist", 1), (env / "fashion-mnist", 9)):
        folder.mkdir(parents=True)
        for key in arrays:
            name = datasets._FILES["fashion-mnist"][key][0]
            raw = gzip.decompress((system / "fashion-mnist" / name).read_bytes())
            if level == 1:
                (folder / name[:-3]).write_bytes(raw)
            else:
                (folder / name).write_bytes(gzip.compress(raw, compresslevel=level, mtime=1))
        (x2, _), _ = datasets.load_fashion_mnist(normalize=False, download=False)
        np.testing.assert_array_equal(x2, x)


def test_a_corrupt_system_file_is_named_and_skipped(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    arrays = small_real_set(monkeypatch, second / "fashion-mnist")
    fake_set(first / "fashion-mnist", seed=1)  # the same shapes, other pixels: damaged
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", [first, second])
    with pytest.warns(datasets.DatasetWarning) as caught:
        (x, _), _ = datasets.load_fashion_mnist(normalize=False, download=False)
    assert len(caught) == 4  # each damaged file named once, with what is wrong
    for warning, name in zip(caught, datasets._FILES["fashion-mnist"].values()):
        assert str(warning.message).startswith(
            f"skipping {first / 'fashion-mnist' / name[0]}: corrupt: its contents' SHA-256 is")
    np.testing.assert_array_equal(x.reshape(arrays["train_images"].shape),
                                  arrays["train_images"])


def test_a_corrupt_file_in_data_dir_is_an_error(tmp_path, monkeypatch):
    small_real_set(monkeypatch, tmp_path / "good")
    fake_set(tmp_path / "mine", seed=1)
    with pytest.raises(datasets.DatasetError, match=r"mine/train-images-idx3-ubyte.gz: corrupt"):
        datasets.load_fashion_mnist(data_dir=tmp_path / "mine")


def test_the_other_sets_files_are_refused(tmp_path, monkeypatch):
    small_real_set(monkeypatch, tmp_path)
    with pytest.raises(datasets.DatasetError, match=r"this is Fashion-MNIST's train images "
                                                    r"file, not MNIST's train images .*--dataset "
                                                    r"fashion-mnist"):
        datasets.load_mnist(data_dir=tmp_path)
    # and a test file in the place of a training file
    train = tmp_path / "train-labels-idx1-ubyte.gz"
    train.write_bytes((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes())
    with pytest.raises(datasets.DatasetError, match=r"Fashion-MNIST's test labels file, not "
                                                    r"Fashion-MNIST's train labels"):
        datasets.load_fashion_mnist(data_dir=tmp_path)


# --- images for convolutional networks: (N, 1, H, W) as the book's load_mnist(flatten=False)


def test_load_digits_as_images_is_the_same_split():
    (x, t), (xt, tt) = datasets.load_digits()
    (xi, ti), (xti, tti) = datasets.load_digits(flatten=False)
    assert xi.shape == (1438, 1, 8, 8) and xti.shape == (359, 1, 8, 8)
    np.testing.assert_array_equal(xi.reshape(1438, 64), x)
    np.testing.assert_array_equal(xti.reshape(359, 64), xt)
    np.testing.assert_array_equal(ti, t)
    np.testing.assert_array_equal(tti, tt)
    from sklearn.datasets import load_digits as sk  # an image's rows are the image's rows
    first = sk().images[np.argmax(np.all(sk().data == x[0] * 16, axis=1))]
    np.testing.assert_array_equal(xi[0, 0] * 16, first)


@pytest.mark.parametrize("loader", ["load_mnist", "load_fashion_mnist"])
def test_idx_sets_as_images(tmp_path, monkeypatch, loader):
    name = "mnist" if loader == "load_mnist" else "fashion-mnist"
    if name == "mnist":
        arrays = fake_set(tmp_path)
    else:
        arrays = small_real_set(monkeypatch, tmp_path)
    (x, t), (xt, tt) = getattr(datasets, loader)(flatten=False, data_dir=tmp_path)
    assert x.shape == (12, 1, 28, 28) and xt.shape == (5, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0] * 255, arrays["train_images"], atol=1e-4)
    np.testing.assert_array_equal(tt, arrays["test_labels"])
