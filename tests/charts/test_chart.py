"""The Helm chart, rendered by the real helm: lint, labels, pod security, secrets, RBAC, schema.

No cluster here (see test_dry_run.py, test_lifecycle.py and test_end_to_end.py for those).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.chart import (
    CHART,
    CRD_MANIFEST,
    CRD_NAME,
    EXAMPLE_POOL,
    REPO,
    VALUES_ALL,
    Helm,
    HelmError,
    find,
    kinds,
    pod_specs,
    restricted_violations,
)

VALUE_SETS = {"default": [], "all-options": [VALUES_ALL]}
CHART_META = yaml.safe_load((CHART / "Chart.yaml").read_text())


@pytest.fixture(params=sorted(VALUE_SETS), scope="module")
def rendered(request: pytest.FixtureRequest, helm: Helm) -> list[dict[str, Any]]:
    return helm.template(values=VALUE_SETS[request.param])


# --- lint and metadata ---------------------------------------------------------------------------
@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_lint_strict(helm: Helm, values: str) -> None:
    args = ["lint", "--strict", str(CHART)]
    for path in VALUE_SETS[values]:
        args += ["--values", str(path)]
    out = helm.run(*args)
    assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout, out.stdout
    assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout, out.stdout


def test_chart_metadata() -> None:
    assert CHART_META["apiVersion"] == "v2"
    assert CHART_META["name"] == "asyncendpoints"
    assert CHART_META["appVersion"] == "0.1.0"
    pyproject = (REPO / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', pyproject, re.M)
    assert version and version.group(1) == CHART_META["appVersion"], "appVersion != package version"


def test_templates_are_laid_out_by_component() -> None:
    components = {p.name for p in (CHART / "templates").iterdir() if p.is_dir()}
    assert {"controller", "api", "crds", "pool", "tests"} <= components
    for path in (CHART / "templates").rglob("*.yaml"):
        rel = path.relative_to(CHART / "templates")
        if len(rel.parts) == 1:
            assert rel.name == "secrets.yaml", f"{rel}: templates go in templates/<component>/"
    assert (CHART / "templates" / "_helpers.tpl").is_file()
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    for name in (
        "asyncendpoints.fullname",
        "asyncendpoints.labels",
        "asyncendpoints.selectorLabels",
    ):
        assert f'define "{name}"' in helpers


# --- labels and selectors ------------------------------------------------------------------------
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
    "helm.sh/chart",
)
SELECTOR_KEYS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
}


def test_every_object_has_the_standard_labels(rendered: list[dict[str, Any]]) -> None:
    for obj in rendered:
        labels = obj["metadata"].get("labels") or {}
        missing = [k for k in STANDARD_LABELS if k not in labels]
        assert not missing, f"{obj['kind']}/{obj['metadata']['name']} lacks {missing}"
        assert labels["helm.sh/chart"] == f"asyncendpoints-{CHART_META['version']}"
        assert labels["app.kubernetes.io/instance"] == "ae"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"


def test_common_labels_and_annotations_reach_every_object(helm: Helm) -> None:
    objects = helm.template(values=[VALUES_ALL])
    for obj in objects:
        what = f"{obj['kind']}/{obj['metadata']['name']}"
        assert obj["metadata"]["labels"].get("team") == "platform", what
        if obj["kind"] not in ("CustomResourceDefinition", "Pod"):
            assert (obj["metadata"].get("annotations") or {}).get(
                "example.com/owner"
            ) == "platform", what


def test_selectors_use_name_instance_component_only_and_match_their_pods(
    rendered: list[dict[str, Any]],
) -> None:
    workloads = [o for o in rendered if o["kind"] == "Deployment"]
    assert {o["metadata"]["labels"]["app.kubernetes.io/component"] for o in workloads} == {
        "api",
        "controller",
    }
    for obj in workloads:
        selector = obj["spec"]["selector"]["matchLabels"]
        assert set(selector) == SELECTOR_KEYS, selector
        pod_labels = obj["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items()
    api_pods = find(
        rendered,
        "Deployment",
        next(
            o["metadata"]["name"]
            for o in workloads
            if o["metadata"]["labels"]["app.kubernetes.io/component"] == "api"
        ),
    )["spec"]["template"]["metadata"]["labels"]
    service = find(rendered, "Service")
    assert set(service["spec"]["selector"]) == SELECTOR_KEYS
    assert service["spec"]["selector"].items() <= api_pods.items()
    controller = next(
        o
        for o in workloads
        if o["metadata"]["labels"]["app.kubernetes.io/component"] == "controller"
    )
    # the Service must not select the controller
    assert (
        not service["spec"]["selector"].items()
        <= controller["spec"]["template"]["metadata"]["labels"].items()
    )


def test_selector_labels_do_not_change_with_the_version(helm: Helm) -> None:
    """An upgrade to another image tag keeps every selector (they are immutable)."""
    before = helm.template()
    after = helm.template(sets=["image.tag=9.9.9"])
    for old, new in zip(
        [o for o in before if o["kind"] == "Deployment"],
        [o for o in after if o["kind"] == "Deployment"],
        strict=True,
    ):
        assert old["spec"]["selector"] == new["spec"]["selector"]
        assert (
            old["metadata"]["labels"]["app.kubernetes.io/version"]
            != new["metadata"]["labels"]["app.kubernetes.io/version"]
        )


# --- pod security --------------------------------------------------------------------------------
def test_every_pod_passes_the_restricted_standard(rendered: list[dict[str, Any]]) -> None:
    specs = list(pod_specs(rendered))
    assert len(specs) == 3, [what for what, _, _ in specs]  # api, controller, helm test
    problems = [p for what, _, spec in specs for p in restricted_violations(what, spec)]
    assert not problems, "\n".join(problems)


def test_the_security_check_catches_a_weakened_pod(helm: Helm) -> None:
    objects = helm.template(
        sets=[
            "containerSecurityContext.readOnlyRootFilesystem=false",
            "podSecurityContext.runAsUser=0",
        ]
    )
    problems = [
        p for what, _, spec in pod_specs(objects) for p in restricted_violations(what, spec)
    ]
    assert any("readOnlyRootFilesystem" in p for p in problems)
    assert any("runAsUser is 0" in p for p in problems)


def test_only_the_controller_gets_a_service_account_token(rendered: list[dict[str, Any]]) -> None:
    for what, _, spec in pod_specs(rendered):
        expected = what.startswith("Deployment/") and what.endswith("-controller")
        assert spec.get("automountServiceAccountToken") is expected, what
    for sa in (o for o in rendered if o["kind"] == "ServiceAccount"):
        assert sa.get("automountServiceAccountToken") is False


# --- image ---------------------------------------------------------------------------------------
def _images(objects: list[dict[str, Any]]) -> dict[str, str]:
    return {
        f"{what}/{c['name']}": c["image"]
        for what, _, spec in pod_specs(objects)
        for c in spec["containers"]
    }


def test_image_tag_defaults_to_app_version(helm: Helm) -> None:
    images = _images(helm.template())
    ours = {k: v for k, v in images.items() if "readyz" not in k}
    assert set(ours.values()) == {f"asyncendpoints/asyncendpoints:{CHART_META['appVersion']}"}


def test_image_registry_tag_and_digest(helm: Helm) -> None:
    images = _images(helm.template(sets=["image.tag=1.2.3", "image.registry=r.example"]))
    assert "r.example/asyncendpoints/asyncendpoints:1.2.3" in images.values()
    digest = "sha256:" + "a" * 64
    images = _images(helm.template(sets=[f"image.digest={digest}"]))
    assert f"asyncendpoints/asyncendpoints@{digest}" in images.values()


# --- secrets -------------------------------------------------------------------------------------
def _env(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for c in spec["containers"] for e in c.get("env") or []]


def test_redis_url_and_tokens_are_files_never_environment(helm: Helm) -> None:
    url = "redis://:s3cret-pass@redis.example:6379/2"
    objects = helm.template(sets=[f"redis.url={url}", "auth.tokens={tok-1,tok-2}"])
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    assert set(secrets) == {"asyncendpoints-redis", "ae-asyncendpoints-auth"}
    assert base64.b64decode(secrets["asyncendpoints-redis"]["data"]["url"]).decode() == url
    tokens = base64.b64decode(secrets["ae-asyncendpoints-auth"]["data"]["tokens"]).decode()
    assert tokens.split() == ["tok-1", "tok-2"]
    api = find(objects, "Deployment", "ae-asyncendpoints-api")["spec"]["template"]["spec"]
    env = {e["name"]: e for e in _env(api)}
    assert env["ASYNCENDPOINTS_REDIS_URL_FILE"]["value"] == "/etc/asyncendpoints/redis/url"
    assert env["ASYNCENDPOINTS_AUTH_TOKENS_FILE"]["value"] == "/etc/asyncendpoints/auth/tokens"
    assert "ASYNCENDPOINTS_REDIS_URL" not in env and "ASYNCENDPOINTS_AUTH_TOKENS" not in env
    mounts = {m["mountPath"]: m for m in api["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in api["volumes"]}
    for path, secret in (
        ("/etc/asyncendpoints/redis", "asyncendpoints-redis"),
        ("/etc/asyncendpoints/auth", "ae-asyncendpoints-auth"),
    ):
        assert mounts[path]["readOnly"] is True
        assert volumes[mounts[path]["name"]]["secret"]["secretName"] == secret
    for what, _, spec in pod_specs(objects):
        for e in _env(spec):
            assert "secretKeyRef" not in (e.get("valueFrom") or {}), f"{what}: {e['name']}"
            assert "s3cret" not in str(e.get("value", "")) and "tok-1" not in str(
                e.get("value", "")
            )
    # a changed secret rolls the API pods
    again = helm.template(sets=["redis.url=redis://other:6379/0", "auth.tokens={tok-1,tok-2}"])

    def checksum(objs: list[dict[str, Any]]) -> str:
        dep = find(objs, "Deployment", "ae-asyncendpoints-api")
        return str(dep["spec"]["template"]["metadata"]["annotations"]["checksum/redis"])

    assert checksum(objects) != checksum(again)


def test_existing_secrets_are_referenced_not_made(helm: Helm) -> None:
    objects = helm.template(values=[VALUES_ALL])
    secrets = [o["metadata"]["name"] for o in objects if o["kind"] == "Secret"]
    assert secrets == ["ae-ae-system-auth"]  # the tokens are inline in values-all
    api = find(objects, "Deployment", "ae-ae-system-api")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in api["volumes"]}
    assert volumes["redis-url"]["secret"]["secretName"] == "my-redis"
    assert volumes["redis-url"]["secret"]["items"] == [{"key": "redis-url", "path": "redis-url"}]
    objects = helm.template(sets=["redis.existingSecret=r", "auth.existingSecret=a"])
    assert [o for o in objects if o["kind"] == "Secret"] == []
    api = find(objects, "Deployment", "ae-asyncendpoints-api")["spec"]["template"]["spec"]
    assert {v["name"]: v["secret"]["secretName"] for v in api["volumes"] if "secret" in v} == {
        "redis-url": "r",
        "auth-tokens": "a",
    }


def test_no_auth_secret_without_tokens(helm: Helm) -> None:
    objects = helm.template()
    api = find(objects, "Deployment", "ae-asyncendpoints-api")["spec"]["template"]["spec"]
    assert "ASYNCENDPOINTS_AUTH_TOKENS_FILE" not in {e["name"] for e in _env(api)}
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "Secret"] == [
        "asyncendpoints-redis"
    ]


def test_the_controller_mounts_no_secret(rendered: list[dict[str, Any]]) -> None:
    """It reads the Redis URL of each pool from the Secret the pool names, through the API."""
    controller = next(
        o
        for o in rendered
        if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-controller")
    )["spec"]["template"]["spec"]
    assert not [v for v in controller["volumes"] if "secret" in v]


def test_example_pool_uses_the_charts_redis_secret(helm: Helm) -> None:
    pool = yaml.safe_load(EXAMPLE_POOL.read_text())
    secret = find(helm.template(), "Secret")
    ref = pool["spec"]["redis"]["secretRef"]
    assert ref["name"] == secret["metadata"]["name"]
    assert ref["key"] in secret["data"]
    assert pool["spec"]["redis"].get("keyPrefix", "ae") == "ae"  # the chart's default prefix


# --- controller ----------------------------------------------------------------------------------
def _controller(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(
        o
        for o in objects
        if o["kind"] == "Deployment"
        and o["metadata"]["labels"]["app.kubernetes.io/component"] == "controller"
    )


def test_controller_watches_every_namespace_by_default(helm: Helm) -> None:
    objects = helm.template()
    container = _controller(objects)["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "controller"
    assert "ASYNCENDPOINTS_CONTROLLER_NAMESPACE" not in {e["name"] for e in container["env"]}
    role = find(objects, "ClusterRole")
    assert any("asyncworkerpools" in r["resources"] for r in role["rules"])
    binding = find(objects, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": "ae-asyncendpoints-controller",
            "namespace": "asyncendpoints",
        }
    ]


def test_controller_watch_namespace_gets_a_role_there_and_no_cluster_role(helm: Helm) -> None:
    objects = helm.template(sets=["controller.watchNamespace=apps"])
    container = _controller(objects)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ASYNCENDPOINTS_CONTROLLER_NAMESPACE"] == "apps"
    assert "ClusterRole" not in kinds(objects) and "ClusterRoleBinding" not in kinds(objects)
    roles = {o["metadata"]["namespace"]: o for o in objects if o["kind"] == "Role"}
    assert set(roles) == {"asyncendpoints", "apps"}
    assert any("asyncworkerpools" in r["resources"] for r in roles["apps"]["rules"])
    assert not any("asyncworkerpools" in r["resources"] for r in roles["asyncendpoints"]["rules"])
    bindings = {o["metadata"]["namespace"]: o for o in objects if o["kind"] == "RoleBinding"}
    assert set(bindings) == {"asyncendpoints", "apps"}
    for binding in bindings.values():
        assert binding["subjects"][0]["namespace"] == "asyncendpoints"


def test_controller_leader_election_flags(helm: Helm) -> None:
    args = _controller(helm.template())["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--lease-name=ae-asyncendpoints-controller" in args
    objects = helm.template(sets=["controller.leaderElection.enabled=false"])
    args = _controller(objects)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--no-leader-election" in args
    assert "Role" not in kinds(objects)  # no Lease, no Role


# The controller's rules, call by call (controller/*.py, and kopf as controller/service.py
# runs it: standalone, scanning off). test_end_to_end.py runs the controller with exactly
# these rights; here they are pinned so that a widening is a visible change.
EXPECTED_WORKLOAD_RULES = {
    ("asyncendpoints.io", "asyncworkerpools"): {"list", "watch", "patch"},
    ("asyncendpoints.io", "asyncworkerpools/status"): {"patch"},
    ("asyncendpoints.io", "asyncworkerpools/finalizers"): {"update"},
    ("apps", "deployments"): {"get", "create", "update", "patch"},
    ("", "pods"): {"list", "watch", "patch"},
    ("", "events"): {"create"},
    ("", "secrets"): {"get"},
}


def _rules(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def test_rbac_is_least_privilege(helm: Helm) -> None:
    objects = helm.template()
    cluster = find(objects, "ClusterRole")
    assert _rules(cluster) == EXPECTED_WORKLOAD_RULES
    for role in (o for o in objects if o["kind"] in ("Role", "ClusterRole")):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
            assert "*" not in rule["apiGroups"], rule
            assert not {"delete", "deletecollection", "escalate", "bind", "impersonate"} & set(
                rule["verbs"]
            ), rule
    secrets = next(r for r in cluster["rules"] if "secrets" in r["resources"])
    assert secrets["resourceNames"] == ["asyncendpoints-redis"]
    lease = find(objects, "Role")
    assert _rules(lease) == {("coordination.k8s.io", "leases"): {"create", "get", "update"}}
    named = next(r for r in lease["rules"] if "get" in r["verbs"])
    assert named["resourceNames"] == ["ae-asyncendpoints-controller"]
    # secret names on request, or every Secret when asked for
    objects = helm.template(values=[VALUES_ALL])
    watched = next(
        o for o in objects if o["kind"] == "Role" and o["metadata"]["namespace"] == "ae-watched"
    )
    secrets = next(r for r in watched["rules"] if "secrets" in r["resources"])
    assert secrets["resourceNames"] == ["my-redis", "other-redis"]
    objects = helm.template(sets=["controller.rbac.readAllSecrets=true"])
    secrets = next(r for r in find(objects, "ClusterRole")["rules"] if "secrets" in r["resources"])
    assert "resourceNames" not in secrets and secrets["verbs"] == ["get"]


def test_rbac_and_controller_can_be_left_out(helm: Helm) -> None:
    objects = helm.template(sets=["rbac.create=false"])
    assert not {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"} & set(kinds(objects))
    objects = helm.template(sets=["controller.enabled=false", "api.enabled=false"])
    assert kinds(objects) == ["CustomResourceDefinition", "Secret"]


# --- API -----------------------------------------------------------------------------------------
def test_api_listens_on_all_interfaces_and_probes_health(helm: Helm) -> None:
    objects = helm.template()
    api = find(objects, "Deployment", "ae-asyncendpoints-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["api", "examples.reports:app"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ASYNCENDPOINTS_HOST"] == "0.0.0.0" and env["ASYNCENDPOINTS_PORT"] == "8000"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert api["spec"]["replicas"] == 2
    service = find(objects, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert not {"Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget"} & set(kinds(objects))


def test_api_ingress_hpa_and_pdb(helm: Helm) -> None:
    objects = helm.template(values=[VALUES_ALL])
    api = find(objects, "Deployment", "ae-ae-system-api")
    assert "replicas" not in api["spec"], "the HPA owns the replicas"
    hpa = find(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "ae-ae-system-api",
    }
    assert hpa["spec"]["minReplicas"] == 3 and hpa["spec"]["maxReplicas"] == 12
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}
    ingress = find(objects, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"hosts": ["jobs.example.com"], "secretName": "jobs-tls"}]
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    assert [p["path"] for p in paths] == ["/", "/jobs"]
    assert all(
        p["backend"]["service"] == {"name": "ae-ae-system-api", "port": {"name": "http"}}
        for p in paths
    )
    pdb = find(objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 2
    assert pdb["spec"]["selector"]["matchLabels"] == api["spec"]["selector"]["matchLabels"]
    service = find(objects, "Service")
    assert (
        service["spec"]["type"] == "NodePort" and service["spec"]["ports"][0]["nodePort"] == 30080
    )


def test_helm_test_hook_curls_readyz(rendered: list[dict[str, Any]]) -> None:
    pods = [o for o in rendered if o["kind"] == "Pod"]
    assert len(pods) == 1
    pod = pods[0]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    command = pod["spec"]["containers"][0]["command"]
    assert command[0] == "curl" and "--fail" in command
    service = find(rendered, "Service")
    port = service["spec"]["ports"][0]["port"]
    assert command[-1] == (
        f"http://{service['metadata']['name']}.{service['metadata']['namespace']}.svc:{port}/readyz"
    )
    assert pod["spec"]["restartPolicy"] == "Never"


def test_notes_tell_how_to_submit_a_first_job(helm: Helm) -> None:
    out = helm.run("install", "ae", str(CHART), "--dry-run=client", "--namespace", "jobs").stdout
    notes = out[out.index("NOTES:") :]
    assert "curl" in notes and "POST" in notes and '"$API/echo"' in notes
    assert "svc/ae-asyncendpoints-api" in notes and "kubectl get awp" in notes
    assert "Authorization" not in notes
    out = helm.run(
        "install", "ae", str(CHART), "--dry-run=client", "--set", "auth.tokens={t}"
    ).stdout
    assert "Authorization: Bearer $TOKEN" in out[out.index("NOTES:") :]


# --- CRD -----------------------------------------------------------------------------------------
def _strip_chart_metadata(crd: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    crd = json.loads(json.dumps(crd))
    meta = crd["metadata"]
    own_labels = source["metadata"].get("labels") or {}
    meta["labels"] = {k: v for k, v in meta.get("labels", {}).items() if k in own_labels}
    if not meta["labels"] and "labels" not in source["metadata"]:
        del meta["labels"]
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k != "helm.sh/resource-policy"
    }
    if annotations or "annotations" in source["metadata"]:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return crd


def test_crd_template_is_in_sync_with_the_manifest(helm: Helm) -> None:
    check = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "sync-crd"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    source = yaml.safe_load(CRD_MANIFEST.read_text())
    crd = find(helm.template(), "CustomResourceDefinition")
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert crd["metadata"]["labels"]["app.kubernetes.io/instance"] == "ae"
    assert _strip_chart_metadata(crd, source) == source


def test_sync_crd_notices_drift(tmp_path: Path) -> None:
    source = tmp_path / "crd.yaml"
    target = tmp_path / "template.yaml"
    shutil.copy(CRD_MANIFEST, source)
    script = [
        sys.executable,
        str(REPO / "scripts" / "sync-crd"),
        "--source",
        str(source),
        "--target",
        str(target),
    ]
    assert subprocess.run([*script, "--check"], check=False).returncode == 1  # no target yet
    assert subprocess.run(script, check=False).returncode == 0
    assert subprocess.run([*script, "--check"], check=False).returncode == 0
    source.write_text(source.read_text().replace("name: Queued", "name: Waiting"))
    drift = subprocess.run([*script, "--check"], capture_output=True, text=True, check=False)
    assert drift.returncode == 1 and "+        - name: Waiting" in drift.stdout
    assert subprocess.run(script, check=False).returncode == 0  # rewrite
    assert subprocess.run([*script, "--check"], check=False).returncode == 0
    assert "name: Waiting" in target.read_text()


def test_crd_can_be_left_out_and_unkept(helm: Helm) -> None:
    assert "CustomResourceDefinition" not in kinds(helm.template(sets=["crds.install=false"]))
    crd = find(helm.template(sets=["crds.keep=false"]), "CustomResourceDefinition")
    assert "helm.sh/resource-policy" not in (crd["metadata"].get("annotations") or {})
    assert crd["metadata"]["name"] == CRD_NAME


# --- the example pool ----------------------------------------------------------------------------
def test_bundled_pool_is_a_post_install_hook_on_the_charts_secret(helm: Helm) -> None:
    assert "AsyncWorkerPool" not in kinds(helm.template())
    pool = find(helm.template(sets=["pool.enabled=true"]), "AsyncWorkerPool")
    assert pool["metadata"]["name"] == "ae-asyncendpoints"
    assert pool["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    # not Helm's default before-hook-creation: that would delete the pool on every upgrade
    assert pool["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == "hook-failed"
    spec = pool["spec"]
    assert spec["image"] == f"asyncendpoints/asyncendpoints:{CHART_META['appVersion']}"
    assert spec["app"] == "examples.reports:app"
    assert spec["redis"] == {
        "secretRef": {"name": "asyncendpoints-redis", "key": "url"},
        "keyPrefix": "ae",
    }
    assert spec["minReplicas"] <= spec["maxReplicas"]
    pool = find(helm.template(values=[VALUES_ALL]), "AsyncWorkerPool")
    assert pool["spec"]["redis"] == {
        "secretRef": {"name": "my-redis", "key": "redis-url"},
        "keyPrefix": "tenant-a",
    }
    assert pool["spec"]["jobNames"] == ["generate-report", "echo"]
    assert pool["spec"]["concurrency"] == 8


# --- values: schema and documentation ------------------------------------------------------------
@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("api.replicaCount=two", "/api/replicaCount"),
        ("bogus=1", "bogus"),
        ("redis.url=http://not-redis", "/redis/url"),
        ("logs.level=LOUD", "/logs/level"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("controller.watchNamespace=Not_A_Namespace", "/controller/watchNamespace"),
        ("pool.minReplicas=-1", "/pool/minReplicas"),
        ("api.service.type=Magic", "/api/service/type"),
        ("app=not-a-reference", "/app"),
    ],
)
def test_schema_refuses_bad_values(helm: Helm, setting: str, complaint: str) -> None:
    with pytest.raises(HelmError) as err:
        helm.template(sets=[setting])
    assert complaint in str(err.value)


def test_empty_redis_url_is_refused(helm: Helm) -> None:
    with pytest.raises(HelmError, match=r"set redis\.url"):
        helm.template(sets=["redis.url="])


def _leaves(tree: Any, prefix: str = "") -> set[str]:
    if isinstance(tree, dict) and tree:
        return set().union(*(_leaves(v, f"{prefix}{k}.") for k, v in tree.items()))
    return {prefix.rstrip(".")}


def test_every_value_is_documented_and_in_the_schema() -> None:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    lines = text.splitlines()
    documented: set[str] = set()
    stack: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z0-9_]+):", line)
        if not m or line.lstrip().startswith("#"):
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m.group(2)))
        j = i - 1
        while (
            j >= 0 and lines[j].strip().startswith("#") and not lines[j].strip().startswith("# --")
        ):
            j -= 1
        if j >= 0 and lines[j].strip().startswith("# --"):
            documented.add(".".join(k for _, k in stack))
    # a leaf is documented itself, or by a documented parent whose value is one block
    # (e.g. resources)
    undocumented = [
        leaf
        for leaf in sorted(_leaves(values))
        if not any(leaf == d or leaf.startswith(d + ".") for d in documented)
    ]
    assert not undocumented, f"values without a `# --` comment: {undocumented}"
    schema = json.loads((CHART / "values.schema.json").read_text())

    def in_schema(path: list[str], node: dict[str, Any]) -> bool:
        if not path:
            return True
        props = node.get("properties")
        if props is None:
            return node.get("type") == "object" or "object" in (node.get("type") or [])
        return path[0] in props and in_schema(path[1:], props[path[0]])

    missing = [leaf for leaf in sorted(_leaves(values)) if not in_schema(leaf.split("."), schema)]
    assert not missing, f"values the schema does not know: {missing}"
    for name, node in schema["properties"].items():
        assert name == "global" or name in values, f"schema property {name} has no default"
        assert node.get("description") or node.get("properties"), name
