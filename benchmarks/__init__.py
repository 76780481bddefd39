"""fastnn's asv suite: every kernel and the training step, numpy backend vs numba.

Files follow NumPy's convention: ``bench_<area>.py``, a class per operation with
``params`` / ``param_names``, preparation and a warm-up call (numba compiles then) in
``setup``, one call per ``time_*``. Beside them: ``compare.py`` (a script: the
side-by-side tables, one module per report in ``reports/``), ``timing.py`` (the
interleaved timer both use), ``book.py`` (the article's own class, the baseline) and
``offline_dashboard.py``; none holds benchmarks.
"""
