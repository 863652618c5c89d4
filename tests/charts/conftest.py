"""Fixtures of the chart tests.

The control plane and helm come from the test bed's fixtures in ``tests/k8s/conftest.py``,
re-exported here (a conftest's fixtures are seen only below its folder). The binaries are
found, or built on a cold cache, once after collection, outside any test's timeout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.charts.chart import Helm
from tests.k8s.conftest import (  # noqa: F401  (fixtures and the build-once hook)
    helm_bin,
    k8s_api_client,
    k8s_binaries,
    k8s_cluster,
    k8s_controller_manager,
    k8s_namespace,
    pytest_collection_modifyitems,
)
from tests.k8s.testbed import ControlPlane


@pytest.fixture(scope="session")
def helm(helm_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Helm:  # noqa: F811
    """helm with no cluster (``template``, ``lint``, client-side dry runs)."""
    return Helm(helm_bin, tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def cluster_helm(helm: Helm, k8s_cluster: ControlPlane) -> Helm:  # noqa: F811
    """helm talking to the test control plane as its admin."""
    return helm.with_kubeconfig(k8s_cluster.kubeconfig)
