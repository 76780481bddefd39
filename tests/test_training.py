"""Training the way the seed article does: the user's own loop, np.random batches."""

import book
import numpy as np
import pytest

import fastnn


def article_loop(network, x_train, t_train, iters, batch_size=100, lr=0.1):
    train_size = x_train.shape[0]
    for _ in range(iters):
        batch_mask = np.random.choice(train_size, batch_size)
        grad = network.gradient(x_train[batch_mask], t_train[batch_mask])
        for key in network.params.keys():
            network.params[key] -= lr * grad[key]


def test_article_loop_learns_digits(digits, backend):
    (x_train, t_train), (x_test, t_test) = digits
    np.random.seed(0)
    net = fastnn.Sequential(64, [128, 128], 10, backend=backend)
    article_loop(net, x_train, t_train, iters=3000)
    assert net.accuracy(x_test, t_test) >= 0.93
    assert net.accuracy(x_train, t_train) >= 0.95


@pytest.mark.parametrize("labels", ["int", "onehot"])
def test_same_parameters_as_the_article_class_after_100_iterations(digits, backend, labels):
    (x_train, t_train), _ = digits
    if labels == "onehot":
        t_train = np.eye(10)[t_train]
    np.random.seed(42)
    article = book.BookSequential(64, [128, 128], 10)
    article_loop(article, x_train, t_train, iters=100)
    np.random.seed(42)
    net = fastnn.Sequential(64, [128, 128], 10, backend=backend)
    article_loop(net, x_train, t_train, iters=100)
    for key in article.params:
        np.testing.assert_allclose(net.params[key], article.params[key], rtol=1e-9, atol=1e-12)
