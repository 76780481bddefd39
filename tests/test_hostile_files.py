"""Hostile and corrupt files: one clear error, nothing large allocated, nothing escapes."""

import gzip
import io
import json
import tracemalloc
import zipfile

import numpy as np
import pytest
from test_datasets import fake_set, write_idx

import fastnn
from fastnn import datasets


def model_file(path, meta=None, arrays=None, **meta_changes):
    """A model file written by hand, as an attacker (or another program) would."""
    net = fastnn.Sequential(3, [4], 2, seed=0)
    base = {"format": "fastnn.Sequential", "version": 1, "input_size": 3, "hidden_size": [4],
            "output_size": 2, "activation": "relu", "loss": "softmax", "dtype": "float64"}
    base.update(meta_changes)
    entries = {f"param_{k}": v for k, v in (dict(net.params) if arrays is None else arrays).items()}
    entries["meta"] = np.array(json.dumps(base if meta is None else meta))
    np.savez(path, **entries)
    return path


def assert_one_clear_error(path, match):
    with pytest.raises(ValueError, match=match) as info:
        fastnn.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_small_file_declaring_a_huge_network_allocates_nothing(tmp_path):
    path = model_file(tmp_path / "huge.npz", input_size=15000, hidden_size=[15000],
                      output_size=10)
    assert path.stat().st_size < 4000
    tracemalloc.start()
    try:
        assert_one_clear_error(path, r"parameter W1 has shape \(3, 4\), the architecture "
                                     r"needs \(15000, 15000\)")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20
    assert_one_clear_error(model_file(tmp_path / "wide.npz", input_size=10**6), "W1")


def npy_bytes_declaring(shape, dtype="<f8"):
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue()  # magic, version and header


@pytest.mark.parametrize("shape", [(10**6, 10**6), (2**40,), (3, 4)])
def test_array_headers_that_declare_more_than_the_file_holds(tmp_path, shape):
    path = model_file(tmp_path / "m.npz")
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("param_W9.npy", npy_bytes_declaring(shape) + b"\0" * 16)
    assert_one_clear_error(path, rf"parameter W9 declares shape \({shape[0]},.*truncated")


def test_foreign_and_corrupt_files(tmp_path):
    npy = tmp_path / "array.npy"
    np.save(npy, np.ones(3))
    assert_one_clear_error(npy, r"a single NumPy array \(\.npy\)")
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    assert_one_clear_error(text, "not an .npz archive")
    other = tmp_path / "other.npz"
    np.savez(other, a=np.ones(3))
    assert_one_clear_error(other, "no metadata entry")
    for meta in ([1, 2], "text", 3):
        assert_one_clear_error(model_file(tmp_path / "meta.npz", meta=meta), "metadata")
    good = model_file(tmp_path / "good.npz")
    for cut in (30, 200, len(good.read_bytes()) - 30):
        truncated = tmp_path / f"cut{cut}.npz"
        truncated.write_bytes(good.read_bytes()[:cut])
        assert_one_clear_error(truncated, "not a readable fastnn model file")


def test_unknown_compression_and_encryption_flags(tmp_path):
    for field, value, match in (("compress_type", 99, "unsupported compression"),
                                ("flag_bits", 0x1, "encrypted")):
        path = tmp_path / f"{field}.npz"
        model_file(path)
        data = bytearray(path.read_bytes())
        with zipfile.ZipFile(path) as z:
            info = z.getinfo("param_W1.npy")
        # patch both the local header and the central directory entry of param_W1
        local = info.header_offset
        offset = 8 if field == "compress_type" else 6
        data[local + offset:local + offset + 2] = value.to_bytes(2, "little")
        central = data.find(b"PK\x01\x02")
        while central != -1:
            name_len = int.from_bytes(data[central + 28:central + 30], "little")
            if data[central + 46:central + 46 + name_len] == b"param_W1.npy":
                c_off = 10 if field == "compress_type" else 8
                data[central + c_off:central + c_off + 2] = value.to_bytes(2, "little")
                break
            central = data.find(b"PK\x01\x02", central + 4)
        assert central != -1
        path.write_bytes(bytes(data))
        assert_one_clear_error(path, match)


@pytest.mark.parametrize("meta", [dict(input_size="3"), dict(hidden_size="4"),
                                  dict(hidden_size=[4.0]), dict(output_size=-2),
                                  dict(activation=7), dict(loss=None), dict(dtype=["f8"]),
                                  dict(activation="softsign"), dict(dtype="int8")])
