"""The test control plane is a real one: real API server, real validation, real controllers."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.k8s.testbed import ControlPlane, control_plane

pytestmark = pytest.mark.k8s

GROUP = "testbed.asyncendpoints.io"


def wait_for(what: str, check: Any, timeout: float = 60.0, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def test_namespace_round_trip(k8s_api_client: Any, k8s_cluster: ControlPlane) -> None:
    core = client.CoreV1Api(k8s_api_client)
    name = "testbed-ns-round-trip"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    got = core.read_namespace(name)
    assert got.metadata.name == name
    assert got.status.phase == "Active"
    assert name in [ns.metadata.name for ns in core.list_namespace().items]
    version = client.VersionApi(k8s_api_client).get_code()
    assert version.major == "1"
    assert k8s_cluster.server.startswith("https://127.0.0.1:")


def test_rbac_is_enforced_and_admin_token_works(k8s_cluster: ControlPlane) -> None:
    ctx = ssl.create_default_context(cafile=str(k8s_cluster.ca_file))

    def get(headers: dict[str, str]) -> int:
        req = urllib.request.Request(f"{k8s_cluster.server}/api/v1/namespaces", headers=headers)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            err.close()
            return int(err.code)

    assert get({}) == 403  # anonymous: authenticated as system:anonymous, refused by RBAC
    assert get({"Authorization": "Bearer not-a-token"}) == 401
    assert get({"Authorization": f"Bearer {k8s_cluster.admin_token}"}) == 200


def crd_manifest() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["minReplicas", "maxReplicas"],
                                    "properties": {
                                        "minReplicas": {"type": "integer", "minimum": 0},
                                        "maxReplicas": {"type": "integer", "minimum": 1},
                                    },
                                    "x-kubernetes-validations": [
                                        {
                                            "rule": "self.minReplicas <= self.maxReplicas",
                                            "message": "minReplicas must not exceed maxReplicas",
                                            "fieldPath": ".minReplicas",
                                        }
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def widget(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}


def test_crd_schema_and_cel_rules_are_enforced_by_the_server(
    k8s_api_client: Any, k8s_namespace: str
) -> None:
    ext = client.ApiextensionsV1Api(k8s_api_client)
    try:
        ext.create_custom_resource_definition(crd_manifest())
    except ApiException as exc:
        if exc.status != 409:
            raise

    def established() -> bool:
        crd = ext.read_custom_resource_definition(f"widgets.{GROUP}")
        conditions = crd.status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    wait_for("the CRD to be Established", established, timeout=30)
    objects = client.CustomObjectsApi(k8s_api_client)

    def create(body: dict[str, Any]) -> Any:
        return wait_for(  # the new API group may take a moment to be served
            "the widgets API to be served",
            lambda: _create_or_error(objects, k8s_namespace, body),
            timeout=30,
        )

    ok = create(widget("ok", {"minReplicas": 1, "maxReplicas": 3}))
    assert isinstance(ok, dict), ok
    assert ok["spec"] == {"minReplicas": 1, "maxReplicas": 3}

    bad_type = create(widget("bad-type", {"minReplicas": "three", "maxReplicas": 3}))
    assert isinstance(bad_type, ApiException), bad_type
    assert bad_type.status == 422
    assert "spec.minReplicas" in json.loads(bad_type.body)["message"]

    below_min = create(widget("below-min", {"minReplicas": 0, "maxReplicas": 0}))
    assert isinstance(below_min, ApiException)
    assert below_min.status == 422
    assert "spec.maxReplicas" in json.loads(below_min.body)["message"]

    cel = create(widget("cel", {"minReplicas": 5, "maxReplicas": 2}))
    assert isinstance(cel, ApiException)
    assert cel.status == 422
    body = json.loads(cel.body)
    assert "spec.minReplicas" in body["message"]
    assert "minReplicas must not exceed maxReplicas" in body["message"]
    causes = body["details"]["causes"]
    assert any(c.get("field") == "spec.minReplicas" for c in causes), causes

    names = [
        item["metadata"]["name"]
        for item in objects.list_namespaced_custom_object(GROUP, "v1", k8s_namespace, "widgets")[
            "items"
        ]
    ]
    assert names == ["ok"]  # nothing refused was stored


def _create_or_error(objects: Any, namespace: str, body: dict[str, Any]) -> Any:
    try:
        return objects.create_namespaced_custom_object(GROUP, "v1", namespace, "widgets", body)
    except ApiException as exc:
        if exc.status == 404:  # not served yet: try again
            return None
        return exc


@pytest.mark.timeout(300)
def test_controller_manager_rolls_a_deployment_out(
    k8s_controller_manager: ControlPlane, k8s_api_client: Any, k8s_namespace: str
) -> None:
    apps = client.AppsV1Api(k8s_api_client)
    core = client.CoreV1Api(k8s_api_client)
    labels = {"app": "sleeper"}
    wait_for(  # the ServiceAccount controller gives every new namespace its `default`
        "the namespace's default ServiceAccount",
        lambda: any(
            sa.metadata.name == "default"
            for sa in core.list_namespaced_service_account(k8s_namespace).items
        ),
    )
    apps.create_namespaced_deployment(
        k8s_namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="sleeper"),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(
                        containers=[client.V1Container(name="main", image="busybox:1.36")]
                    ),
                ),
            ),
        ),
    )

    def owned_replica_sets() -> list[Any]:
        return [
            rs
            for rs in apps.list_namespaced_replica_set(k8s_namespace).items
            if any(
                o.kind == "Deployment" and o.name == "sleeper"
                for o in rs.metadata.owner_references or []
            )
        ]

    replica_sets = wait_for("the Deployment's ReplicaSet", owned_replica_sets)
    assert replica_sets[0].spec.replicas == 2
    rs_name = replica_sets[0].metadata.name

    def owned_pods() -> list[Any]:
        pods = core.list_namespaced_pod(k8s_namespace, label_selector="app=sleeper").items
        mine = [
            p
            for p in pods
            if any(
                o.kind == "ReplicaSet" and o.name == rs_name
                for o in p.metadata.owner_references or []
            )
        ]
        return mine if len(mine) == 2 else []

    pods = wait_for("the ReplicaSet's two pods", owned_pods)
    assert {p.status.phase for p in pods} == {"Pending"}  # no kubelet here

    # scaling the Deployment down is carried out by the controllers too
    apps.patch_namespaced_deployment_scale("sleeper", k8s_namespace, {"spec": {"replicas": 1}})
    wait_for(
        "the pods to go down to one",
        lambda: (
            len(
                [
                    p
                    for p in core.list_namespaced_pod(
                        k8s_namespace, label_selector="app=sleeper"
                    ).items
                    if p.metadata.deletion_timestamp is None
                ]
            )
            == 1
        ),
    )


TINY_CHART = {
    "Chart.yaml": 'apiVersion: v2\nname: tiny\nversion: 0.1.0\nappVersion: "1.0"\n',
    "values.yaml": "greeting: hello\n",
    "templates/configmap.yaml": (
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: {{ .Release.Name }}-greeting\n"
        "  labels:\n"
        "    app.kubernetes.io/managed-by: {{ .Release.Service }}\n"
        "data:\n"
        "  greeting: {{ .Values.greeting | quote }}\n"
    ),
}


def run_helm(helm: Path, tmp_path: Path, *args: str) -> str:
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
        "HELM_DATA_HOME": str(tmp_path / "helm-data"),
    }
    out = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert out.returncode == 0, f"helm {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.mark.timeout(300)
def test_helm_template_and_install_into_the_cluster(
    helm_bin: Path,
    k8s_cluster: ControlPlane,
    k8s_api_client: Any,
    k8s_namespace: str,
    tmp_path: Path,
) -> None:
    chart = tmp_path / "tiny"
    for rel, text in TINY_CHART.items():
        (chart / rel).parent.mkdir(parents=True, exist_ok=True)
        (chart / rel).write_text(text)

    rendered = run_helm(helm_bin, tmp_path, "template", "demo", str(chart), "--set", "greeting=hi")
    assert "kind: ConfigMap" in rendered
    assert "name: demo-greeting" in rendered
    assert 'greeting: "hi"' in rendered

    kube = ["--kubeconfig", str(k8s_cluster.kubeconfig), "--namespace", k8s_namespace]
    run_helm(helm_bin, tmp_path, "install", "demo", str(chart), *kube, "--set", "greeting=hi")
    core = client.CoreV1Api(k8s_api_client)
    cm = core.read_namespaced_config_map("demo-greeting", k8s_namespace)
    assert cm.data == {"greeting": "hi"}
    assert cm.metadata.labels["app.kubernetes.io/managed-by"] == "Helm"
    listed = run_helm(helm_bin, tmp_path, "list", *kube, "--output", "json")
    assert [r["name"] for r in json.loads(listed)] == ["demo"]

    run_helm(helm_bin, tmp_path, "uninstall", "demo", *kube)
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("demo-greeting", k8s_namespace)
    assert gone.value.status == 404


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.timeout(300)
def test_stopping_leaves_no_process_behind(k8s_binaries: Path) -> None:
    with control_plane(k8s_binaries, controller_manager=True) as plane:
        pids = plane.pids
        assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager"}
        assert all(_process_exists(pid) for pid in pids.values())
        status, body = plane.request("GET", "/api/v1/namespaces/default")
        assert status == 200, body
        workdir = plane.workdir
    leftovers = {n: p for n, p in pids.items() if _process_exists(p) or _group_exists(p)}
    assert leftovers == {}
    assert not workdir.exists()
