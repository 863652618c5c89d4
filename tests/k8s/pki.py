"""Certificates and kubeconfigs for the test control plane (no pytest in here).

:class:`Pki` makes a throwaway CA and the certificates and keys kube-apiserver and its clients
need (a serving certificate, client certificates, the service-account signing key pair);
:func:`write_kubeconfig` writes a self-contained kubeconfig for one user, and
:func:`new_api_client` opens a ``kubernetes.client.ApiClient`` from one.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
from pathlib import Path
from typing import Any

from tests.k8s.binaries import K8sTestbedError


class Pki:
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
