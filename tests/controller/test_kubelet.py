"""The kubelet stand-in itself (tests/support/kubelet.py): a process per Pod, as a kubelet would."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.testbed import ControlPlane
from tests.support.kubelet import Kubelet

pytestmark = [pytest.mark.k8s]

# Writes $POD_NAME to a file named after it, exits 7 on SIGTERM, or at once with "crash".
SCRIPT = """
import os, signal, sys, time
out = sys.argv[1]
name = os.environ["POD_NAME"]
with open(os.path.join(out, name), "a") as f:
    f.write(name + "\\n")
signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))
if name.endswith("crash"):
    sys.exit(3)
time.sleep(120)
"""


def _pod(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    # the ServiceAccount admission wants `default` (kube-controller-manager makes it, if it runs)
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    plane.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", sa)
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "stand-in"}},
        "spec": {
            "automountServiceAccountToken": False,
            "containers": [{"name": "worker", "image": "local"}],
        },
    }
    status, pod = plane.request("POST", f"/api/v1/namespaces/{namespace}/pods", body)
    assert status == 201, pod
    return dict(pod)


def _get(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    status, pod = plane.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
    return dict(pod) if status == 200 else {}


def _ready(pod: dict[str, Any]) -> bool:
    conds = {c["type"]: c["status"] for c in (pod.get("status") or {}).get("conditions") or []}
    return pod.get("status", {}).get("phase") == "Running" and conds.get("Ready") == "True"


def _until(check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out: {check}")


@pytest.mark.timeout(60)
def test_a_process_per_pod_ready_and_stopped_with_it(
    k8s_cluster: ControlPlane, k8s_namespace: str, tmp_path: Path
) -> None:
    plane, ns = k8s_cluster, k8s_namespace
    _pod(plane, ns, "one")
    command = [sys.executable, "-c", SCRIPT, str(tmp_path)]
    with Kubelet(plane.kubeconfig, ns, "app=stand-in", command, log_dir=tmp_path) as kubelet:
        _pod(plane, ns, "two")  # seen through the watch (the first through the listing)
        kubelet.wait_for(lambda k: k.running() == ["one", "two"], timeout=20)
        for name in ("one", "two"):
            _until(lambda n=name: (tmp_path / n).exists(), 10)
            assert (tmp_path / name).read_text() == f"{name}\n"  # POD_NAME was set
            _until(lambda n=name: _ready(_get(plane, ns, n)), 10)

        status, _ = plane.request("DELETE", f"/api/v1/namespaces/{ns}/pods/one")
        assert status == 200
        kubelet.wait_for(lambda k: k.running() == ["two"], timeout=10)
        assert kubelet.exits["one"] == [7]  # it got SIGTERM

        kubelet.mark_ready("two", ready=False)
        assert not _ready(_get(plane, ns, "two"))
    assert kubelet.exits["two"] == [7]  # stop() terminates what is left


@pytest.mark.timeout(60)
def test_a_crashing_process_restarts_or_fails_the_pod(
    k8s_cluster: ControlPlane, k8s_namespace: str, tmp_path: Path
) -> None:
    plane, ns = k8s_cluster, k8s_namespace
    command = [sys.executable, "-c", SCRIPT, str(tmp_path)]
    _pod(plane, ns, "restart-crash")
    selector = "app=stand-in"
    with Kubelet(plane.kubeconfig, ns, selector, command, on_exit="restart") as kubelet:
        _until(lambda: len(kubelet.exits.get("restart-crash", [])) >= 2, 20)
        assert set(kubelet.exits["restart-crash"]) == {3}
        lines = (tmp_path / "restart-crash").read_text().splitlines()
        assert len(lines) >= 2  # started again, same pod name
    plane.request("DELETE", f"/api/v1/namespaces/{ns}/pods/restart-crash")

    _pod(plane, ns, "fail-crash")
    with Kubelet(plane.kubeconfig, ns, selector, command, on_exit="fail") as kubelet:
        pod = _until(
            lambda: (
                (p := _get(plane, ns, "fail-crash")).get("status", {}).get("phase") == "Failed"
                and p
            ),
            20,
        )
        assert "exited with 3" in pod["status"]["message"]
        assert kubelet.exits["fail-crash"] == [3]
