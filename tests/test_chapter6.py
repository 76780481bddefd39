"""The book's chapter-6 toolbox: optimizers, weight decay, Dropout, BatchNorm, the
MultiLayerNet classes and Trainer, on both backends, against the NumPy reference and a
book-style baseline (benchmarks/book.py)."""

import pickle

import book
import numpy as np
import pytest
from _helpers import tol
from numba.core import config as numba_config

import fastnn
from fastnn import kernels as K
from fastnn import reference as R

OPTIMIZERS = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]
LR = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.05, "rmsprop": 0.005,
      "adam": 0.005}


def problem(N=24, D=7, C=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, D)), rng.integers(0, C, N)


def perturb_biases(net, seed=1):
    """Non-zero biases: no pre-activation sits exactly on ReLU's kink (a zero input row
    with zero biases would), which a central difference cannot differentiate."""
    rng = np.random.default_rng(seed)
    for key, p in net.params.items():
        if key.startswith(("b", "beta")):
            p[...] = 0.1 * rng.standard_normal(p.shape)


# --- per-op kernels against the reference ---------------------------------------------------


@pytest.mark.parametrize("N, H", [(1, 3), (2, 5), (7, 13), (64, 33)])
def test_batchnorm_kernels_match_the_reference(N, H, dtype):
    rng = np.random.default_rng(N * H)
    # non-contiguous inputs: every other column of a wider array
    x = (3 + 2 * rng.standard_normal((N, 2 * H)))[:, ::2].astype(dtype)
    gamma, beta = (1 + rng.standard_normal(H)).astype(dtype), rng.standard_normal(H).astype(dtype)
    for train in (True, False):
        stats = [(rng.random(H) * train + 0.5).astype(dtype) for _ in range(2)]
        ref_stats, k_stats = [s.copy() for s in stats], [s.copy() for s in stats]
        out_r, xc_r, std_r = R.batchnorm_forward(x, gamma, beta, *ref_stats, train)
        out_k, xc_k, std_k = K.batchnorm_forward(x, gamma, beta, *k_stats, train)
        t = tol(dtype, N, 10)
        np.testing.assert_allclose(out_k, out_r, **t)
        np.testing.assert_allclose(xc_k, xc_r, **t)
        np.testing.assert_allclose(std_k, std_r, **t)
        for a, b in zip(k_stats, ref_stats):
            np.testing.assert_allclose(a, b, **t)
        assert out_k.dtype == dtype
    dout = rng.standard_normal((N, H)).astype(dtype)
    _, xc, std = R.batchnorm_forward(x, gamma, beta, np.zeros(H, dtype), np.zeros(H, dtype),
                                     True)
    for a, b in zip(K.batchnorm_backward(dout, xc, std, gamma),
                    R.batchnorm_backward(dout, xc, std, gamma)):
        np.testing.assert_allclose(a, b, **tol(dtype, N, 10))


def test_batchnorm_of_a_constant_column_and_extreme_values(backend):
    be = K if backend == "numba" else R
    x = np.array([[1e30, 5.0, -1e-30], [1e30, 5.0, 1e-30], [1e30, 5.0, 0.0]])
    out, xc, std = be.batchnorm_forward(x, np.ones(3), np.zeros(3), np.zeros(3), np.zeros(3),
                                        True)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[:, 1], 0.0)  # a constant column normalises to beta
    dx, dgamma, dbeta = be.batchnorm_backward(np.ones((3, 3)), xc, std, np.ones(3))
    assert np.all(np.isfinite(dx))
    np.testing.assert_allclose(dbeta, 3.0)


def test_dropout_kernels_match_the_reference(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 8)).astype(dtype)[:, ::2]
    mask = rng.random((5, 4)) > 0.3
    for train in (True, False):
        np.testing.assert_array_equal(K.dropout_forward(x, mask, train, 0.3),
                                      R.dropout_forward(x, mask, train, 0.3).astype(dtype))
    np.testing.assert_array_equal(K.dropout_backward(x, mask), R.dropout_backward(x, mask))