def test_metadata_fields_of_the_wrong_type_or_value(tmp_path, meta):
    assert_one_clear_error(model_file(tmp_path / "m.npz", **meta), "architecture .* invalid")


@pytest.mark.parametrize("bad", [np.array([["a", "b", "c", "d"]] * 3),
                                 np.ones((3, 4), dtype=complex), np.ones((3, 4), dtype="M8[s]"),
                                 np.zeros((3, 4), dtype=[("a", "f8")]),
                                 np.ones((3, 4), dtype=np.int64)])
def test_parameters_of_unusable_dtypes(tmp_path, bad):
    net = fastnn.Sequential(3, [4], 2, seed=0)
    arrays = dict(net.params)
    arrays["W1"] = bad
    assert_one_clear_error(model_file(tmp_path / "m.npz", arrays=arrays), "dtype")


def test_the_cli_prints_one_line_for_a_bad_model(tmp_path, capsys):
    from fastnn.cli import main

    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04garbage")
    assert main(["evaluate", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("fastnn: error:") and "\n" not in err and "Traceback" not in err


# --- IDX files ------------------------------------------------------------------------------


def test_idx_corrupt_deflate_stream_is_a_dataset_error(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.zeros((50, 4), np.uint8))
    data = bytearray(path.read_bytes())
    data[20:30] = b"\xff" * 10
    path.write_bytes(bytes(data))
    with pytest.raises(datasets.DatasetError, match="cannot read"):
        datasets.read_idx(path)


def test_idx_sizes_do_not_wrap_around(tmp_path):
    path = tmp_path / "huge"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + (2**32 - 1).to_bytes(4, "big") * 3)
    with pytest.raises(datasets.DatasetError, match="should have .* bytes, has 16"):
        datasets.read_idx(path)


def rewrite(folder, key, array):
    name = datasets._FILES["mnist"][key][0]
    write_idx(folder / name, array)


@pytest.mark.parametrize("labels, match", [
    (np.array([0, 200] + [1] * 10, np.uint8), "label 200 at index 1 is outside the classes"),
    (np.array([3, 1, -1] + [1] * 9, np.int8), "label -1 at index 2"),
])
@pytest.mark.parametrize("one_hot", [False, True])
def test_idx_labels_are_validated(tmp_path, labels, match, one_hot):
    fake_set(tmp_path)
    codes = {np.dtype(np.int8): 0x09}
    name = datasets._FILES["mnist"]["train_labels"][0]
    code = codes.get(labels.dtype, 0x08)
    header = bytes([0, 0, code, 1]) + len(labels).to_bytes(4, "big")
    gzip.open(tmp_path / name, "wb").write(header + labels.tobytes())
    with pytest.raises(datasets.DatasetError, match=match):
        datasets.load_mnist(data_dir=tmp_path, one_hot_label=one_hot)


def test_idx_float_labels_are_refused(tmp_path):
    fake_set(tmp_path)
    name = datasets._FILES["mnist"]["train_labels"][0]
    labels = np.arange(12, dtype=">f4") % 10 + 0.5
    header = bytes([0, 0, 0x0D, 1]) + (12).to_bytes(4, "big")
    gzip.open(tmp_path / name, "wb").write(header + labels.tobytes())
    with pytest.raises(datasets.DatasetError, match="labels of type float32"):
        datasets.load_mnist(data_dir=tmp_path)


def test_idx_train_and_test_images_must_have_one_size(tmp_path):
    fake_set(tmp_path)
    rewrite(tmp_path, "test_images", np.zeros((5, 20, 20), np.uint8))
    with pytest.raises(datasets.DatasetError, match=r"train images are \(28, 28\), test "
                                                    r"images \(20, 20\)"):
        datasets.load_mnist(data_dir=tmp_path)


def test_an_unwritable_cache_location_is_a_dataset_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("FASTNN_DATA", str(blocker))  # its "mnist" subfolder cannot exist
    with pytest.raises(datasets.DatasetError, match="cannot write to the data cache"):
        datasets.load_mnist()


def test_a_bad_cached_file_is_named_when_the_download_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "cache"))
    cached = tmp_path / "cache" / "mnist" / datasets._FILES["mnist"]["train_images"][0]
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"corrupt")
    monkeypatch.setitem(datasets.MIRRORS, "mnist", [(tmp_path / "dead").as_uri() + "/"])
    with pytest.raises(datasets.DatasetError, match=rf"{cached}: cannot read .*; and "
                                                    r"downloading it again failed"), \
            pytest.warns(datasets.DatasetWarning, match=rf"skipping {cached}: cannot read"):
        datasets.load_mnist()
