"""save / load: round trips, atomic writes, clear errors."""

import os

import numpy as np
import pytest

import fastnn


@pytest.mark.parametrize("activation, loss", [("relu", "softmax"), ("sigmoid", "mse")])
def test_round_trip(tmp_path, backend, dtype, activation, loss):
    net = fastnn.Sequential(5, [7, 4], 3, "he", activation=activation, loss=loss,
                            backend=backend, dtype=dtype, seed=0)
    net.params["b1"] += 0.5
    path = tmp_path / "model.npz"
    net.save(path)
    other = fastnn.load(path, backend=backend)
    assert (other.sizes, other.activation, other.loss_name, other.dtype) == (
        net.sizes, activation, loss, np.dtype(dtype))
    np.testing.assert_array_equal(other.params.flat, net.params.flat)
    x = np.random.default_rng(0).standard_normal((4, 5))
    np.testing.assert_array_equal(other.predict(x), net.predict(x))
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]  # no temporary files left


def test_interrupted_save_keeps_the_existing_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    fastnn.Sequential(3, [2], 2, seed=0).save(path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(KeyboardInterrupt):
        fastnn.Sequential(3, [2], 2, seed=1).save(path)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["model.npz"]


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        fastnn.load(tmp_path / "missing.npz")
    corrupt = tmp_path / "corrupt.npz"
    fastnn.Sequential(3, [2], 2, seed=0).save(corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a readable fastnn model file"):
        fastnn.load(corrupt)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.ones(3))
    with pytest.raises(ValueError, match="not a readable fastnn model file"):
        fastnn.load(other)
    mismatch = tmp_path / "mismatch.npz"
    fastnn.Sequential(3, [2], 2, seed=0).save(mismatch)
    with np.load(mismatch) as data:
        arrays = dict(data)
    arrays["param_W1"] = np.ones((4, 2))
    np.savez(mismatch, **arrays)
    with pytest.raises(ValueError, match=r"parameter W1 has shape \(4, 2\)"):
        fastnn.load(mismatch)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fastnn.Sequential(3, [2], 2, seed=0).save(tmp_path / "no" / "such" / "dir.npz")


def test_every_option_of_the_table_is_checked_copied_saved_and_loaded(tmp_path):
    """model_file.OPTIONS drives construction, copy, pickling, save and load: a network
    with every option away from its default comes back equal each way."""
    import pickle

    from fastnn import model_file

    options = dict(weight_decay_lambda=0.1, use_dropout=True, dropout_ratio=0.25,
                   use_batchnorm=True, bias=False)
    assert set(options) == set(model_file.OPTIONS)
    net = fastnn.Sequential(5, [4, 3], 2, seed=0, **options)
    path = tmp_path / "m.npz"
    net.save(path)
    for other in (fastnn.load(path), net.copy(), pickle.loads(pickle.dumps(net))):
        assert model_file.options_of(other) == options
        np.testing.assert_array_equal(other.params.flat, net.params.flat)
    for name, option in model_file.OPTIONS.items():
        bad = "x" if option.types == (bool,) else -1.0
        with pytest.raises((TypeError, ValueError), match=f"^{name}: "):
            fastnn.Sequential(5, [4], 2, **{name: bad})
