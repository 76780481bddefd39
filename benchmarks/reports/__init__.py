"""``compare.py``'s reports, one module each (see ``compare.REPORTS``): the cases they
time (``cases``), the training-step tables (``steps``), peers (``peers``), the compiled
path (``compiled``), chapter 6 (``chapter6``), threads under load (``load``) and sweeps
(``sweep``). Not asv benchmarks (asv imports these modules and finds none in them)."""
