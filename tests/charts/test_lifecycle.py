"""helm install, upgrade (a changed CRD is updated) and uninstall (only the CRD and the pools
stay, on purpose) against the real control plane."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.charts.chart import CHART, CRD_NAME, Helm
from tests.charts.cluster import ok, reset_crd, wait_until
from tests.charts.kube import Kube
from tests.k8s.testbed import ControlPlane

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

NAMESPACED = [
    ("apps/v1", "deployments"),
    ("v1", "services"),
    ("v1", "secrets"),
    ("v1", "serviceaccounts"),
    ("rbac.authorization.k8s.io/v1", "roles"),
    ("rbac.authorization.k8s.io/v1", "rolebindings"),
    ("v1", "pods"),
]
CLUSTER = [
    ("rbac.authorization.k8s.io/v1", "clusterroles"),
    ("rbac.authorization.k8s.io/v1", "clusterrolebindings"),
]


def _prefix(api_version: str) -> str:
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


def release_objects(kube: Kube, namespace: str, release: str = "ae") -> list[str]:
    """Everything labelled with the release, in its namespace and cluster-wide."""
    selector = [("labelSelector", f"app.kubernetes.io/instance={release}")]
    found = []
    for api_version, plural in NAMESPACED:
        answer = kube.request(
            "GET", f"{_prefix(api_version)}/namespaces/{namespace}/{plural}", query=selector
        )
        found += [
            f"{plural}/{o['metadata']['name']}"
            for o in ok(answer)["items"]
            if not o["metadata"].get("deletionTimestamp")
        ]
    for api_version, plural in CLUSTER:
        answer = kube.request("GET", f"{_prefix(api_version)}/{plural}", query=selector)
        found += [f"{plural}/{o['metadata']['name']}" for o in ok(answer)["items"]]
    return sorted(found)


def crd_columns(kube: Kube) -> list[str]:
    crd = ok(kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", CRD_NAME))
    return [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]


def chart_with_an_extra_column(tmp_path: Path) -> Path:
    """A copy of the chart whose CRD has one more printer column (a new chart version)."""
    copy = tmp_path / "asyncendpoints"
    shutil.copytree(CHART, copy)
    template = copy / "templates" / "crds" / "asyncworkerpools.asyncendpoints.io.yaml"
    text = template.read_text()
    anchor = "      additionalPrinterColumns:\n"
    assert anchor in text
    column = (
        "        - name: Lease\n"
        "          type: integer\n"
        "          priority: 1\n"
        "          jsonPath: .spec.leaseSeconds\n"
    )
    template.write_text(text.replace(anchor, anchor + column, 1))
    chart = copy / "Chart.yaml"
    chart.write_text(chart.read_text().replace("\nversion: 0.1.0\n", "\nversion: 0.1.1\n"))
    return copy


@pytest.mark.timeout(300)
def test_install_upgrade_uninstall(
    k8s_cluster: ControlPlane, cluster_helm: Helm, tmp_path: Path
) -> None:
    kube = Kube(k8s_cluster.api_client())
    reset_crd(kube, CRD_NAME)
    ns = f"ae-life-{uuid.uuid4().hex[:6]}"
    kube.ensure_namespace(ns)
    helm = cluster_helm

    try:
        _install_upgrade_uninstall(kube, helm, ns, tmp_path)
    finally:
        helm.run("uninstall", "ae", "-n", ns, check=False)


def _install_upgrade_uninstall(kube: Kube, helm: Helm, ns: str, tmp_path: Path) -> None:
    # install, with the example pool (a post-install hook: made once the CRD exists)
    helm.run("install", "ae", str(CHART), "-n", ns, "--set", "pool.enabled=true")
    # (pods only where kube-controller-manager runs in this session: no kubelet runs them)
    installed = [o for o in release_objects(kube, ns) if not o.startswith("pods/")]
    assert installed == sorted(
        [
            "clusterrolebindings/ae-asyncendpoints-controller",
            "clusterroles/ae-asyncendpoints-controller",
            "deployments/ae-asyncendpoints-api",
            "deployments/ae-asyncendpoints-controller",
            "rolebindings/ae-asyncendpoints-controller",
            "roles/ae-asyncendpoints-controller",
            "secrets/asyncendpoints-redis",
            "serviceaccounts/ae-asyncendpoints-api",
            "serviceaccounts/ae-asyncendpoints-controller",
            "services/ae-asyncendpoints-api",
        ]
    ), installed
    pool = ok(kube.get("asyncendpoints.io/v1alpha1", "AsyncWorkerPool", "ae-asyncendpoints", ns))
    assert pool["spec"]["redis"]["secretRef"] == {"name": "asyncendpoints-redis", "key": "url"}
    assert "Lease" not in crd_columns(kube)

    # upgrade to a chart whose CRD changed: the CRD is updated (templates/, not crds/)
    changed = chart_with_an_extra_column(tmp_path)
    helm.run(
        "upgrade",
        "ae",
        str(changed),
        "-n",
        ns,
        "--set",
        "pool.enabled=true",
        "--set",
        "api.replicaCount=3",
        "--set",
        "pool.maxReplicas=7",
    )
    assert "Lease" in crd_columns(kube)
    api = ok(kube.get("apps/v1", "Deployment", "ae-asyncendpoints-api", ns))
    assert api["spec"]["replicas"] == 3
    assert api["metadata"]["labels"]["helm.sh/chart"] == "asyncendpoints-0.1.1"
    history = json.loads(helm.run("history", "ae", "-n", ns, "-o", "json").stdout)
    assert [h["status"] for h in history] == ["superseded", "deployed"]
    # the pool (a hook) was updated in place: not deleted and made again (which would take
    # its worker Deployment down with it)
    again = ok(kube.get("asyncendpoints.io/v1alpha1", "AsyncWorkerPool", "ae-asyncendpoints", ns))
    assert again["metadata"]["uid"] == pool["metadata"]["uid"]
    assert (pool["spec"]["maxReplicas"], again["spec"]["maxReplicas"]) == (10, 7)

    # uninstall: nothing of the release stays but the CRD and the pools (kept on purpose)
    helm.run("uninstall", "ae", "-n", ns)
    wait_until("the release's objects to go", lambda: release_objects(kube, ns) == [], 60)
    assert "Lease" in crd_columns(kube)
    kept = ok(kube.get("asyncendpoints.io/v1alpha1", "AsyncWorkerPool", "ae-asyncendpoints", ns))
    assert kept["metadata"]["uid"] == pool["metadata"]["uid"]
    releases = json.loads(helm.run("list", "-n", ns, "-o", "json").stdout)
    assert releases == []

    # and installing again adopts the kept CRD (same release) and reverts it to this chart's
    helm.run("install", "ae", str(CHART), "-n", ns)
    assert "Lease" not in crd_columns(kube)
    assert "deployments/ae-asyncendpoints-api" in release_objects(kube, ns)


def test_uninstall_without_keep_removes_the_crd(
    k8s_cluster: ControlPlane, cluster_helm: Helm
) -> None:
    kube = Kube(k8s_cluster.api_client())
    reset_crd(kube, CRD_NAME)
    ns = f"ae-nokeep-{uuid.uuid4().hex[:6]}"
    kube.ensure_namespace(ns)
    cluster_helm.run("install", "nokeep", str(CHART), "-n", ns, "--set", "crds.keep=false")
    assert kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", CRD_NAME).ok
    cluster_helm.run("uninstall", "nokeep", "-n", ns, "--wait")

    def gone() -> Any:
        crd = kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", CRD_NAME)
        return crd.status == 404

    wait_until("the CRD to go with the release", gone, 60)
    wait_until("its objects to go", lambda: release_objects(kube, ns, "nokeep") == [], 60)
