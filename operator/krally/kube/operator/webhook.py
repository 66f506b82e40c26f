"""The operator's validating admission webhook: plugin configs refused at ``kubectl apply``.

The CRD's schema and CEL rules refuse what they can say; what needs the plugins (every
registered plugin's ``CONFIG_SCHEMA``, the scenario's declared argument types, unknown plugin
names) is :func:`krally.kube.operator.admission.validate`, the very check the operator runs
before it creates anything. This module serves it at apply time through kopf's admission
machinery (``@kopf.on.validate`` + ``settings.admission``):

- the certificate is the operator's own: a CA and a serving certificate made with
  ``cryptography`` at start (no human step), kept in a Secret when ``KRALLY_WEBHOOK_SECRET`` is
  set so every replica serves the same one (the first replica creates it; a 409 means another
  did, and its certificate is read back);
- kopf manages the ``ValidatingWebhookConfiguration`` named :data:`CONFIGURATION` (its
  ``managed`` mode): it creates it if absent and keeps its webhooks and ``caBundle`` current;
- the API server reaches the webhook through the Service ``KRALLY_WEBHOOK_SERVICE`` in the
  operator's namespace (the shipped install), or at ``KRALLY_WEBHOOK_URL`` (a local operator).

Failure policy: **Ignore** (fail open). The operator validates every task again before it runs
anything and ends a bad one Failed/InvalidSpec naming the field, so an unreachable webhook
never lets a bad task run; failing closed would instead refuse every ``kubectl apply`` of a
BenchmarkTask while the operator is down or being upgraded. The webhook is persistent (kept
when an operator stops) so one replica's shutdown does not drop it for the others.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import logging
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kopf
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from krally.api import names
from krally.kube.operator import admission
from krally.kube.operator.apply import load_or_create_secret
from krally.kube.operator.settings import Settings

log = logging.getLogger("krally.operator")

# The ValidatingWebhookConfiguration kopf manages (cluster-scoped; its RBAC is limited to it).
CONFIGURATION = "krally.dev"
# The Service's port (the shipped install maps it to the container's KRALLY_WEBHOOK_PORT).
SERVICE_PORT = 443
_YEARS = 10  # no rotation step for a human: the CA and certificate outlive the install


@dataclass(frozen=True)
class TLS:
    """PEM bytes: the CA the API server trusts (caBundle) and the serving certificate."""

    ca: bytes
    cert: bytes
    key: bytes

    def to_secret_data(self) -> dict[str, str]:
        return {
            "ca.crt": base64.b64encode(self.ca).decode(),
            "tls.crt": base64.b64encode(self.cert).decode(),
            "tls.key": base64.b64encode(self.key).decode(),
        }

    @classmethod
    def from_secret_data(cls, data: dict[str, str]) -> TLS:
        return cls(
            ca=base64.b64decode(data["ca.crt"]),
            cert=base64.b64decode(data["tls.crt"]),
            key=base64.b64decode(data["tls.key"]),
        )


def generate_tls(hosts: list[str], now: datetime.datetime | None = None) -> TLS:
    """A new CA and a serving certificate for ``hosts`` (DNS names or IP addresses)."""
    now = now or datetime.datetime.now(datetime.UTC)
    until = now + datetime.timedelta(days=365 * _YEARS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "krally webhook CA")])
    ca = (
        _certificate(ca_name, ca_name, ca_key.public_key(), now, until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    cert = (
        _certificate(subject, ca_name, key.public_key(), now, until)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return TLS(
        ca=ca.public_bytes(pem),
        cert=cert.public_bytes(pem),
        key=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


def _certificate(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime.datetime,
    until: datetime.datetime,
) -> x509.CertificateBuilder:
    """A certificate's common part: valid from five minutes ago (clock skew) until ``until``."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(until)
    )


