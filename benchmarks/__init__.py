"""fastnn's asv suite: every kernel and the training step, numpy backend vs numba.

Files follow NumPy's convention: ``bench_<area>.py``, a class per operation with
``params`` / ``param_names``. Most classes are ``common.Measured`` grids: one
``setup_cache`` per commit times every case side by side (the fastest of short blocks,
``timing.best_blocks``) and ``track_seconds`` / ``track_speedup`` read the table.
Beside them: ``dashboard.py`` (benchmark the last N commits, publish, serve),
``dashboard_honesty.py`` (unchanged commits flag nothing, a planted slowdown is
flagged), ``compare.py`` (a script: the side-by-side tables, one module per report in
``reports/``), ``timing.py`` (the timers), ``book.py`` (the book's and the seed
article's code, the baselines), ``offline_dashboard.py`` and ``check_dashboard.py``;
none holds benchmarks.
"""
