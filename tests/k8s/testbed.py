"""A real Kubernetes control plane on loopback for the tests (no pytest in here).

``scripts/k8s-testbed`` provides pinned ``etcd``, ``kube-apiserver``,
``kube-controller-manager`` and ``helm`` binaries (or finds them through
``KUBEBUILDER_ASSETS``); :class:`ControlPlane` runs them:

* etcd on two free loopback ports, its data in the control plane's work folder;
* kube-apiserver with generated certificates (a CA, a serving certificate, an admin client
  certificate in ``system:masters``, a static admin bearer token), a service-account signing
  key pair and RBAC authorization, on a free loopback port;
* optionally kube-controller-manager with its own client certificate and
  ``--use-service-account-credentials``, so Deployments roll out into ReplicaSets and Pods
  (no kubelet runs: pods stay Pending).

Every process runs in a process group of its own and gets SIGKILL should the Python process
that started it die (Linux ``PR_SET_PDEATHSIG``); :meth:`ControlPlane.stop` (also registered with
``atexit``) terminates, then kills, each group.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "k8s-testbed"
CONTROL_PLANE_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"


class K8sTestbedError(RuntimeError):
    """The control plane or its binaries cannot be had; the message says what is missing."""


# --- binaries ------------------------------------------------------------------------------------
def find_binaries(
    *, build: bool = True, timeout: float = 3600, on_line: Callable[[str], None] | None = None
) -> Path:
    """Run ``scripts/k8s-testbed`` (building on a cold cache unless ``build`` is false).

    Returns the folder holding the binaries; raises :class:`K8sTestbedError` with the script's
    message when they cannot be had. ``on_line`` receives each progress line.
    """
    if not SCRIPT.is_file():
        raise K8sTestbedError(f"{SCRIPT} is missing")
    cmd = [sys.executable, str(SCRIPT)] + ([] if build else ["--check"])
    # a group of its own, so that a timeout or Ctrl-C also ends the go builds it runs
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    lines: list[str] = []
    timed_out = threading.Event()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if on_line is not None:
                on_line(line.rstrip("\n"))

    def kill() -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def expire() -> None:
        timed_out.set()
        kill()

    reader = threading.Thread(target=pump, daemon=True)
    timer = threading.Timer(timeout, expire)
    reader.start()
    timer.start()
    try:
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.wait()
    except BaseException:
        kill()
        proc.wait()
        raise
    finally:
        timer.cancel()
        reader.join(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    if timed_out.is_set():
        raise K8sTestbedError(
            f"scripts/k8s-testbed did not finish within {timeout:.0f} s:\n" + "\n".join(lines[-30:])
        )
    if proc.returncode != 0:
        first = next((i for i, ln in enumerate(lines) if "ERROR:" in ln), max(len(lines) - 30, 0))
        raise K8sTestbedError(
            "\n".join(lines[first:]) or f"scripts/k8s-testbed exited {proc.returncode}"
        )
    folder = Path(out.strip().splitlines()[-1])
    for name in CONTROL_PLANE_BINARIES:
        if not (folder / name).is_file():
            raise K8sTestbedError(f"scripts/k8s-testbed printed {folder}, which has no {name}")
    return folder


def find_helm(bindir: Path) -> Path:
    """``helm`` next to the control-plane binaries, else the one on PATH."""
    for cand in (bindir / "helm", shutil.which("helm")):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return Path(cand)
    raise K8sTestbedError(f"no helm in {bindir} nor on PATH (scripts/k8s-testbed builds one)")


# --- small utilities -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGKILL when its parent dies (Linux only)."""
    if sys.platform != "linux":
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    kill = int(signal.SIGKILL)

    def preexec() -> None:  # between fork and exec: no imports, no allocation-heavy work
        prctl(1, kill, 0, 0, 0)  # PR_SET_PDEATHSIG

    return preexec


_PREEXEC = _pdeathsig_preexec()


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess:
    """A child process in a process group of its own, its output in a log file."""

    def __init__(self, name: str, args: list[str], log_path: Path, cwd: Path) -> None:
        self.name = name
        self.args = args
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(
                args,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_PREEXEC,
            )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds, reap the process."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)
            try:
                self.popen.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # a straggler in the group (there should be none) gets SIGKILL too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)


