"""Finding the Kubernetes binaries the tests run (no pytest in here).

``scripts/k8s-testbed`` provides pinned ``etcd``, ``kube-apiserver``,
``kube-controller-manager`` and ``helm`` binaries (or finds them through
``KUBEBUILDER_ASSETS``): :func:`find_binaries` runs it and returns their folder,
:func:`find_helm` locates ``helm``; :class:`K8sTestbedError` says what cannot be had.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "k8s-testbed"
CONTROL_PLANE_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")


class K8sTestbedError(RuntimeError):
    """The control plane or its binaries cannot be had; the message says what is missing."""


def find_binaries(
    *, build: bool = True, timeout: float = 3600, on_line: Callable[[str], None] | None = None
) -> Path:
    """Run ``scripts/k8s-testbed`` (building on a cold cache unless ``build`` is false).

    Returns the folder holding the binaries; raises :class:`K8sTestbedError` with the script's
    message when they cannot be had. ``on_line`` receives each progress line.
    """
    if not SCRIPT.is_file():
        raise K8sTestbedError(f"{SCRIPT} is missing")
    cmd = [sys.executable, str(SCRIPT)] + ([] if build else ["--check"])
    # a group of its own, so that a timeout or Ctrl-C also ends the go builds it runs
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    lines: list[str] = []
    timed_out = threading.Event()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if on_line is not None:
                on_line(line.rstrip("\n"))

    def kill() -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def expire() -> None:
        timed_out.set()
        kill()

    reader = threading.Thread(target=pump, daemon=True)
    timer = threading.Timer(timeout, expire)
    reader.start()
    timer.start()
    try:
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.wait()
    except BaseException:
        kill()
        proc.wait()
        raise
    finally:
        timer.cancel()
        reader.join(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    if timed_out.is_set():
        raise K8sTestbedError(
            f"scripts/k8s-testbed did not finish within {timeout:.0f} s:\n" + "\n".join(lines[-30:])
        )
    if proc.returncode != 0:
        first = next((i for i, ln in enumerate(lines) if "ERROR:" in ln), max(len(lines) - 30, 0))
        raise K8sTestbedError(
            "\n".join(lines[first:]) or f"scripts/k8s-testbed exited {proc.returncode}"
        )
    folder = Path(out.strip().splitlines()[-1])
    for name in CONTROL_PLANE_BINARIES:
        if not (folder / name).is_file():
            raise K8sTestbedError(f"scripts/k8s-testbed printed {folder}, which has no {name}")
    return folder


def find_helm(bindir: Path) -> Path:
    """``helm`` next to the control-plane binaries, else the one on PATH."""
    for cand in (bindir / "helm", shutil.which("helm")):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return Path(cand)
    raise K8sTestbedError(f"no helm in {bindir} nor on PATH (scripts/k8s-testbed builds one)")
