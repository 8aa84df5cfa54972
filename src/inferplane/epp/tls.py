"""TLS for the ext_proc port (`--secure-serving`): a certificate from `--cert-path`, or, as upstream does when no
path is given, a self-signed one made in memory at start.

Upstream (GIE `cmd/epp` / `pkg/common/tls`) serves TLS on 9002 by default and generates a self-signed certificate
when `--cert-path` is empty; data planes reach it without verifying the certificate (GIE's reference Envoy cluster has
an empty validation context, Istio's DestinationRule uses `insecureSkipVerify`, GKE does not validate backend
certificates). The health port stays plaintext: kubelet's gRPC probes do not speak TLS.
"""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import tempfile
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from inferplane.errors import InferplaneError, UsageError

VALIDITY = datetime.timedelta(days=365 * 10)  # upstream's self-signed certificate is valid for ten years


@dataclass(frozen=True)
class ServingCert:
    """PEM bytes of the serving certificate (chain) and its private key."""

    cert_pem: bytes
    key_pem: bytes


def load_cert_dir(cert_dir: Path) -> ServingCert:
    """`tls.crt` and `tls.key` from a directory (a mounted kubernetes.io/tls Secret)."""
    files = {}
    for name in ("tls.crt", "tls.key"):
        path = cert_dir / name
        if not path.is_file():
            raise UsageError(f"--cert-path {cert_dir}: {name} not found", hint="mount a kubernetes.io/tls Secret there")
        files[name] = path.read_bytes()
    return ServingCert(cert_pem=files["tls.crt"], key_pem=files["tls.key"])


def self_signed(
    hosts: tuple[str, ...] = ("localhost", "127.0.0.1"), common_name: str = "inferplane-epp"
) -> ServingCert:
    """A fresh self-signed serving certificate for `common_name` (the server it identifies), never written to disk.

    ECDSA P-256 rather than upstream's RSA-4096: generating it takes about a millisecond instead of a second or more
    of start-up CPU, and every data plane that talks to an EPP (Envoy, GKE's load balancers) accepts it.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "inferplane"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    sans: list[x509.GeneralName] = [x509.DNSName(socket.gethostname() or "localhost")]
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return ServingCert(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def add_grpc_port(server: grpc.aio.Server, address: str, cert: ServingCert | None = None) -> int:
    """Listen on `address` with TLS when a certificate is given, cleartext HTTP/2 otherwise; the bound port.

    Shared by the endpoint picker and the body-based router, which serve ext_proc the same way."""
    try:
        if cert is not None:
            creds = grpc.ssl_server_credentials([(cert.key_pem, cert.cert_pem)])
            bound = server.add_secure_port(address, creds)
        else:
            bound = server.add_insecure_port(address)
    except (RuntimeError, OSError) as exc:
        raise InferplaneError(f"cannot listen on {address}: {exc}", hint="is another process using it?") from None
    if bound == 0:
        raise InferplaneError(f"cannot listen on {address}", hint="is another process using the port?")
    return int(bound)


def ssl_context(cert: ServingCert) -> ssl.SSLContext:
    """A TLS server context for the h2grpc ext_proc server: TLS 1.2+, ALPN `h2` (what gRPC clients offer)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2"])
    # load_cert_chain reads files only: the PEMs go through a private temporary directory, removed at once
    with tempfile.TemporaryDirectory(prefix="inferplane-tls-") as tmp:
        crt, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        with open(crt, "wb") as f:
            f.write(cert.cert_pem)
        with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
            f.write(cert.key_pem)
        ctx.load_cert_chain(crt, key)
    return ctx