# --- certificates --------------------------------------------------------------------------------
class _Pki:
    """A throwaway CA and the certificates and keys the control plane needs (``cryptography``)."""

    def __init__(self, folder: Path) -> None:
        try:
            from cryptography import x509
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import ec, rsa
            from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
        except ImportError as exc:  # pragma: no cover - a dev dependency
            raise K8sTestbedError(
                "the Python package `cryptography` is needed to make the test cluster's "
                "certificates (pip install cryptography)"
            ) from exc
        self.x509, self.hashes, self.serialization = x509, hashes, serialization
        self.ec, self.rsa, self.eku, self.name_oid = ec, rsa, ExtendedKeyUsageOID, NameOID
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "asyncendpoints-test-ca")])
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca_file = self._write_cert("ca.crt", self.ca_cert)
        self.ca_key_file = self._write_key("ca.key", self.ca_key)

    def _write_cert(self, name: str, cert: Any) -> Path:
        path = self.folder / name
        path.write_bytes(cert.public_bytes(self.serialization.Encoding.PEM))
        return path

    def _write_key(self, name: str, key: Any) -> Path:
        path = self.folder / name
        path.write_bytes(
            key.private_bytes(
                self.serialization.Encoding.PEM,
                self.serialization.PrivateFormat.PKCS8,
                self.serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
        return path

    def issue(
        self,
        name: str,
        common_name: str,
        *,
        groups: tuple[str, ...] = (),
        server: bool = False,
        dns: tuple[str, ...] = (),
        ips: tuple[str, ...] = (),
    ) -> tuple[Path, Path]:
        """A leaf certificate signed by the CA; returns (certificate file, key file)."""
        x509, name_oid = self.x509, self.name_oid
        key = self.ec.generate_private_key(self.ec.SECP256R1())
        attrs = [x509.NameAttribute(name_oid.ORGANIZATION_NAME, g) for g in groups]
        attrs.append(x509.NameAttribute(name_oid.COMMON_NAME, common_name))
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([self.eku.SERVER_AUTH if server else self.eku.CLIENT_AUTH]),
                critical=False,
            )
        )
        if dns or ips:
            sans: list[Any] = [x509.DNSName(d) for d in dns]
            sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.ca_key, self.hashes.SHA256())
        return self._write_cert(f"{name}.crt", cert), self._write_key(f"{name}.key", key)

    def service_account_keys(self) -> tuple[Path, Path]:
        """The RSA key pair that signs service-account tokens: (private key, public key)."""
        key = self.rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pub = self.folder / "sa.pub"
        pub.write_bytes(
            key.public_key().public_bytes(
                self.serialization.Encoding.PEM,
                self.serialization.PublicFormat.SubjectPublicKeyInfo,
            )
        )
        return self._write_key("sa.key", key), pub


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(
    path: Path,
    server: str,
    ca_file: Path,
    *,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    token: str | None = None,
    name: str = "asyncendpoints-test",
) -> Path:
    """A self-contained kubeconfig (certificates embedded) for one user of the test cluster."""
    user: dict[str, str] = {}
    if cert_file and key_file:
        user["client-certificate-data"] = _b64(cert_file)
        user["client-key-data"] = _b64(key_file)
    if token:
        user["token"] = token
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_file)},
            }
        ],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
    }
    # JSON is YAML: no YAML library needed to write it
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)
    return path


def new_api_client(kubeconfig: Path | str) -> Any:
    """An authenticated ``kubernetes.client.ApiClient`` for a kubeconfig (close it when done)."""
    from kubernetes import config

    return config.new_client_from_config(config_file=str(kubeconfig))


# --- the control plane ---------------------------------------------------------------------------
_LIVE: set[ControlPlane] = set()


@atexit.register
def _stop_all() -> None:
    for plane in list(_LIVE):
        plane.stop()


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
        self.pki: _Pki | None = None

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
        _LIVE.add(self)
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
            _LIVE.discard(self)
            if os.environ.get("ASYNCENDPOINTS_KEEP_K8S_TESTBED") == "1":
                return
            # a work folder we made goes entirely; a given one keeps its logs and certificates
            doomed = self.workdir if self._own_workdir else self.workdir / "etcd-data"
            shutil.rmtree(doomed, ignore_errors=True)

    # -- pieces
    def _make_pki(self) -> None:
        pki = _Pki(self.workdir / "pki")
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
