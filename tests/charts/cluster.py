"""Running the chart's pieces against the test control plane as local processes.

No kubelet runs here: the controller and the API of a release run as local processes that
take their arguments and environment from the Deployments helm installed, and each worker
Pod the controller's Deployment asks for is a local ``asyncendpoints worker`` (the kubelet
stand-in of tests/support/kubelet.py) started from that Pod's own command and environment.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.charts.kube import Answer, Kube
from tests.k8s.testbed import free_port, write_kubeconfig

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def asyncendpoints_command() -> str:
    """The ``asyncendpoints`` console script of this interpreter's environment."""
    script = BIN / "asyncendpoints"
    return str(script) if script.is_file() else "asyncendpoints"


def wait_until(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def ok(answer: Answer) -> Any:
    assert answer.ok, str(answer)
    return answer.body


def secret_value(kube: Kube, namespace: str, name: str, key: str) -> str:
    secret = ok(kube.get("v1", "Secret", name, namespace))
    return base64.b64decode(secret["data"][key]).decode()


def service_account_kubeconfig(
    kube: Kube, server: str, ca_file: Path, namespace: str, account: str, path: Path
) -> Path:
    """A kubeconfig holding a TokenRequest token of a ServiceAccount: its RBAC, nothing more."""
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 7200},
    }
    answer = kube.request(
        "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token", request
    )
    token = ok(answer)["status"]["token"]
    return write_kubeconfig(path, server, ca_file, token=token, name=account)


def resolve_env(
    kube: Kube, namespace: str, pod_name: str, env: list[dict[str, Any]], files: Path | None = None
) -> dict[str, str]:
    """A container's env as a kubelet resolves it (values, secretKeyRef, fieldRef)."""
    out: dict[str, str] = {}
    for item in env:
        if "value" in item:
            out[item["name"]] = str(item["value"])
            continue
        source = item.get("valueFrom") or {}
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            out[item["name"]] = secret_value(kube, namespace, ref["name"], ref["key"])
        elif "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            out[item["name"]] = {"metadata.name": pod_name, "metadata.namespace": namespace}[path]
        else:
            raise AssertionError(f"cannot resolve env {item}")
    return out


def mount_secret_volumes(
    kube: Kube, namespace: str, spec: dict[str, Any], container: dict[str, Any], root: Path
) -> dict[str, Path]:
    """Secret volumes written under ``root``: {mountPath in the pod: local folder}."""
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts") or []:
        volume = volumes[mount["name"]]
        if "secret" not in volume:
            continue
        folder = root / mount["name"]
        folder.mkdir(parents=True, exist_ok=True)
        secret = ok(kube.get("v1", "Secret", volume["secret"]["secretName"], namespace))
        for item in volume["secret"].get("items") or [
            {"key": k, "path": k} for k in secret["data"]
        ]:
            target = folder / item["path"]
            target.write_bytes(base64.b64decode(secret["data"][item["key"]]))
            target.chmod(0o400)
        mounts[mount["mountPath"]] = folder
    return mounts


def remap(value: str, mounts: dict[str, Path]) -> str:
    for pod_path, local in mounts.items():
        if value.startswith(pod_path.rstrip("/") + "/"):
            return str(local) + value[len(pod_path.rstrip("/")) :]
    return value