UPDATES = {
    "momentum_update": (1, (0.01, 0.9)),
    "nesterov_update": (1, (0.01, 0.9)),
    "adagrad_update": (1, (0.01,)),
    "rmsprop_update": (1, (0.01, 0.99)),
    "adam_update": (2, (0.001, 0.9, 0.999, 3)),
}


@pytest.mark.parametrize("name", list(UPDATES))
@pytest.mark.parametrize("shape", [(1,), (7, 5), (3, 1, 4)])
def test_optimizer_kernels_match_the_reference(name, shape, dtype):
    n_state, args = UPDATES[name]
    rng = np.random.default_rng(len(shape))
    p = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    g.flat[0] = 1e30 if dtype == np.float64 else 1e18  # extreme, still finite squared
    states = [np.abs(rng.standard_normal(shape)).astype(dtype) for _ in range(n_state)]
    pr, pk = p.copy(), p.copy()
    sr, sk = [s.copy() for s in states], [s.copy() for s in states]
    getattr(R, name)(pr, g, *sr, *args)
    getattr(K, name)(pk, g, *sk, *args)
    t = tol(dtype, 1, 10)
    np.testing.assert_allclose(pk, pr, **t)
    for a, b in zip(sk, sr):
        np.testing.assert_allclose(a, b, **t)


@pytest.mark.skipif(numba_config.DISABLE_JIT, reason="threads need compiled code")
@pytest.mark.skipif(fastnn.threads.usable_cores() < 2, reason="needs 2 usable cores")
def test_large_updates_run_in_blocks_on_threads_with_the_bits_of_one_pass(dtype,
                                                                          monkeypatch):
    """A buffer of several blocks (kernels.optim: from about a million parameters): on one
    and two threads the same bits, and the bits of one unblocked pass of the body."""
    from fastnn.kernels import _blocks, optim

    n = 1_100_003
    assert optim._n_blocks(n, optim._grain(n, optim.UPDATE_WORK, 1)) > 1
    monkeypatch.setattr(_blocks, "BACKGROUND", False)  # (the parallel form in the call)
    rng = np.random.default_rng(5)
    p0 = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    s0 = [np.abs(rng.standard_normal(n)).astype(dtype) for _ in range(2)]
    for name, (n_state, args) in UPDATES.items():
        runs = []
        for threads in (1, 2):
            p, states = p0.copy(), [s.copy() for s in s0[:n_state]]
            fastnn.set_num_threads(threads)
            try:
                getattr(K, name)(p, g, *states, *args)
            finally:
                fastnn.set_num_threads(None)
            runs.append([p, *states])
        p, states = p0.copy(), [s.copy() for s in s0[:n_state]]
        with monkeypatch.context() as m:  # one pass: the whole buffer as one block
            m.setattr(optim, "_grain", lambda n, work, least: n)
            getattr(K, name)(p, g, *states, *args)
        for a, b, c in zip(*runs, [p, *states]):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)
    assert optim._run_update.parallel.signatures  # the two-thread runs ran in parallel


def test_optimizer_kernels_on_non_contiguous_arrays_update_in_place():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((6, 8))
    p, v = base[:, ::2], np.zeros((12, 4))[::2]  # strided views
    g = rng.standard_normal((6, 4))
    expected_p, expected_v = p.copy(), np.zeros((6, 4))
    R.momentum_update(expected_p, g, expected_v, 0.1, 0.9)
    K.momentum_update(p, g, v, 0.1, 0.9)
    np.testing.assert_allclose(p, expected_p, rtol=1e-15)
    np.testing.assert_allclose(base[:, ::2], expected_p, rtol=1e-15)
    np.testing.assert_allclose(v, expected_v, rtol=1e-15)


# --- whole networks: numba against the reference -----------------------------------------

