"""The body-based router's serving certificate names the router, not the endpoint picker."""

from __future__ import annotations

import argparse

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from inferplane.bbr.command import configure, serving_cert_for
from inferplane.errors import UsageError


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.parse_args(list(argv))


def common_name(pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(pem)
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_secure_serving_generates_a_certificate_for_the_router() -> None:
    cert = serving_cert_for(args("--secure-serving", "true"))
    assert cert is not None
    assert common_name(cert.cert_pem) == "inferplane-bbr"


def test_cleartext_has_no_certificate_and_refuses_a_cert_path() -> None:
    assert serving_cert_for(args("--secure-serving", "false")) is None
    with pytest.raises(UsageError, match="--secure-serving true"):
        serving_cert_for(args("--secure-serving", "false", "--cert-path", "/nonexistent"))
