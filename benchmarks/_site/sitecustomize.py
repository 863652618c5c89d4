"""Loaded by every Python process the benchmark starts (``PYTHONPATH`` puts this folder first):
counts the process's Redis round trips when ``BENCH_RT_DIR`` is set (see ``benchmarks.rtcount``)."""

import os

if os.environ.get("BENCH_RT_DIR"):
    from benchmarks.rtcount import install

    install(os.environ["BENCH_RT_DIR"])
