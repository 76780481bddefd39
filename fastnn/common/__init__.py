"""The book's ``common/`` package, on fastnn: swap ``common.`` for ``fastnn.common.``.

A script of *Deep Learning from Scratch* (chapters 5 and 6) imports from the book's
``common`` folder::

    from common.multi_layer_net_extend import MultiLayerNetExtend
    from common.optimizer import *
    from common.util import smooth_curve

Replacing ``common.`` by ``fastnn.common.`` in those lines, and nothing else, runs the
script on fastnn with the book's numbers. Each module gives what the book's module of the
same name gives, star imports included (``from fastnn.common.optimizer import *`` gives
``np`` as the book's does). The classes are fastnn's own (``fastnn.MultiLayerNet``,
``fastnn.SGD`` ...), re-exported, not copies. ``TwoLayerNet`` (the book's
``ch05/two_layer_net.py``) is in ``fastnn.common.two_layer_net``. The convolution parts
of chapter 7 (``Convolution``, ``Pooling``, ``im2col``) are not provided.
"""
