"""Summarise py-spy collapsed stacks (``driver --profile DIR``): where a worker spends its time.

``python -m benchmarks.profile_report benchmarks/results/profile/ours.txt [--top 25]``
prints the functions with the most samples on the stack (inclusive) and at the top of
the stack (self), as shares of all samples.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if f]
        stacks.append((frames, int(count)))
    return stacks


def short(frame: str) -> str:
    # "function (path/to/file.py:123)" -> "function (file.py)"; folds line numbers together
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    parts = file.split("/")
    for anchor in ("site-packages", "lib", "main"):
        if anchor in parts:
            parts = parts[len(parts) - parts[::-1].index(anchor) :]
            break
    return f"{name} ({'/'.join(parts[-3:])})"


def report(path: Path, top: int) -> str:
    stacks = load(path)
    total = sum(c for _, c in stacks) or 1
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for frames, count in stacks:
        names = [
            short(f) for f in frames if not f.startswith("process ") and not f.startswith("thread ")
        ]
        if not names:
            continue
        own[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
    lines = [f"{path.name}: {total} samples", "", "self:"]
    lines += [f"  {100 * c / total:5.1f}%  {n}" for n, c in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"  {100 * c / total:5.1f}%  {n}" for n, c in inclusive.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args()
    for f in args.files:
        print(report(f, args.top))
        print()


if __name__ == "__main__":
    main()