def hosts_for(settings: Settings, namespace: str) -> list[str]:
    """The names the API server may use to reach the webhook: the URL's host, else the
    Service's DNS names."""
    if settings.webhook_url:
        host = urllib.parse.urlsplit(settings.webhook_url).hostname
        return [host or "localhost"]
    service = settings.webhook_service
    return [f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


def load_tls(settings: Settings, namespace: str, core: Any | None) -> TLS:
    """The certificate: from the Secret (created on first start) when one is configured, so
    every replica serves the same; else a fresh one for this process."""
    fresh = generate_tls(hosts_for(settings, namespace))
    if not settings.webhook_secret or core is None:
        return fresh

    data = load_or_create_secret(core, namespace, settings.webhook_secret, fresh.to_secret_data())
    return TLS.from_secret_data(data)


class Server(kopf.WebhookServer):
    """kopf's HTTPS webhook server with krally's certificate, reporting the Service (not a
    URL) as the client config when the API server reaches the operator through one."""

    def __init__(
        self, *, tls: TLS, port: int, url: str | None, service: tuple[str, str] | None
    ) -> None:
        # kopf's SSL context loads files; they live in a private temporary folder.
        folder = Path(tempfile.mkdtemp(prefix="krally-webhook-"))
        (folder / "tls.crt").write_bytes(tls.cert)
        (folder / "tls.key").write_bytes(tls.key)
        (folder / "tls.key").chmod(0o600)
        parsed = urllib.parse.urlsplit(url) if url else None
        super().__init__(
            addr="0.0.0.0" if service else (parsed.hostname if parsed else None),
            port=port,
            host=parsed.hostname if parsed else None,
            cadata=tls.ca,
            certfile=folder / "tls.crt",
            pkeyfile=folder / "tls.key",
        )
        self.service = service

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        async for config in super().__call__(fn):
            if self.service:
                namespace, name = self.service
                config = {
                    "caBundle": config["caBundle"],
                    "service": {"namespace": namespace, "name": name, "port": SERVICE_PORT},
                }
            yield config


def problems_message(problems: list[str]) -> str:
    """The refusal ``kubectl`` shows: every problem, each naming its field."""
    return "BenchmarkTask refused by krally: " + "; ".join(problems)


def register(
    krally_settings: Settings,
    namespace: str,
    registry: kopf.OperatorRegistry,
    read_account: Callable[[str, str], Awaitable[Mapping[str, Any] | None]] | None = None,
) -> None:
    """The validating handler (CREATE only: the CRD's CEL rules keep the spec immutable).
    ``read_account(namespace, name)`` reads a ServiceAccount a hook names, so a task borrowing
    one its admin did not opt in is refused at apply too (None: that check waits for the
    operator's own admission)."""

    @kopf.on.validate(
        names.GROUP,
        names.VERSION,
        names.PLURAL,
        id="spec",
        operations=["CREATE"],
        persistent=True,
        side_effects=False,
        ignore_failures=True,  # failurePolicy Ignore: see the module docstring
        registry=registry,
    )
    async def validate_spec(spec: kopf.Spec, namespace: str | None, **_: Any) -> None:
        accounts = None
        if read_account is not None and namespace:
            accounts = {
                name: await read_account(namespace, name)
                for name in admission.named_service_accounts(spec)
            }
        problems, _warnings = await asyncio.to_thread(
            admission.validate, dict(spec), krally_settings, accounts
        )
        if problems:
            raise kopf.AdmissionError(problems_message(problems), code=422)


def configure(
    settings: kopf.OperatorSettings, krally_settings: Settings, namespace: str, core: Any
) -> None:
    """Serve the webhook and let kopf manage its configuration (called at startup)."""
    tls = load_tls(krally_settings, namespace, core)
    service = None if krally_settings.webhook_url else (namespace, krally_settings.webhook_service)
    settings.admission.server = Server(
        tls=tls,
        port=krally_settings.webhook_port,
        url=krally_settings.webhook_url,
        service=service,
    )
    settings.admission.managed = CONFIGURATION
    where = krally_settings.webhook_url or f"service {namespace}/{krally_settings.webhook_service}"
    log.info("admission webhook on port %d, reached at %s", krally_settings.webhook_port, where)
