"""Session fixtures for a real Kubernetes control plane (the machinery is in testbed.py).

* ``k8s_binaries`` -> Path: the folder with etcd, kube-apiserver, kube-controller-manager
  (and helm), from ``scripts/k8s-testbed`` or ``KUBEBUILDER_ASSETS``. A cold build runs once,
  right after collection (outside any test's timeout); when the binaries cannot be had every
  test that needs them FAILS with the reason, it is never skipped.
* ``k8s_cluster`` -> :class:`ControlPlane`: etcd + kube-apiserver for the session
  (``.kubeconfig``, ``.server``, ``.ca_file``, ``.admin_cert_file``, ``.admin_key_file``,
  ``.admin_token``, ``.request()``, ``.api_client()``).
* ``k8s_controller_manager`` -> the same :class:`ControlPlane`, with kube-controller-manager
  running too (opt-in: Deployments roll out into ReplicaSets and Pending Pods).
* ``helm_bin`` -> Path of the helm binary.
* ``k8s_api_client`` -> an admin ``kubernetes.client.ApiClient`` for the session.
* ``k8s_namespace`` -> a fresh namespace name per test (deleted afterwards).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.testbed import (
    ControlPlane,
    K8sTestbedError,
    acquire_shared_control_plane,
    find_binaries,
    find_helm,
    new_api_client,
    release_shared_control_plane,
)

_BINARIES = pytest.StashKey[Path | K8sTestbedError]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "k8s: needs the real Kubernetes control plane of scripts/k8s-testbed"
    )


def _needs_binaries(item: pytest.Item) -> bool:
    return item.get_closest_marker("k8s") is not None or "k8s_binaries" in getattr(
        item, "fixturenames", ()
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Build (or find) the binaries once, before any test runs and outside its timeout."""
    if config.option.collectonly or _BINARIES in config.stash:
        return
    if not any(_needs_binaries(item) for item in items):
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")

    def show(line: str) -> None:
        if reporter is not None and "] cached:" not in line:
            reporter.write_line(line)

    try:
        config.stash[_BINARIES] = find_binaries(on_line=show)
    except K8sTestbedError as exc:
        config.stash[_BINARIES] = exc


@pytest.fixture(scope="session")
def k8s_binaries(pytestconfig: pytest.Config) -> Path:
    result = pytestconfig.stash.get(_BINARIES, None)
    if result is None:
        try:
            result = find_binaries()
        except K8sTestbedError as exc:
            result = exc
        pytestconfig.stash[_BINARIES] = result
    if isinstance(result, K8sTestbedError):
        pytest.fail(f"no Kubernetes control-plane binaries:\n{result}", pytrace=False)
    return result


@pytest.fixture(scope="session")
def helm_bin(k8s_binaries: Path) -> Path:
    try:
        return find_helm(k8s_binaries)
    except K8sTestbedError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def k8s_cluster(
    k8s_binaries: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver; one per test process even when several conftests re-export this."""
    try:
        plane = acquire_shared_control_plane(
            k8s_binaries, lambda: tmp_path_factory.mktemp("k8s-control-plane")
        )
    except K8sTestbedError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield plane
    finally:
        release_shared_control_plane(plane)


@pytest.fixture(scope="session")
def k8s_controller_manager(k8s_cluster: ControlPlane) -> ControlPlane:
    """The session's control plane with kube-controller-manager running (stopped with it)."""
    try:
        k8s_cluster.start_controller_manager()
    except K8sTestbedError as exc:
        pytest.fail(str(exc), pytrace=False)
    return k8s_cluster


@pytest.fixture(scope="session")
def k8s_api_client(k8s_cluster: ControlPlane) -> Iterator[Any]:
    client = new_api_client(k8s_cluster.kubeconfig)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def k8s_namespace(k8s_cluster: ControlPlane) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    status, body = k8s_cluster.request(
        "POST",
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )
    if status != 201:
        pytest.fail(f"could not create namespace {name}: {status} {body}", pytrace=False)
    yield name
    # without kube-controller-manager the namespace stays Terminating, which is harmless
    k8s_cluster.request("DELETE", f"/api/v1/namespaces/{name}")
