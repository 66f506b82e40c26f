"""The webhook's pure parts: its certificate, the names it is valid for, its settings and the
refusal message."""

from __future__ import annotations

import datetime
import ipaddress

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from krally.kube.operator import webhook
from krally.kube.operator.settings import Settings


def _sans(pem: bytes) -> list[str]:
    cert = x509.load_pem_x509_certificate(pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(n.value) for n in names]


def test_the_certificate_is_signed_by_its_ca_for_the_hosts():
    tls = webhook.generate_tls(["krally-webhook.krally-system.svc", "127.0.0.1"])
    ca = x509.load_pem_x509_certificate(tls.ca)
    cert = x509.load_pem_x509_certificate(tls.cert)
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert _sans(tls.cert) == ["krally-webhook.krally-system.svc", "127.0.0.1"]
    cert_sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in cert_sans.get_values_for_type(x509.IPAddress)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    # Valid for years: no rotation step for a human.
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert left > datetime.timedelta(days=365 * 5)


def test_the_secret_data_round_trips():
    tls = webhook.generate_tls(["x.ns.svc"])
    assert webhook.TLS.from_secret_data(tls.to_secret_data()) == tls


def test_hosts_are_the_service_names_or_the_url_host():
    service = Settings(webhook_service="hook")
    assert webhook.hosts_for(service, "sys") == ["hook.sys.svc", "hook.sys.svc.cluster.local"]
    local = Settings(webhook_url="https://127.0.0.1:9443")
    assert webhook.hosts_for(local, "sys") == ["127.0.0.1"]


def test_settings_from_env_and_flag():
    assert Settings.from_env({}).webhook is False
    got = Settings.from_env(
        {
            "KRALLY_WEBHOOK": "1",
            "KRALLY_WEBHOOK_PORT": "8443",
            "KRALLY_WEBHOOK_URL": "https://10.0.0.1:8443",
            "KRALLY_WEBHOOK_SERVICE": "s",
            "KRALLY_WEBHOOK_SECRET": "tls",
        }
    )
    assert (got.webhook, got.webhook_port, got.webhook_url) == (True, 8443, "https://10.0.0.1:8443")
    assert (got.webhook_service, got.webhook_secret) == ("s", "tls")
    assert Settings.load({}, webhook=True).webhook is True


def test_the_refusal_lists_every_problem():
    message = webhook.problems_message(["spec.a: bad", "spec.b: worse"])
    assert "spec.a: bad" in message and "spec.b: worse" in message
