"""Certificates and keys for the control plane, generated with the openssl command line."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certificates:
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    sa_private_key: Path
    sa_public_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {proc.stderr.strip()}")


def generate(directory: Path, ips: tuple[str, ...] = ()) -> Certificates:
    """An EC P-256 CA, a serving certificate for 127.0.0.1/localhost (and `ips`: the real
    node's API address and the `kubernetes` Service IP) and SA signing keys."""
    directory.mkdir(parents=True, exist_ok=True)
    d = directory
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key", cwd=d)
    _openssl(
        "req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "30",
        "-subj", "/CN=krally-test-ca", "-out", "ca.crt", cwd=d,
    )  # fmt: skip
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "serving.key", cwd=d)
    _openssl(
        "req", "-new", "-key", "serving.key", "-subj", "/CN=kube-apiserver",
        "-out", "serving.csr", cwd=d,
    )  # fmt: skip
    # The SANs cover what a client may dial: loopback and the in-cluster service names.
    (d / "serving.ext").write_text(
        f"subjectAltName=IP:127.0.0.1,{''.join(f'IP:{ip},' for ip in ips)}"
        "IP:10.0.0.1,DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
        "DNS:kubernetes.default.svc.cluster.local\n"
        "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
    )
    _openssl(
        "x509", "-req", "-in", "serving.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "30", "-sha256", "-extfile", "serving.ext",
        "-out", "serving.crt", cwd=d,
    )  # fmt: skip
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sa.key", cwd=d)
    _openssl("ec", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)
    return Certificates(
        ca_cert=d / "ca.crt",
        ca_key=d / "ca.key",
        serving_cert=d / "serving.crt",
        serving_key=d / "serving.key",
        sa_private_key=d / "sa.key",
        sa_public_key=d / "sa.pub",
    )


def client(
    directory: Path, certs: Certificates, name: str, user: str, group: str
) -> tuple[Path, Path]:
    """A client certificate (CN=user, O=group) signed by the cluster CA: an identity that the
    API server's x509 authenticator knows, e.g. system:node:NAME in system:nodes."""
    d = directory
    key, csr, crt = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.crt"
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key.name, cwd=d)
    _openssl(
        "req", "-new", "-key", key.name, "-subj", f"/O={group}/CN={user}", "-out", csr.name, cwd=d
    )
    ext = d / f"{name}.ext"
    ext.write_text("extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n")
    _openssl(
        "x509", "-req", "-in", csr.name, "-CA", str(certs.ca_cert), "-CAkey", str(certs.ca_key),
        "-CAcreateserial", "-days", "30", "-sha256", "-extfile", ext.name, "-out", crt.name, cwd=d,
    )  # fmt: skip
    return crt, key