CONFIGS = [
    dict(use_batchnorm=True),
    dict(use_dropout=True, dropout_ratio=0.3),
    dict(weight_decay_lambda=0.05),
    dict(use_batchnorm=True, use_dropout=True, dropout_ratio=0.2, weight_decay_lambda=0.01),
]


def pair(config, dtype=np.float64, activation="relu", loss="softmax", seed=3, sizes=(7, [6, 5], 3)):
    nets = [fastnn.Sequential(*sizes, "he", activation=activation, loss=loss, backend=be,
                              dtype=dtype, seed=seed, **config) for be in ("numpy", "numba")]
    for net in nets:
        perturb_biases(net)
    return nets


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "+".join(c))
def test_extended_networks_match_the_reference(config, dtype):
    x, t = problem(N=11)
    ref, fast = pair(config, dtype)
    t_ = tol(dtype, 11, 10)
    for train in (False, True):
        masks = None
        if config.get("use_dropout"):
            masks = [np.random.default_rng(i).random((11, h)) > 0.3 for i, h in enumerate([6, 5])]
        with ref.engine.fixed_masks(masks), fast.engine.fixed_masks(masks):
            np.testing.assert_allclose(fast.predict(x, train_flg=train),
                                       ref.predict(x, train_flg=train), **t_)
            np.testing.assert_allclose(fast.loss(x, t, train_flg=train),
                                       ref.loss(x, t, train_flg=train), **t_)
            np.testing.assert_allclose(fast.state, ref.state, **t_)
            gf, gr = fast.gradient(x, t), ref.gradient(x, t)
            for key in gr:
                np.testing.assert_allclose(gf[key], gr[key], **t_, err_msg=key)
            for name in ("sgd", "adam"):
                opt_f = fastnn.optim.optimizer_named(name, lr=0.01)
                opt_r = fastnn.optim.optimizer_named(name, lr=0.01)
                for _ in range(2):
                    lf, lr_ = fast.train_step(x, t, opt_f), ref.train_step(x, t, opt_r)
                    np.testing.assert_allclose(lf, lr_, **t_)
                for key in ref.params:
                    if name == "adam" and config.get("use_batchnorm") and key[0] == "b" \
                            and key != "b3":
                        # a bias before BatchNorm has a gradient of zero up to rounding,
                        # which Adam scales up to steps of about lr: compared at that scale
                        np.testing.assert_allclose(fast.params[key], ref.params[key],
                                                   atol=4 * 0.01)
                    else:
                        np.testing.assert_allclose(fast.params[key], ref.params[key], **t_,
                                                   err_msg=key)
                np.testing.assert_allclose(fast.state, ref.state, **t_)
                fast.params.flat[...], fast.state[...] = ref.params.flat, ref.state  # re-sync


@pytest.mark.parametrize("activation, loss", [("sigmoid", "mse")])  # (one more kernel)
def test_extended_networks_match_the_reference_for_other_layers(activation, loss):
    x, t = problem(N=9)
    if loss == "mse":
        t = np.random.default_rng(0).standard_normal((9, 3))
    ref, fast = pair(CONFIGS[3], activation=activation, loss=loss)
    masks = [np.random.default_rng(i).random((9, h)) > 0.2 for i, h in enumerate([6, 5])]
    with ref.engine.fixed_masks(masks), fast.engine.fixed_masks(masks):
        gf, gr = fast.gradient(x, t), ref.gradient(x, t)
    for key in gr:
        np.testing.assert_allclose(gf[key], gr[key], rtol=1e-11, atol=1e-13, err_msg=key)


