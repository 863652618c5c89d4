"""A real Kubernetes control plane on loopback for the tests (no pytest in here).

:class:`ControlPlane` runs the binaries of ``scripts/k8s-testbed`` (:mod:`tests.k8s.binaries`):

* etcd on two free loopback ports, its data in the control plane's work folder;
* kube-apiserver with generated certificates (a CA, a serving certificate, an admin client
  certificate in ``system:masters``, a static admin bearer token), a service-account signing
  key pair and RBAC authorization, on a free loopback port (:mod:`tests.k8s.pki`);
* optionally kube-controller-manager with its own client certificate and
  ``--use-service-account-credentials``, so Deployments roll out into ReplicaSets and Pods
  (no kubelet runs: pods stay Pending).

Each runs as a :class:`~tests.k8s.processes.ManagedProcess`; :meth:`ControlPlane.stop` (also
run at exit) terminates, then kills, each process group. Also the process's one shared
control plane and a throwaway one for a ``with`` block; what the tests import from the other
modules is re-exported here.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.k8s.binaries import CONTROL_PLANE_BINARIES, K8sTestbedError, find_binaries, find_helm
from tests.k8s.pki import Pki, new_api_client, write_kubeconfig
from tests.k8s.processes import LIVE, ManagedProcess, free_port

__all__ = [
    "SERVICE_CLUSTER_IP_RANGE",
    "ControlPlane",
    "K8sTestbedError",
    "acquire_shared_control_plane",
    "control_plane",
    "find_binaries",
    "find_helm",
    "free_port",
    "new_api_client",
    "release_shared_control_plane",
    "write_kubeconfig",
]

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"


class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager on demand) on 127.0.0.1.

    After :meth:`start`: ``server`` (https URL), ``kubeconfig`` (admin, ``system:masters``),
    ``ca_file``, ``admin_cert_file``/``admin_key_file``, ``admin_token`` (a static bearer token
    of the same admin), ``workdir`` (certificates, etcd data, logs).
    """

    def __init__(self, bindir: Path, workdir: Path | None = None) -> None:
        self.bindir = Path(bindir)
        for name in CONTROL_PLANE_BINARIES:
            if not (self.bindir / name).is_file():
                raise K8sTestbedError(f"no {name} in {self.bindir}")
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="asyncendpoints-k8s-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, ManagedProcess] = {}
        self.server = ""
        self.etcd_url = ""
        self.admin_token = secrets.token_hex(24)
        self._lock = threading.Lock()
        self.pki: Pki | None = None

    # -- lifecycle
    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def running(self) -> bool:
        """etcd and kube-apiserver are both up."""
        return all(
            name in self.processes and self.processes[name].alive()
            for name in ("etcd", "kube-apiserver")
        )

    @property
    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.processes.items()}

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "pki" / "ca.crt"

    @property
    def admin_cert_file(self) -> Path:
        return self.workdir / "pki" / "admin.crt"

    @property
    def admin_key_file(self) -> Path:
        return self.workdir / "pki" / "admin.key"

    def start(self, timeout: float = 90.0) -> ControlPlane:
        LIVE.add(self)
        try:
            self._make_pki()
            self._start_etcd(timeout=30.0)
            self._start_apiserver(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every process (the controller manager first); idempotent."""
        with self._lock:
            for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
                proc = self.processes.get(name)
                if proc is not None:
                    proc.stop()
            LIVE.discard(self)
            if os.environ.get("ASYNCENDPOINTS_KEEP_K8S_TESTBED") == "1":
                return
            # a work folder we made goes entirely; a given one keeps its logs and certificates
            doomed = self.workdir if self._own_workdir else self.workdir / "etcd-data"
            shutil.rmtree(doomed, ignore_errors=True)

    # -- pieces
    def _make_pki(self) -> None:
        pki = Pki(self.workdir / "pki")
        service_ip = str(next(ipaddress.ip_network(SERVICE_CLUSTER_IP_RANGE).hosts()))
        self.serving = pki.issue(
            "apiserver",
            "kube-apiserver",
            server=True,
            dns=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            ips=("127.0.0.1", "::1", service_ip),
        )
        pki.issue("admin", "asyncendpoints-admin", groups=("system:masters",))
        self.kcm_client = pki.issue("kube-controller-manager", "system:kube-controller-manager")
        self.sa_key, self.sa_pub = pki.service_account_keys()
        tokens = self.workdir / "pki" / "tokens.csv"
        tokens.write_text(
            f'{self.admin_token},asyncendpoints-admin-token,admin-token,"system:masters"\n'
        )
        tokens.chmod(0o600)
        self.token_file = tokens
        self.pki = pki

    def _spawn(self, name: str, args: list[str]) -> ManagedProcess:
        proc = ManagedProcess(name, args, self.workdir / f"{name}.log", self.workdir)
        self.processes[name] = proc
        return proc

    def _fail(self, name: str, why: str) -> K8sTestbedError:
        proc = self.processes.get(name)
        log = proc.log_tail() if proc else "(not started)"
        return K8sTestbedError(
            f"{name} {why}; the end of its log ({self.workdir / name}.log):\n{log}"
        )

    def _start_etcd(self, timeout: float) -> None:
        for _attempt in range(3):
            client, peer = free_port(), free_port()
            self.etcd_url = f"http://127.0.0.1:{client}"
            peer_url = f"http://127.0.0.1:{peer}"
            proc = self._spawn(
                "etcd",
                [
                    str(self.bindir / "etcd"),
                    "--name=testbed",
                    f"--data-dir={self.workdir / 'etcd-data'}",
                    f"--listen-client-urls={self.etcd_url}",
                    f"--advertise-client-urls={self.etcd_url}",
                    f"--listen-peer-urls={peer_url}",
                    f"--initial-advertise-peer-urls={peer_url}",
                    f"--initial-cluster=testbed={peer_url}",
                    "--initial-cluster-state=new",
                    "--unsafe-no-fsync=true",
                    "--log-level=warn",
                ],
            )
            if self._wait_http(f"{self.etcd_url}/health", proc, timeout, ok=b'"health":"true"'):
                return
            if "address already in use" not in proc.log_tail():
                raise self._fail("etcd", f"did not become healthy within {timeout:.0f} s")
            proc.stop()
        raise self._fail("etcd", "found no free port in 3 tries")

    def _apiserver_args(self, port: int) -> list[str]:
        cert, key = self.serving
        return [
            str(self.bindir / "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={cert}",
            f"--tls-private-key-file={key}",
            f"--client-ca-file={self.ca_file}",
            f"--token-auth-file={self.token_file}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self.sa_pub}",
            f"--service-account-signing-key-file={self.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            # no kubelets and no real service network: do not publish 127.0.0.1 as the
            # endpoint of the `kubernetes` Service
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=1",
        ]

    def _start_apiserver(self, timeout: float) -> None:
        for _attempt in range(3):
            port = free_port()
            self.server = f"https://127.0.0.1:{port}"
            proc = self._spawn("kube-apiserver", self._apiserver_args(port))
            if self._wait_https("/readyz", proc, timeout):
                write_kubeconfig(
                    self.kubeconfig,
                    self.server,
                    self.ca_file,
                    cert_file=self.admin_cert_file,
                    key_file=self.admin_key_file,
                )
                return
            if "address already in use" not in proc.log_tail():
                raise self._fail(
                    "kube-apiserver", f"was not ready (/readyz) within {timeout:.0f} s"
                )
            proc.stop()
        raise self._fail("kube-apiserver", "found no free port in 3 tries")

    def start_controller_manager(self, timeout: float = 60.0) -> ManagedProcess:
        """Start kube-controller-manager; wait until it has made the `default` ServiceAccount."""
        existing = self.processes.get("kube-controller-manager")
        if existing is not None and existing.alive():
            return existing
        assert self.pki is not None, "start() the control plane first"
        cert, key = self.kcm_client
        kubeconfig = write_kubeconfig(
            self.workdir / "kube-controller-manager.kubeconfig",
            self.server,
            self.ca_file,
            cert_file=cert,
            key_file=key,
            name="kube-controller-manager",
        )
        proc = self._spawn(
            "kube-controller-manager",
            [
                str(self.bindir / "kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--controllers=*",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={self.sa_key}",
                f"--root-ca-file={self.ca_file}",
                f"--cluster-signing-cert-file={self.ca_file}",
                f"--cluster-signing-key-file={self.pki.ca_key_file}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                f"--cert-dir={self.workdir / 'kcm-certs'}",
                "--v=1",
            ],
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                raise self._fail("kube-controller-manager", f"exited with {proc.popen.returncode}")
            status = self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0]
            if status == 200:
                return proc
            time.sleep(0.5)
        raise self._fail(
            "kube-controller-manager",
            f"did not create the default ServiceAccount within {timeout:.0f} s",
        )

    # -- talking to it
    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(str(self.admin_cert_file), str(self.admin_key_file))
        return ctx

    def request(
        self, method: str, path: str, body: Any = None, *, timeout: float = 10.0
    ) -> tuple[int, Any]:
        """A request as the admin (client certificate); returns (status, decoded JSON or text)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(), timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
            err.close()
        except (urllib.error.URLError, OSError) as err:
            return 0, str(err)
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` as the admin (close it when done)."""
        return new_api_client(self.kubeconfig)

    def _wait_http(self, url: str, proc: ManagedProcess, timeout: float, ok: bytes) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                return False
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if ok in resp.read():
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        return False

    def _wait_https(self, path: str, proc: ManagedProcess, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                return False
            status, _ = self.request("GET", path, timeout=2)
            if status == 200:
                return True
            time.sleep(0.25)
        return False


class _Shared:
    plane: ControlPlane | None = None
    users = 0
    lock = threading.Lock()


def acquire_shared_control_plane(bindir: Path, workdir: Callable[[], Path]) -> ControlPlane:
    """The process's one shared control plane, started on first use.

    Several conftests may re-export the session fixtures (a fixture is seen only below its
    conftest), which makes one fixture instance per folder: they all share this plane, which
    stops when the last of them calls :func:`release_shared_control_plane`.
    """
    with _Shared.lock:
        plane = _Shared.plane
        if plane is None or not plane.running():
            if plane is not None:
                plane.stop()
            plane = ControlPlane(bindir, workdir())
            plane.start()
            _Shared.plane = plane
        _Shared.users += 1
        return plane


def release_shared_control_plane(plane: ControlPlane) -> None:
    with _Shared.lock:
        if _Shared.plane is not plane:  # replaced after a crash: this one is done
            plane.stop()
            return
        _Shared.users -= 1
        if _Shared.users <= 0:
            _Shared.plane, _Shared.users = None, 0
            plane.stop()


@contextlib.contextmanager
def control_plane(bindir: Path, *, controller_manager: bool = False) -> Iterator[ControlPlane]:
    """A throwaway control plane for a ``with`` block."""
    plane = ControlPlane(bindir)
    try:
        plane.start()
        if controller_manager:
            plane.start_controller_manager()
        yield plane
    finally:
        plane.stop()