class LocalProcess:
    """A process group of our own, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(
                argv,
                env=env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 10) -> int | None:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, sig)
            try:
                return self.popen.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        return None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def base_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ASYNCENDPOINTS_", "KUBERNETES_", "POD_")) and k != "KUBECONFIG"
    }
    env["PYTHONPATH"] = str(REPO)
    return env


def run_deployment_locally(
    kube: Kube,
    namespace: str,
    deployment: str,
    *,
    workdir: Path,
    overrides: dict[str, str],
    extra_args: list[str] = (),  # type: ignore[assignment]
    kubeconfig: Path | None = None,
) -> LocalProcess:
    """Run the first container of a Deployment's pod template as a local process: its args
    (after the image's ENTRYPOINT, ``asyncendpoints``), its env, its Secret volumes."""
    dep = ok(kube.get("apps/v1", "Deployment", deployment, namespace))
    spec = dep["spec"]["template"]["spec"]
    container = spec["containers"][0]
    pod_name = f"{deployment}-local"
    mounts = mount_secret_volumes(kube, namespace, spec, container, workdir / "volumes")
    env = base_env()
    env.update(
        {
            k: remap(v, mounts)
            for k, v in resolve_env(
                kube, namespace, pod_name, container.get("env") or [], workdir
            ).items()
        }
    )
    env.update(overrides)
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    argv = [asyncendpoints_command(), *container.get("args", []), *extra_args]
    return LocalProcess(deployment, argv, env, workdir / f"{deployment}.log")


def http_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def ensure_node(kube: Kube, name: str) -> None:
    """A Node object for pods to be bound to (no kubelet behind it)."""
    answer = kube.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    assert answer.ok, str(answer)


def bind(kube: Kube, namespace: str, pod_name: str, node: str) -> None:
    """What the scheduler does. A bound Pod is deleted gracefully (deletionTimestamp, then
    the kubelet's final delete); an unbound one goes at once, before its process stopped."""
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": pod_name},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }
    answer = kube.request(
        "POST", f"/api/v1/namespaces/{namespace}/pods/{pod_name}/binding", binding
    )
    assert answer.ok or answer.status == 409, str(answer)


def worker_command(
    kube: Kube, namespace: str, node: str | None = None
) -> Callable[[str], list[str]]:
    """For the kubelet stand-in: the Pod's own command and env (resolved), run locally,
    after binding the Pod to ``node`` (as the scheduler would).

    ``env NAME=VALUE ... asyncendpoints worker ...``: the health port is 0 (many workers
    share this machine's ports)."""

    def command(pod_name: str) -> list[str]:
        if node is not None:
            bind(kube, namespace, pod_name, node)
        pod = ok(kube.get("v1", "Pod", pod_name, namespace))
        container = pod["spec"]["containers"][0]
        env = resolve_env(kube, namespace, pod_name, container.get("env") or [])
        env["ASYNCENDPOINTS_WORKER_HEALTH_PORT"] = "0"
        env["PYTHONPATH"] = str(REPO)
        argv = list(container["command"]) + list(container.get("args") or [])
        if argv[0] == "asyncendpoints":
            argv[0] = asyncendpoints_command()
        return ["env", *(f"{k}={v}" for k, v in env.items()), *argv]

    return command


def printer_table(kube: Kube, namespace: str) -> tuple[list[str], list[list[Any]]]:
    """``kubectl get awp``: the pools as the API server's Table (printer columns)."""
    request = kube.api_client.param_serialize(
        "GET",
        f"/apis/asyncendpoints.io/v1alpha1/namespaces/{namespace}/asyncworkerpools",
        header_params={"Accept": TABLE},
        auth_settings=["BearerToken"],
    )
    response = kube.api_client.call_api(*request, _request_timeout=10)
    import json

    table = json.loads(response.read())
    assert table.get("kind") == "Table", table
    columns = [c["name"] for c in table["columnDefinitions"]]
    return columns, [row["cells"] for row in table["rows"]]


def format_table(columns: list[str], rows: list[list[Any]]) -> str:
    cells = [columns, *[[("" if v is None else str(v)) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells)


def reset_crd(kube: Kube, name: str, timeout: float = 60) -> None:
    """Delete the CRD (and every object of it, finalizers removed) if it exists."""
    answer = kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
    if answer.status == 404:
        return
    ok(answer)
    group, plural = answer.body["spec"]["group"], answer.body["spec"]["names"]["plural"]
    version = answer.body["spec"]["versions"][0]["name"]
    listing = kube.request("GET", f"/apis/{group}/{version}/{plural}")
    for item in (listing.body.get("items") or []) if listing.ok else []:
        meta = item["metadata"]
        path = f"/apis/{group}/{version}/namespaces/{meta['namespace']}/{plural}/{meta['name']}"
        kube.request(
            "PATCH",
            path,
            {"metadata": {"finalizers": None}},
            content_type="application/merge-patch+json",
        )
        kube.request("DELETE", path)
    kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
    wait_until(
        f"CRD {name} to go",
        lambda: kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name).status == 404,
        timeout,
    )
    kube.dynamic.resources.invalidate_cache()


def free_local_port() -> int:
    return free_port()