def test_compiled_training_loop_with_batchnorm_equals_the_steps():
    """fit()'s compiled path (BatchNorm, SGD, weight decay) gives the step path's bits."""
    x, t = problem(N=40)
    nets = [fastnn.Sequential(7, [6, 5], 3, "he", use_batchnorm=True, weight_decay_lambda=0.01,
                              seed=5) for _ in range(2)]
    h1 = fastnn.fit(nets[0], x, t, batch_size=8, epochs=3, seed=1, progress=False,
                    compiled=True)
    h2 = fastnn.fit(nets[1], x, t, batch_size=8, epochs=3, seed=1, progress=False,
                    compiled=False)
    assert h1.path == "compiled" and h2.path == "step"
    np.testing.assert_array_equal(nets[0].params.flat, nets[1].params.flat)
    np.testing.assert_array_equal(nets[0].state, nets[1].state)
    assert h1.loss == h2.loss


# --- gradient checks ---------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "+".join(c))
@pytest.mark.parametrize("activation, backend", [("relu", "numpy"), ("relu", "numba"),
                                                 ("sigmoid", "numpy")])
def test_gradient_check(config, activation, backend):
    """(Sigmoid on numba: test_extended_networks_match_the_reference_for_other_layers; one
    kernel compiled less keeps the suite fast.)"""
    x, t = problem(N=10)
    net = fastnn.Sequential(7, [6, 5], 3, "he", activation=activation, backend=backend,
                            seed=2, **config)
    perturb_biases(net)
    errors = fastnn.gradient_check(net, x, t)
    assert set(errors) == set(net.params)
    assert max(errors.values()) < 1e-6, errors


def test_gradient_check_of_a_batch_of_two_with_batchnorm(backend):
    x, t = problem(N=2)
    net = fastnn.Sequential(7, [4], 3, "he", backend=backend, seed=2, use_batchnorm=True)
    perturb_biases(net)
    assert max(fastnn.gradient_check(net, x, t).values()) < 1e-6


# --- the book's classes and semantics ------------------------------------------------------


