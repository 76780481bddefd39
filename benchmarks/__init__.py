"""fastnn's asv suite: every kernel and the training step, numpy backend vs numba.

Files follow NumPy's convention: ``bench_<area>.py``, a class per operation with
``params`` / ``param_names``, preparation and a warm-up call (numba compiles then) in
``setup``, one call per ``time_*``. ``compare.py`` beside them is a script, not part of
the suite.
"""
