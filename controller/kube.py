"""A small async client for the few Kubernetes calls the controller makes itself.

kopf watches and posts Events with its own client; the reconciler's reads and writes
(Deployments, Pods, Secrets, the pool's status, the leader Lease) go through here: the
``kubernetes`` package's configuration, authentication and connection pool, plain JSON
in and out, run in a small thread pool so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlencode

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

MERGE_PATCH = "application/merge-patch+json"
JSON = "application/json"


class KubeError(Exception):
    """The API server answered with an error status (or could not be reached: status 0)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


def load_api_client() -> Any:
    """In a pod: the service account; elsewhere: ``$KUBECONFIG`` or ``~/.kube/config``."""
    configuration = k8s_client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return k8s_client.ApiClient(configuration)


class Kube:
    """``await kube.request("GET", path)`` -> the decoded JSON; :class:`KubeError` otherwise."""

    def __init__(self, api_client: Any, *, timeout: float = 10.0, threads: int = 8) -> None:
        self.api_client = api_client
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kube")

    @classmethod
    def from_environment(cls) -> Kube:
        return cls(load_api_client())

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.api_client.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        content_type: str = JSON,
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self._request, method, path, body, query, content_type
        )

    def _request(
        self,
        method: str,
        path: str,
        body: Any,
        query: Mapping[str, str] | None,
        content_type: str,
    ) -> dict[str, Any]:
        if query:
            path = f"{path}?{urlencode(query)}"
        headers = {"Accept": JSON}
        if body is not None:
            headers["Content-Type"] = content_type
        url_method, url, headers, body, _ = self.api_client.param_serialize(
            method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        try:
            response = self.api_client.call_api(
                url_method, url, header_params=headers, body=body, _request_timeout=self.timeout
            )
            response.read()
        except Exception as exc:  # urllib3 errors: connection refused, timeouts, TLS
            raise KubeError(0, "Unreachable", str(exc)) from exc
        data = response.data or b"{}"
        try:
            decoded: Any = json.loads(data)
        except ValueError:
            decoded = {"message": data.decode(errors="replace")}
        if not 200 <= response.status <= 299:
            message = decoded.get("message", "") if isinstance(decoded, dict) else str(decoded)
            reason = decoded.get("reason", "") if isinstance(decoded, dict) else ""
            raise KubeError(int(response.status), str(reason or response.reason), str(message))
        return decoded if isinstance(decoded, dict) else {"items": decoded}

    async def get_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            return await self.request("GET", path)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise

    async def merge_patch(self, path: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("PATCH", path, dict(patch), content_type=MERGE_PATCH)

    async def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        """The decoded value of ``key`` in a Secret; None when the Secret or the key is absent."""
        secret = await self.get_or_none(core_path(namespace, "secrets", name))
        if secret is None:
            return None
        data = secret.get("data") or {}
        if key not in data:
            return None
        return base64.b64decode(data[key]).decode().strip()


def _q(part: str) -> str:
    return quote(part, safe="")


def core_path(namespace: str, plural: str, name: str | None = None) -> str:
    path = f"/api/v1/namespaces/{_q(namespace)}/{plural}"
    return f"{path}/{_q(name)}" if name else path


def group_path(
    group: str, version: str, namespace: str, plural: str, name: str | None = None
) -> str:
    path = f"/apis/{group}/{version}/namespaces/{_q(namespace)}/{plural}"
    return f"{path}/{_q(name)}" if name else path