def test_multilayernet_has_the_books_signature_params_and_layers():
    np.random.seed(0)
    net = fastnn.MultiLayerNet(10, [8, 6], 4)
    np.random.seed(0)
    w1, w2, w3 = (np.random.randn(*s) for s in [(10, 8), (8, 6), (6, 4)])
    np.testing.assert_array_equal(net.params["W1"], np.sqrt(2 / 10) * w1)
    np.testing.assert_array_equal(net.params["W3"], np.sqrt(2 / 6) * w3)
    assert list(net.params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert list(net.layers) == ["Affine1", "Activation_function1", "Affine2",
                                "Activation_function2", "Affine3"]
    ext = fastnn.MultiLayerNetExtend(10, [8, 6], 4, "sigmoid", "sigmoid", 0.1, True, 0.3, True)
    assert list(ext.params) == ["W1", "b1", "W2", "b2", "W3", "b3", "gamma1", "beta1",
                                "gamma2", "beta2"]
    assert list(ext.layers) == ["Affine1", "BatchNorm1", "Activation_function1", "Dropout1",
                                "Affine2", "BatchNorm2", "Activation_function2", "Dropout2",
                                "Affine3"]
    np.testing.assert_array_equal(ext.params["gamma1"], 1.0)
    np.testing.assert_array_equal(ext.params["beta2"], 0.0)
    assert ext.dropout_ratio == 0.3 and ext.weight_decay_lambda == 0.1
    assert fastnn.MultiLayerNetExtend(10, [8], 4, dropout_ratio=0.4).dropout_ratio == 0.4
    np.testing.assert_allclose(np.std(fastnn.MultiLayerNet(400, [300], 2, seed=0,
                                                           weight_init_std="xavier")
                                      .params["W1"]), np.sqrt(1 / 400), rtol=0.02)
    assert np.std(fastnn.MultiLayerNet(50, [40], 2, weight_init_std=0.01, seed=0)
                  .params["W1"]) < 0.02


def test_an_int_seed_leaves_the_global_random_state_alone():
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    net = fastnn.MultiLayerNetExtend(5, [4], 2, use_dropout=True, seed=1)
    net.gradient(*problem(N=6, D=5, C=2))
    np.testing.assert_array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("config", [dict(), dict(batchnorm=True, dropout=0.2, decay=0.01)],
                         ids=["plain", "extended"])
def test_trainer_gives_the_books_numbers(name, config, digits):
    """With seed=None and np.random.seed(0), fastnn's classes draw what the book draws and
    compute what it computes: parameters within 1e-9 relative (BatchNorm's pre-norm biases,
    whose gradient is zero up to rounding, are compared on the scale of the weights),
    accuracy lists equal, losses within the book's 1e-7 inside its log."""
    (x, t), (x_test, t_test) = digits
    x, t, x_test, t_test = x[:200], t[:200], x_test[:100], t_test[:100]
    lr = LR[name]
    np.random.seed(0)
    ref = book.Net(64, [20, 15], 10, decay=config.get("decay", 0.0),
                   dropout=config.get("dropout"), batchnorm=config.get("batchnorm", False))
    losses, train_acc, test_acc = book.train(ref, book.OPTIMIZERS[name](lr=lr), x, t, x_test,
                                             t_test, epochs=2, batch=40)
    np.random.seed(0)
    net = fastnn.MultiLayerNetExtend(
        64, [20, 15], 10, weight_decay_lambda=config.get("decay", 0),
        use_dropout="dropout" in config, dropout_ration=config.get("dropout", 0.5),
        use_batchnorm=config.get("batchnorm", False))
    trainer = fastnn.Trainer(net, x, t, x_test, t_test, epochs=2, mini_batch_size=40,
                             optimizer=name, optimizer_param={"lr": lr}, verbose=False)
    trainer.train()
    scale = max(np.abs(ref.params[k]).max() for k in ref.params)
    for key in ref.params:
        own = np.abs(ref.params[key]).max()
        noise_only = config.get("batchnorm") and key.startswith("b")
        np.testing.assert_allclose(net.params[key], ref.params[key], rtol=0,
                                   atol=1e-9 * (scale if noise_only else own), err_msg=key)
    assert trainer.train_acc_list == train_acc and trainer.test_acc_list == test_acc
    if not config:
        np.testing.assert_allclose(trainer.train_loss_list, losses, rtol=1e-5)
    assert len(trainer.train_loss_list) == trainer.max_iter == 10


def test_trainer_schedule_evaluation_samples_and_verbose_output(capsys):
    x, t = problem(N=30)
    net = fastnn.MultiLayerNet(7, [5], 3, seed=0)
    trainer = fastnn.Trainer(net, x, t, x[:12], t[:12], epochs=3, mini_batch_size=10,
                             optimizer="rmsprpo", optimizer_param={"lr": 0.01},
                             evaluate_sample_num_per_epoch=5)
    trainer.train()
    out = capsys.readouterr().out
    assert trainer.max_iter == 9 and len(trainer.train_loss_list) == 9
    assert len(trainer.train_acc_list) == 3  # iterations 0, 3, 6
    assert all(a in (0, 0.2, 0.4, 0.6, 0.8, 1.0) for a in trainer.train_acc_list)  # 5 rows
    assert out.count("train loss:") == 9 and "=== epoch:3, train acc:" in out
    assert "Final Test Accuracy" in out and trainer.test_acc is not None
    assert isinstance(trainer.optimizer, fastnn.RMSprop)


def test_trainer_drives_a_plain_book_network():
    x, t = problem(N=20)
    np.random.seed(1)
    ref = book.Net(7, [5], 3)
    trainer = fastnn.Trainer(ref, x, t, x, t, epochs=2, mini_batch_size=10,
                             optimizer="Adam", optimizer_param={"lr": 0.01}, verbose=False)
    trainer.train()
    assert len(trainer.train_loss_list) == 4 and isinstance(trainer.optimizer, fastnn.Adam)


def test_optimizers_update_plain_dicts_like_the_book():
    rng = np.random.default_rng(0)
    params = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    grads = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    for name in OPTIMIZERS:
        ours, theirs = {k: v.copy() for k, v in params.items()}, \
            {k: v.copy() for k, v in params.items()}
        opt, ref = fastnn.optim.optimizer_named(name), book.OPTIMIZERS[name]()
        for _ in range(3):
            opt.update(ours, grads)
            ref.update(theirs, grads)
        for k in params:
            np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-14, err_msg=name)


