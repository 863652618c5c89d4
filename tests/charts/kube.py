"""Small helpers over the kubernetes client for the chart tests: apply (for real or as a
server-side dry run) any rendered object, with the API server's warnings."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

APPLY_PATCH = "application/apply-patch+yaml"
FIELD_MANAGER = "asyncendpoints-chart-tests"


@dataclass
class Answer:
    status: int
    body: Any
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return 200 <= self.status <= 299

    def __str__(self) -> str:
        message = self.body.get("message") if isinstance(self.body, dict) else self.body
        return f"{self.status}: {message}" + (
            f" (warnings: {self.warnings})" if self.warnings else ""
        )


class Kube:
    """Raw requests (status, body, Warning headers) with discovery from the dynamic client."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client
        self.dynamic = DynamicClient(api_client)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Answer:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        request = self.api_client.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(*request, _request_timeout=30)
        raw = response.read()
        try:
            decoded = json.loads(raw) if raw else {}
        except ValueError:
            decoded = raw.decode(errors="replace")
        warnings = [
            value
            for key, value in (response.getheaders() or {}).items()
            if key.lower() == "warning"
        ]
        return Answer(int(response.status), decoded, warnings)

    def resource(self, api_version: str, kind: str) -> Any:
        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            self.dynamic.resources.invalidate_cache()
            return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def path(self, obj: dict[str, Any], namespace: str | None = None) -> str:
        res = self.resource(obj["apiVersion"], obj["kind"])
        ns = (obj["metadata"].get("namespace") or namespace) if res.namespaced else None
        return str(res.path(name=obj["metadata"]["name"], namespace=ns))

    def apply(
        self, obj: dict[str, Any], *, dry_run: bool = False, namespace: str | None = None
    ) -> Answer:
        """Server-side apply (``kubectl apply --server-side [--dry-run=server]``)."""
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        if dry_run:
            query.append(("dryRun", "All"))
        return self.request(
            "PATCH", self.path(obj, namespace), obj, query=query, content_type=APPLY_PATCH
        )

    def create(
        self, obj: dict[str, Any], *, dry_run: bool = False, namespace: str | None = None
    ) -> Answer:
        res = self.resource(obj["apiVersion"], obj["kind"])
        ns = (obj["metadata"].get("namespace") or namespace) if res.namespaced else None
        query = [("fieldManager", FIELD_MANAGER)] + ([("dryRun", "All")] if dry_run else [])
        return self.request("POST", str(res.path(namespace=ns)), obj, query=query)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Answer:
        res = self.resource(api_version, kind)
        return self.request(
            "GET", str(res.path(name=name, namespace=namespace if res.namespaced else None))
        )

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Answer:
        res = self.resource(api_version, kind)
        return self.request(
            "DELETE", str(res.path(name=name, namespace=namespace if res.namespaced else None))
        )

    def ensure_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        answer = self.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": labels or {}},
            }
        )
        assert answer.ok, f"namespace {name}: {answer}"

    def wait_crd_established(self, name: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            answer = self.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
            conditions = (
                (answer.body.get("status") or {}).get("conditions") or [] if answer.ok else []
            )
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                self.dynamic.resources.invalidate_cache()
                return dict(answer.body)
            if time.monotonic() > deadline:
                raise AssertionError(f"CRD {name} not Established within {timeout} s: {answer}")
            time.sleep(0.2)


def pod_from_template(
    what: str, metadata: dict[str, Any], spec: dict[str, Any], namespace: str
) -> dict[str, Any]:
    """A Pod with a workload's pod template, as its controller would make it."""
    name = what.split("/", 1)[1].lower()[:50] + "-pod"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": metadata.get("labels") or {},
            "annotations": metadata.get("annotations") or {},
        },
        "spec": spec,
    }
