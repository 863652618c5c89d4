"""Helpers of the chart tests: run the real ``helm``, parse what it renders, walk pod specs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "asyncendpoints"
VALUES_ALL = Path(__file__).with_name("values-all.yaml")
CRD_MANIFEST = REPO / "manifests" / "crds" / "asyncworkerpools.asyncendpoints.io.yaml"
CRD_TEMPLATE = CHART / "templates" / "crds" / "asyncworkerpools.asyncendpoints.io.yaml"
EXAMPLE_POOL = REPO / "manifests" / "examples" / "pool.yaml"
CRD_NAME = "asyncworkerpools.asyncendpoints.io"

# kinds whose objects carry a pod template, and where it is
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


class HelmError(AssertionError):
    pass


class Helm:
    """The real helm binary, with its caches and config in a folder of the test's own."""

    def __init__(self, binary: Path, home: Path, kubeconfig: Path | None = None) -> None:
        self.binary = Path(binary)
        self.home = Path(home)
        self.kubeconfig = kubeconfig
        for sub in ("cache", "config", "data"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)

    def with_kubeconfig(self, kubeconfig: Path) -> Helm:
        return Helm(self.binary, self.home, kubeconfig)

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("HELM_") and k not in ("KUBECONFIG",)
        }
        env.update(
            HELM_CACHE_HOME=str(self.home / "cache"),
            HELM_CONFIG_HOME=str(self.home / "config"),
            HELM_DATA_HOME=str(self.home / "data"),
            KUBECONFIG=str(self.kubeconfig) if self.kubeconfig else str(self.home / "no-cluster"),
        )
        return env

    def run(
        self, *args: str, check: bool = True, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise HelmError(
                f"helm {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}\n{proc.stdout}"
            )
        return proc

    def template_text(
        self,
        *extra: str,
        release: str = "ae",
        namespace: str = "asyncendpoints",
        values: Sequence[Path] = (),
        sets: Sequence[str] = (),
        chart: Path = CHART,
    ) -> str:
        args = ["template", release, str(chart), "--namespace", namespace]
        for path in values:
            args += ["--values", str(path)]
        for item in sets:
            args += ["--set", item]
        return self.run(*args, *extra).stdout

    def template(self, *extra: str, **kwargs: Any) -> list[dict[str, Any]]:
        return parse_documents(self.template_text(*extra, **kwargs))


def parse_documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(objects: Sequence[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def kinds(objects: Sequence[dict[str, Any]]) -> list[str]:
    return sorted(o["kind"] for o in objects)


def pod_specs(
    objects: Sequence[dict[str, Any]],
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(what, pod metadata, pod spec) of every Pod and every pod template."""
    for obj in objects:
        what = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "Pod":
            yield what, obj["metadata"], obj["spec"]
        elif obj["kind"] in WORKLOAD_KINDS:
            template = obj["spec"]["template"]
            yield what, template.get("metadata") or {}, template["spec"]
        elif obj["kind"] == "CronJob":
            template = obj["spec"]["jobTemplate"]["spec"]["template"]
            yield what, template.get("metadata") or {}, template["spec"]


def restricted_violations(what: str, spec: dict[str, Any]) -> list[str]:
    """What keeps a pod spec from the project's pod security (the "restricted" standard and
    more: uid 10001, a read-only root filesystem with an emptyDir at /tmp)."""
    problems: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    if pod_sc.get("runAsNonRoot") is not True:
        problems.append(f"{what}: pod runAsNonRoot is not true")
    if pod_sc.get("runAsUser") != 10001:
        problems.append(f"{what}: pod runAsUser is {pod_sc.get('runAsUser')!r}, not 10001")
    if (pod_sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append(f"{what}: pod seccompProfile is not RuntimeDefault")
    for c in [*(spec.get("initContainers") or []), *spec["containers"]]:
        cw = f"{what} container {c['name']}"
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{cw}: allowPrivilegeEscalation is not false")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{cw}: readOnlyRootFilesystem is not true")
        if (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
            problems.append(f"{cw}: capabilities.drop is not [ALL]")
        if sc.get("privileged"):
            problems.append(f"{cw}: privileged")
        if (sc.get("capabilities") or {}).get("add"):
            problems.append(f"{cw}: adds capabilities")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            problems.append(f"{cw}: runs as root")
        tmp = [m for m in c.get("volumeMounts") or [] if m["mountPath"] == "/tmp"]
        if not tmp or "emptyDir" not in volumes.get(tmp[0]["name"], {}):
            problems.append(f"{cw}: no emptyDir mounted at /tmp")
    for name, volume in volumes.items():
        if "hostPath" in volume:
            problems.append(f"{what}: hostPath volume {name}")
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        problems.append(f"{what}: shares a host namespace")
    return problems