def test_optimizer_state_and_repr():
    net = fastnn.MultiLayerNet(4, [3], 2, seed=0)
    opt = fastnn.Adam(lr=0.01)
    assert opt.state == {} and repr(opt) == "Adam(lr=0.01, beta1=0.9, beta2=0.999)"
    opt.update(net.params, net.gradient(*problem(N=5, D=4, C=2)))
    assert opt.iter == 1 and set(opt.state) == {"m", "v"}
    assert set(opt.state["m"]) == set(net.params)
    assert fastnn.Momentum().momentum == 0.9 and fastnn.RMSprop().decay_rate == 0.99
    assert fastnn.AdaGrad().lr == 0.01 and fastnn.Nesterov(lr=0.5).lr == 0.5


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("make, exc, match", [
    (lambda: fastnn.Momentum(lr=0), ValueError, "lr: expected a positive"),
    (lambda: fastnn.Adam(lr=-1e-3), ValueError, "lr: expected a positive"),
    (lambda: fastnn.Momentum(momentum=1.0), ValueError, r"momentum: expected a number in \[0, 1\)"),
    (lambda: fastnn.Nesterov(momentum=-0.1), ValueError, "momentum: expected"),
    (lambda: fastnn.RMSprop(decay_rate=1.5), ValueError, "decay_rate: expected"),
    (lambda: fastnn.Adam(beta1=1.0), ValueError, "beta1: expected"),
    (lambda: fastnn.Adam(beta2="0.9"), TypeError, "beta2: expected"),
    (lambda: fastnn.MultiLayerNetExtend(4, [3], 2, dropout_ration=1.0), ValueError,
     "dropout_ration: expected a number in"),
    (lambda: fastnn.MultiLayerNetExtend(4, [3], 2, dropout_ratio=-0.5), ValueError,
     "dropout_ratio: expected"),
    (lambda: fastnn.MultiLayerNet(4, [3], 2, weight_decay_lambda=-1), ValueError,
     "weight_decay_lambda: expected a non-negative"),
    (lambda: fastnn.Sequential(4, [3], 2, use_batchnorm="yes"), TypeError,
     "use_batchnorm: expected True or False"),
    (lambda: fastnn.optim.optimizer_named("adamw"), ValueError,
     "optimizer: unknown optimizer 'adamw'"),
])
def test_bad_hyperparameters_are_refused(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_setting_a_bad_hyperparameter_changes_nothing():
    opt = fastnn.Momentum(lr=0.1, momentum=0.5)
    with pytest.raises(ValueError, match="momentum"):
        opt.momentum = 2.0
    assert opt.momentum == 0.5


def test_trainer_refuses_an_unknown_optimizer_name_and_bad_arguments():
    x, t = problem(N=10)
    net = fastnn.MultiLayerNet(7, [4], 3, seed=0)
    with pytest.raises(ValueError, match="optimizer: unknown optimizer 'adamax'"):
        fastnn.Trainer(net, x, t, x, t, optimizer="adamax")
    with pytest.raises(TypeError, match="optimizer: Momentum does not take"):
        fastnn.Trainer(net, x, t, x, t, optimizer="momentum", optimizer_param={"beta1": 0.9})
    with pytest.raises(ValueError, match="mini_batch_size: expected a positive integer"):
        fastnn.Trainer(net, x, t, x, t, mini_batch_size=0)
    with pytest.raises(TypeError, match="network: expected a network"):
        fastnn.Trainer(object(), x, t, x, t)


def test_train_flg_must_be_a_bool():
    net = fastnn.MultiLayerNetExtend(7, [4], 3, use_batchnorm=True, seed=0)
    x, t = problem(N=5)
    state = net.state.copy()
    for call in (lambda: net.predict(x, train_flg="yes"), lambda: net.loss(x, t, train_flg=1)):
        with pytest.raises(TypeError, match="train_flg: expected True or False"):
            call()
    np.testing.assert_array_equal(net.state, state)


def test_an_optimizer_of_another_network_is_refused_before_any_change(backend):
    x, t = problem(N=6)
    a, b = (fastnn.MultiLayerNetExtend(7, [4], 3, use_batchnorm=True, seed=s, backend=backend)
            for s in (0, 1))
    opt = fastnn.Adam()
    a.train_step(x, t, opt)
    before = b.params.flat.copy()
    for call in (lambda: b.train_step(x, t, opt), lambda: opt.update(b.params, b.gradient(x, t)),
                 lambda: fastnn.fit(b, x, t, optimizer=opt, progress=False),
                 lambda: fastnn.Trainer(b, x, t, x, t, optimizer=opt)):
        with pytest.raises(ValueError, match="belongs to another network"):
            call()
        np.testing.assert_array_equal(b.params.flat, before)
    assert opt.iter == 1
    plain = {"W": np.ones((2, 2))}
    with pytest.raises(ValueError, match="belongs to another network"):
        opt.update(plain, {"W": np.ones((2, 2))})


def test_update_with_an_invalid_entry_changes_nothing():
    params = {"W": np.ones((2, 3)), "b": np.zeros(3)}
    opt = fastnn.Adam()
    for grads in ({"W": np.ones((2, 3)), "b": np.ones(4)}, {"W": np.ones((2, 3))},
                  {"W": np.ones((2, 3)), "b": np.array(["a", "b", "c"])}):
        with pytest.raises((ValueError, TypeError)):
            opt.update(params, grads)
        assert opt.iter == 0 and opt.state == {}
    np.testing.assert_array_equal(params["W"], 1.0)


# --- fit, save/load, pickling, the command line -----------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_fit_trains_with_every_optimizer(name, digits):
    (x, t), (x_test, t_test) = digits
    net = fastnn.Sequential(64, [32], 10, "he", seed=0, use_batchnorm=name == "adam",
                            use_dropout=name == "momentum", dropout_ratio=0.1)
    history = fastnn.fit(net, x, t, x_test=x_test, t_test=t_test, batch_size=50, epochs=4,
                         optimizer=fastnn.optim.optimizer_named(name, lr=LR[name]), seed=0,
                         progress=False)
    assert history.test_acc[-1] > 0.85, (name, history.test_acc)
    assert history.path == ("compiled" if name == "sgd" else "step")


def test_fit_divergence_restores_parameters_and_statistics():
    x, t = problem(N=40)
    net = fastnn.Sequential(7, [6], 3, "he", seed=0, use_batchnorm=True)
    with pytest.raises(fastnn.TrainingDiverged):
        fastnn.fit(net, x * 1e150, t, optimizer=fastnn.Adam(lr=1e300), batch_size=8,
                   epochs=5, progress=False)
    assert np.all(np.isfinite(net.params.flat)) and np.all(np.isfinite(net.state))


@pytest.mark.parametrize("cls", ["Sequential", "MultiLayerNetExtend"])
def test_save_load_and_pickle_keep_the_options_and_running_statistics(cls, tmp_path, backend):
    x, t = problem(N=20)
    if cls == "Sequential":
        net = fastnn.Sequential(7, [5, 4], 3, use_batchnorm=True, use_dropout=True,
                                dropout_ratio=0.3, weight_decay_lambda=0.01, seed=0,
                                dtype=np.float32, backend=backend)
    else:
        net = fastnn.MultiLayerNetExtend(7, [5, 4], 3, use_batchnorm=True, use_dropout=True,
                                         seed=0, backend=backend)
    opt = fastnn.Adam(0.01)
    for _ in range(3):
        net.train_step(x, t, opt)
    path = tmp_path / "model.npz"
    net.save(path)
    for other in (fastnn.load(path, backend=backend), pickle.loads(pickle.dumps(net))):
        assert type(other).__name__ == cls and repr(other) == repr(net)
        np.testing.assert_array_equal(other.state, net.state)
        np.testing.assert_array_equal(other.predict(x), net.predict(x))
        assert other.loss(x, t) == net.loss(x, t)


def test_load_refuses_a_file_missing_the_running_statistics(tmp_path):
    from fastnn import serialize

    net = fastnn.Sequential(4, [3], 2, use_batchnorm=True, seed=0)
    path = tmp_path / "m.npz"
    net.save(path)
    meta, arrays = serialize.read_model(path)
    del arrays["running_var1"]
    serialize.write_model(path, meta, arrays)
    with pytest.raises(ValueError, match="do not match the architecture"):
        fastnn.load(path)


def test_cli_trains_with_the_chapter6_options(tmp_path, capsys):
    from fastnn.cli import main

    model = tmp_path / "m.npz"
    rc = main(["train", "--epochs", "2", "--hidden", "32", "--optimizer", "adam", "--batchnorm",
               "--dropout", "0.1", "--weight-decay", "0.001", "--json", "--save", str(model)])
    assert rc == 0
    import json

    summary = json.loads(capsys.readouterr().out)
    assert summary["optimizer"].startswith("Adam(") and summary["batchnorm"] is True
    net = fastnn.load(model)
    assert net.use_batchnorm and net.use_dropout and net.dropout_ratio == 0.1
    assert main(["evaluate", str(model)]) == 0


@pytest.mark.parametrize("argv, message", [
    (["--momentum", "0.9"], "--momentum: only for optimizer momentum or nesterov"),
    (["--dropout", "1"], "argument --dropout: expected a number in [0, 1)"),
    (["--weight-decay", "-0.1"], "argument --weight-decay: expected a non-negative finite number"),
    (["--optimizer", "adamw"], "argument --optimizer: invalid choice"),
])
def test_cli_refuses_bad_chapter6_options(argv, message, capsys):
    from fastnn.cli import main

    assert main(["train", "--epochs", "1", *argv]) == 2
    assert message in capsys.readouterr().err


def test_an_optimizer_pickles_with_its_state():
    x, t = problem(N=6)
    net = fastnn.MultiLayerNet(7, [4], 3, seed=0)
    opt = fastnn.Adam(0.01)
    net.train_step(x, t, opt)
    twin_net, twin_opt = pickle.loads(pickle.dumps((net, opt)))
    net.train_step(x, t, opt)
    twin_net.train_step(x, t, twin_opt)
    np.testing.assert_array_equal(twin_net.params.flat, net.params.flat)
    assert twin_opt.iter == 2
    with pytest.raises(ValueError, match="does not fit"):
        pickle.loads(pickle.dumps(opt)).update(fastnn.MultiLayerNet(7, [5], 3).params,
                                               fastnn.MultiLayerNet(7, [5], 3).gradient(x, t))


def test_sequential_takes_the_books_keywords():
    np.random.seed(3)
    a = fastnn.Sequential(input_size=6, hidden_size_list=[5], output_size=2,
                          weight_init_std="relu", weight_decay_lambda=0.1, use_batchnorm=True,
                          use_dropout=True, dropout_ration=0.3)
    np.random.seed(3)
    b = fastnn.MultiLayerNetExtend(6, [5], 2, weight_decay_lambda=0.1, use_dropout=True,
                                   dropout_ration=0.3, use_batchnorm=True)
    np.testing.assert_array_equal(a.params.flat, b.params.flat)
    assert a.dropout_ratio == 0.3 and a.use_batchnorm
    with pytest.raises(TypeError, match="give one of them"):
        fastnn.Sequential(6, [5], 2, hidden_size_list=[5])
    with pytest.raises(TypeError, match="output_size: required"):
        fastnn.Sequential(6, [5])
