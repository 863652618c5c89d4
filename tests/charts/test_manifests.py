"""manifests/: the plain-YAML installation rendered from the chart, kept in sync with it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.chart import (
    CRD_NAME,
    REPO,
    Helm,
    parse_documents,
    pod_specs,
    restricted_violations,
)
from tests.charts.kube import Kube

MANIFESTS = REPO / "manifests"
SCRIPT = REPO / "scripts" / "render-manifests"


def kustomize_resources() -> list[Path]:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    return [MANIFESTS / r for r in kustomization["resources"]]


def installed_objects() -> list[dict[str, Any]]:
    objects = []
    for path in kustomize_resources():
        assert path.is_file(), f"the kustomization lists a missing file: {path}"
        objects += parse_documents(path.read_text())
    return objects


def test_render_manifests_is_in_sync(helm: Helm) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HELM": str(helm.binary)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_kustomization_installs_the_whole_system() -> None:
    objects = installed_objects()
    found = sorted((o["kind"], o["metadata"]["name"]) for o in objects)
    assert found == sorted(
        [
            ("CustomResourceDefinition", CRD_NAME),
            ("Namespace", "asyncendpoints"),
            ("Secret", "asyncendpoints-redis"),
            ("ServiceAccount", "asyncendpoints-controller"),
            ("ClusterRole", "asyncendpoints-controller"),
            ("ClusterRoleBinding", "asyncendpoints-controller"),
            ("Role", "asyncendpoints-controller"),
            ("RoleBinding", "asyncendpoints-controller"),
            ("Deployment", "asyncendpoints-controller"),
            ("ServiceAccount", "asyncendpoints-api"),
            ("Service", "asyncendpoints-api"),
            ("Deployment", "asyncendpoints-api"),
        ]
    )
    cluster_scoped = {"CustomResourceDefinition", "Namespace", "ClusterRole", "ClusterRoleBinding"}
    for obj in objects:
        what = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"]["namespace"] == "asyncendpoints", what
        labels = obj["metadata"].get("labels") or {}
        assert (
            "helm.sh/chart" not in labels and labels.get("app.kubernetes.io/managed-by") != "Helm"
        ), what
    problems = [
        p for what, _, spec in pod_specs(objects) for p in restricted_violations(what, spec)
    ]
    assert not problems, problems
    secret = next(o for o in objects if o["kind"] == "Secret")
    assert set(secret["stringData"]) == {"url"}
    pool = yaml.safe_load((MANIFESTS / "examples" / "pool.yaml").read_text())
    assert pool["spec"]["redis"]["secretRef"] == {"name": "asyncendpoints-redis", "key": "url"}
    namespace = next(o for o in objects if o["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_kubectl_kustomize_builds_the_same_objects() -> None:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl (with kustomize) is missing: install the Debian package kubectl")
    proc = subprocess.run(
        ["kubectl", "kustomize", str(MANIFESTS)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    built = parse_documents(proc.stdout)
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, built)) == sorted(map(key, installed_objects()))


@pytest.mark.k8s
def test_the_manifests_are_accepted_by_the_api_server(k8s_api_client: Any) -> None:
    """Namespace and CRD for real (as `kubectl apply -k` orders them), the rest as a dry run."""
    kube = Kube(k8s_api_client)
    objects = installed_objects()
    first = [o for o in objects if o["kind"] in ("Namespace", "CustomResourceDefinition")]
    for obj in first:
        answer = kube.apply(obj)
        assert answer.ok, f"{obj['kind']}: {answer}"
    kube.wait_crd_established(CRD_NAME)
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": "asyncendpoints"},
        }
    )
    refused = []
    for obj in objects:
        if obj in first:
            continue
        answer = kube.apply(obj, dry_run=True)
        if not answer.ok or any("PodSecurity" in w for w in answer.warnings):
            refused.append(f"{obj['kind']}/{obj['metadata']['name']}: {answer}")
    assert not refused, "\n".join(refused)
