"""``python -m worker module:app [...]``: the worker service without the ``asyncendpoints``
command (same arguments as ``asyncendpoints worker``)."""

from __future__ import annotations

import argparse
import os
import sys

from asyncendpoints.errors import AsyncEndpointsError
from worker.service import HELP, add_arguments, run


def main() -> int:
    sys.path.insert(0, os.getcwd())
    parser = argparse.ArgumentParser(prog="python -m worker", description=HELP)
    add_arguments(parser)
    args = parser.parse_args()
    try:
        return run(args)
    except AsyncEndpointsError as exc:
        print(f"asyncendpoints worker: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
