"""Every object the chart renders is accepted by a real kube-apiserver (server-side dry run),
in a namespace that enforces the "restricted" Pod Security Standard.

The PodSecurity admission plugin is on by default in kube-apiserver; a namespace label turns
enforcement on. It judges Pods (a Deployment only draws warnings), so each pod template is
also dry-run as a Pod, and a weakened Pod must be refused (the check can fail).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.charts.chart import CRD_NAME, VALUES_ALL, Helm, find, pod_specs
from tests.charts.kube import Kube, pod_from_template

pytestmark = pytest.mark.k8s

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/warn-version": "latest",
}
VALUE_SETS = {"default": [], "all-options": [VALUES_ALL]}


@pytest.fixture(scope="module")
def kube(k8s_api_client: Any) -> Kube:
    return Kube(k8s_api_client)


@pytest.fixture(scope="module")
def crd(kube: Kube, helm: Helm) -> dict[str, Any]:
    """The chart's CRD, created for real (a pool can only be dry-run when its kind exists)."""
    obj = find(helm.template(), "CustomResourceDefinition")
    answer = kube.apply(obj)
    assert answer.ok, f"the CRD was refused: {answer}"
    return kube.wait_crd_established(CRD_NAME)


@pytest.fixture
def restricted_namespace(kube: Kube) -> Iterator[str]:
    name = f"chart-{uuid.uuid4().hex[:8]}"
    kube.ensure_namespace(name, RESTRICTED)
    # what kube-controller-manager would make in a new namespace (pods need their ServiceAccount)
    answer = kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": name},
        }
    )
    assert answer.ok, str(answer)
    yield name
    kube.delete("v1", "Namespace", name)


def _prepare_all_options(kube: Kube) -> None:
    """What values-all.yaml refers to: the watched namespace and a PriorityClass."""
    kube.ensure_namespace("ae-watched", RESTRICTED)
    answer = kube.apply(
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": "ae-test"},
            "value": 1000,
        }
    )
    assert answer.ok, str(answer)


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_server_side_dry_run_accepts_every_object(
    kube: Kube, helm: Helm, crd: dict[str, Any], restricted_namespace: str, values: str
) -> None:
    if values == "all-options":
        _prepare_all_options(kube)
    objects = helm.template(namespace=restricted_namespace, values=VALUE_SETS[values])
    assert len(objects) >= 10
    refused, warned = [], []
    for obj in objects:
        answer = kube.apply(obj, dry_run=True)
        what = f"{obj['kind']}/{obj['metadata']['name']}"
        if not answer.ok:
            refused.append(f"{what}: {answer}")
        pod_security = [w for w in answer.warnings if "PodSecurity" in w]
        if pod_security:
            warned.append(f"{what}: {pod_security}")
        if answer.ok:
            # a dry run answers with the object as it would be stored: defaults applied, ours kept
            assert answer.body["metadata"]["name"] == obj["metadata"]["name"]
            assert answer.body["metadata"]["labels"]["app.kubernetes.io/instance"] == "ae"
    assert not refused, "the API server refused:\n" + "\n".join(refused)
    assert not warned, "PodSecurity warnings:\n" + "\n".join(warned)
    # a dry run stores nothing
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert (
        kube.get(
            "apps/v1", "Deployment", deployment["metadata"]["name"], restricted_namespace
        ).status
        == 404
    )


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_every_pod_is_admitted_under_restricted_enforcement(
    kube: Kube, helm: Helm, restricted_namespace: str, values: str
) -> None:
    if values == "all-options":
        _prepare_all_options(kube)
    objects = helm.template(namespace=restricted_namespace, values=VALUE_SETS[values])
    # the ServiceAccounts must exist for a Pod to be admitted: make them for real
    for sa in (o for o in objects if o["kind"] == "ServiceAccount"):
        assert kube.apply(sa).ok
    pods = [
        pod_from_template(what, meta, spec, restricted_namespace)
        for what, meta, spec in pod_specs(objects)
    ]
    assert len(pods) == 3
    for pod in pods:
        answer = kube.create(pod, dry_run=True)
        assert answer.ok, f"{pod['metadata']['name']} refused: {answer}"
        assert not [w for w in answer.warnings if "PodSecurity" in w], answer.warnings


def test_a_pod_without_the_security_settings_is_refused(
    kube: Kube, helm: Helm, restricted_namespace: str
) -> None:
    """The enforcement the two tests above rely on is really on."""
    objects = helm.template(namespace=restricted_namespace)
    for sa in (o for o in objects if o["kind"] == "ServiceAccount"):
        assert kube.apply(sa).ok
    what, meta, spec = next(iter(pod_specs(objects)))
    spec = {
        **spec,
        "securityContext": {},
        "containers": [{**c, "securityContext": {}} for c in spec["containers"]],
    }
    answer = kube.create(pod_from_template(what, meta, spec, restricted_namespace), dry_run=True)
    assert answer.status == 403, str(answer)
    assert "violates PodSecurity" in str(answer.body.get("message")), str(answer)
    # and a Deployment with such a template is admitted with a warning (which we would see)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    weakened = {
        **deployment,
        "spec": {
            **deployment["spec"],
            "template": {"metadata": deployment["spec"]["template"]["metadata"], "spec": spec},
        },
    }
    answer = kube.apply(weakened, dry_run=True)
    assert answer.ok, str(answer)
    assert any("would violate PodSecurity" in w for w in answer.warnings), answer.warnings


def test_crd_is_served_with_its_printer_columns(kube: Kube, crd: dict[str, Any]) -> None:
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["names"]["shortNames"] == ["awp"]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert {"Desired", "Ready", "Queued"} <= set(columns)
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_example_pool_and_an_invalid_pool(
    kube: Kube, crd: dict[str, Any], restricted_namespace: str
) -> None:
    """The CRD's schema and CEL rules run on the dry run: min > max is refused."""
    import yaml

    from tests.charts.chart import EXAMPLE_POOL

    pool = yaml.safe_load(EXAMPLE_POOL.read_text())
    pool["metadata"]["namespace"] = restricted_namespace
    answer = kube.apply(pool, dry_run=True)
    assert answer.ok, str(answer)
    bad = {**pool, "spec": {**pool["spec"], "minReplicas": 5, "maxReplicas": 2}}
    answer = kube.apply(bad, dry_run=True)
    assert answer.status == 422, str(answer)
    assert "minReplicas" in str(answer.body.get("message"))
