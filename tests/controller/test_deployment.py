"""The pool spec and the worker Deployment built from it (pure: no cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controller import crd, deployment
from controller.spec import PoolSpec, SpecError

REPO = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((REPO / "manifests/crds/asyncworkerpools.asyncendpoints.io.yaml").read_text())
EXAMPLE = yaml.safe_load((REPO / "manifests/examples/pool.yaml").read_text())


def _schema() -> dict[str, Any]:
    [version] = CRD["spec"]["versions"]
    return dict(version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"])


def test_the_crd_and_the_code_name_the_same_things() -> None:
    assert CRD["metadata"]["name"] == crd.CRD_NAME
    assert CRD["spec"]["group"] == crd.GROUP
    names = CRD["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == (
        crd.KIND,
        crd.PLURAL,
        [crd.SHORT_NAME],
    )
    [version] = CRD["spec"]["versions"]
    assert version["name"] == crd.VERSION
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["Min", "Max", "Desired", "Ready", "Queued", "In Progress", "Age"]


def test_the_crd_defaults_are_the_parsers_defaults() -> None:
    """A spec with only the required fields parses to what the API server would fill in."""
    schema = _schema()
    minimal = {"image": "i", "app": "m:a", "redis": {"secretRef": {"name": "s"}}}
    parsed = PoolSpec.parse(minimal)
    for field, attr in [
        ("minReplicas", "min_replicas"),
        ("maxReplicas", "max_replicas"),
        ("targetJobsPerReplica", "target_jobs_per_replica"),
        ("pollingIntervalSeconds", "polling_interval_seconds"),
        ("scaleDownStabilizationSeconds", "scale_down_stabilization_seconds"),
        ("leaseSeconds", "lease_seconds"),
        ("shutdownGraceSeconds", "shutdown_grace_seconds"),
        ("paused", "paused"),
    ]:
        assert schema[field]["default"] == getattr(parsed, attr), field
    redis = schema["redis"]["properties"]
    assert redis["keyPrefix"]["default"] == parsed.redis.key_prefix
    assert redis["secretRef"]["properties"]["key"]["default"] == parsed.redis.secret_key


def test_the_crd_refuses_the_env_the_controller_sets() -> None:
    rules = " ".join(
        r["rule"]
        for r in CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
            "x-kubernetes-validations"
        ]
    )
    for name in deployment.RESERVED_ENV:
        assert f"'{name}'" in rules


def test_the_example_pool_builds() -> None:
    spec = PoolSpec.parse(EXAMPLE["spec"])
    body = deployment.build("reports", "default", spec, replicas=2)
    assert body["metadata"]["name"] == "reports-worker"
    assert body["spec"]["replicas"] == 2
    [container] = body["spec"]["template"]["spec"]["containers"]
    assert container["command"] == [
        "asyncendpoints",
        "worker",
        "examples.reports:app",
        "--names",
        "generate-report,echo,checksum",
    ]
    assert container["image"] == "asyncendpoints/asyncendpoints:0.1.0"
    env = {e["name"]: e for e in container["env"]}
    assert env["ASYNCENDPOINTS_REDIS_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "asyncendpoints-redis", "key": "url"}
    }
    assert env["ASYNCENDPOINTS_CONCURRENCY"]["value"] == "8"
    assert body["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 35


def test_no_job_names_means_every_name() -> None:
    spec = PoolSpec.parse({"image": "i", "app": "m:a", "redis": {"secretRef": {"name": "s"}}})
    assert deployment.worker_command(spec) == ["asyncendpoints", "worker", "m:a"]
    env = {e["name"] for e in deployment.worker_env(spec)}
    assert "ASYNCENDPOINTS_CONCURRENCY" not in env  # the worker's own default


def test_the_hash_follows_the_template_not_the_replicas() -> None:
    spec = PoolSpec.parse(EXAMPLE["spec"])
    one = deployment.build("reports", "default", spec, replicas=1)
    five = deployment.build("reports", "default", spec, replicas=5)
    assert deployment.current_hash(one) == deployment.current_hash(five)
    changed = PoolSpec.parse({**EXAMPLE["spec"], "image": "asyncendpoints/asyncendpoints:0.2.0"})
    other = deployment.build("reports", "default", changed, replicas=1)
    assert deployment.current_hash(other) != deployment.current_hash(one)


def test_an_update_keeps_the_replicas_and_foreign_metadata() -> None:
    spec = PoolSpec.parse(EXAMPLE["spec"])
    existing = deployment.build("reports", "default", spec, replicas=7)
    existing["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "3"
    existing["metadata"]["resourceVersion"] = "42"
    changed = PoolSpec.parse({**EXAMPLE["spec"], "concurrency": 2})
    desired = deployment.build("reports", "default", changed, replicas=1)
    merged = deployment.merged_for_update(existing, desired)
    assert merged["spec"]["replicas"] == 7
    assert merged["metadata"]["resourceVersion"] == "42"
    assert merged["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert deployment.current_hash(merged) == deployment.current_hash(desired)


def test_user_labels_cannot_change_the_selector() -> None:
    spec = PoolSpec.parse(
        {**EXAMPLE["spec"], "podLabels": {"app.kubernetes.io/instance": "other", "team": "x"}}
    )
    labels = deployment.pod_template("reports", spec)["metadata"]["labels"]
    assert labels["app.kubernetes.io/instance"] == "reports"
    assert labels["team"] == "x"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"minReplicas": 3, "maxReplicas": 2}, "must not exceed maxReplicas"),
        ({"targetJobsPerReplica": 0}, "targetJobsPerReplica must be at least 1"),
        ({"app": "no-colon"}, "not a module:attr reference"),
        ({"redis": {}}, "spec.redis.secretRef.name is required"),
        ({"image": ""}, "spec.image is required"),
        ({"jobNames": "a,b"}, "spec.jobNames must be a list"),
        ({"maxReplicas": "many"}, "invalid pool spec"),
    ],
)
def test_an_unusable_spec_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        PoolSpec.parse({**EXAMPLE["spec"], **change})
