"""Run a console script under cProfile timed by CPU time (``time.process_time``), not wall time.

    python -m benchmarks.cprofile_run OUT.prof /path/to/console-script args...

On a busy machine wall-clock profiles blame whatever call was running when the process
was preempted; CPU time shows what the process itself spends. The stats are written when
the script exits (also through SystemExit, as the workers do on SIGTERM).
Read them with ``python -m pstats OUT.prof`` or :mod:`benchmarks.profile_report`.
"""

from __future__ import annotations

import cProfile
import runpy
import sys
import time


def main() -> None:
    out, script, *rest = sys.argv[1:]
    sys.argv = [script, *rest]
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit:
        pass
    finally:
        profiler.disable()
        profiler.dump_stats(out)


if __name__ == "__main__":
    main()
