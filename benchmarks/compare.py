"""Print fastnn's side-by-side timings and ratios (the same as `fastnn bench`).

    python benchmarks/compare.py            # full tables (a few minutes)
    python benchmarks/compare.py --quick    # a smoke run
    python benchmarks/compare.py --peers    # also PyTorch / scikit-learn, when installed

Not an asv benchmark: asv imports this module but finds no benchmarks in it.
"""

if __name__ == "__main__":
    import sys

    from fastnn.bench import main

    sys.exit(main())
