"""``python -m controller``: the same as ``asyncendpoints controller``."""

from __future__ import annotations

import argparse
import sys

from controller.service import HELP, SERVICE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controller", description=HELP)
    SERVICE.add_arguments(parser)
    return SERVICE.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
