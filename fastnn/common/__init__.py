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
``fastnn.SGD`` ...), re-exported, not copies. The networks that the book keeps beside
its scripts are here too: ``TwoLayerNet`` (``ch05/two_layer_net.py``) in
``fastnn.common.two_layer_net``, ``SimpleConvNet`` (``ch07/simple_convnet.py``) in
``fastnn.common.simple_convnet``, ``DeepConvNet`` (``ch08/deep_convnet.py``) in
``fastnn.common.deep_convnet``: ``from simple_convnet import SimpleConvNet`` becomes
``from fastnn.common.simple_convnet import SimpleConvNet``.
"""
