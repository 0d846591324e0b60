"""The platforms' file links, emulated: an HTTPS file server on ``127.0.0.1`` for customers' photos and files.

Platform file links are https (Meta's CDN links, a generic source's attachments), and dmbridge fetches nothing
else. This server answers ``https://127.0.0.1:PORT/v/{key}/{name}`` with a certificate for ``127.0.0.1`` (IP
SAN) issued at start by a throwaway CA; :attr:`Cdn.ca_file` is that CA's PEM. The bridge trusts it through
ordinary configuration: httpx reads the standard ``SSL_CERT_FILE`` variable (it replaces the default bundle),
and ``DMBRIDGE_FETCH_PRIVATE=true`` lets it fetch from a loopback address. A link made with a ``ttl`` answers 403
once it has expired, as Meta's signed CDN links do; bodies are streamed, with their Content-Length (``put_path``
serves a file from disk, a chunk at a time, for files too large to hold: the benchmarks' 200 MB video).

The CA and the certificate are made once per process, in one folder, and shared by every CDN of the process:
``SSL_CERT_FILE`` is process-wide, so every sandbox of the process names the same file.
"""

from __future__ import annotations

import atexit
import datetime
import ipaddress
import mimetypes
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from bridge.sandbox.server import HttpServer

CHUNK = 64 * 1024
KINDS = {"image": "image/jpeg", "video": "video/mp4", "audio": "audio/mp4", "file": "application/octet-stream"}

_made: Path | None = None
_made_lock = threading.Lock()


def certificates() -> Path:
    """The folder holding ``ca.pem``, ``cert.pem`` (for 127.0.0.1) and ``key.pem``, made on first use in this
    process (removed when it exits): one ``SSL_CERT_FILE`` path serves every sandbox of the process."""
    global _made
    with _made_lock:
        if _made is None:
            folder = Path(tempfile.mkdtemp(prefix="dmbridge-cdn-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            for name, pem in zip(("ca.pem", "cert.pem", "key.pem"), _issue(), strict=True):
                (folder / name).write_bytes(pem)
            (folder / "key.pem").chmod(0o600)
            _made = folder
        return _made


def tls_files() -> dict[str, str]:
    """``HttpServer``'s keyword arguments to serve over https with the sandbox's certificate for 127.0.0.1."""
    folder = certificates()
    return {"ssl_certfile": str(folder / "cert.pem"), "ssl_keyfile": str(folder / "key.pem")}


def _issue() -> tuple[bytes, bytes, bytes]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dmbridge sandbox CDN CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return ca.public_bytes(pem), leaf.public_bytes(pem), key_pem


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class _File:
    data: bytes | Path
    content_type: str
    expires: float | None


class Cdn:
    """``put`` bytes, get an https link; ``hits(url)`` counts the GETs each link answered (expired ones too)."""

    def __init__(self) -> None:
        self.folder = certificates()
        self._files: dict[str, _File] = {}
        self._hits: dict[str, int] = {}
        self.links: list[str] = []
        """Every link made, in order."""
        self._lock = threading.Lock()
        self.http = HttpServer(
            Starlette(routes=[Route("/v/{key}/{name}", self._serve, methods=["GET"])]), **tls_files()
        )

    @property
    def ca_file(self) -> str:
        """The PEM a client must trust (``SSL_CERT_FILE``) to fetch from this server."""
        return str(self.folder / "ca.pem")

    @property
    def url(self) -> str:
        return self.http.url

    def start(self) -> None:
        self.http.start()

    def stop(self) -> None:
        self.http.stop()

    def put(self, data: bytes | Path, name: str, content_type: str | None = None, ttl: float | None = None) -> str:
        """Serve ``data`` (bytes, or a file read from disk at each request) as ``name``; the link answers 403 from
        ``ttl`` seconds on (never, without one)."""
        key = secrets.token_hex(12)
        expires = None if ttl is None else time.time() + ttl
        kind = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        url = f"{self.url}/v/{key}/{quote(name)}"
        if expires is not None:
            url += f"?oe={int(expires):X}"  # Meta's links carry their expiry (hex epoch seconds) too
        with self._lock:
            self._files[key] = _File(data, kind, expires)
            self.links.append(url)
        return url

    def put_kind(self, data: bytes, kind: str, name: str, ttl: float | None = None) -> str:
        """``put`` for a platform's attachment type (image, video, audio, file): the name's type, else the kind's."""
        return self.put(data, name, mimetypes.guess_type(name)[0] or KINDS.get(kind), ttl)

    def hits(self, url: str) -> int:
        with self._lock:
            return self._hits.get(_key(url), 0)

    async def _serve(self, request: Request) -> Response:
        key = request.path_params["key"]
        with self._lock:
            self._hits[key] = self._hits.get(key, 0) + 1
            file = self._files.get(key)
        if file is None:
            return PlainTextResponse("Not Found", status_code=404)
        if file.expires is not None and time.time() >= file.expires:
            return PlainTextResponse("URL signature expired", status_code=403)
        data = file.data
        if isinstance(data, Path):
            return FileResponse(data, media_type=file.content_type, content_disposition_type="inline")

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(data), CHUNK):
                yield data[start : start + CHUNK]

        return StreamingResponse(chunks(), media_type=file.content_type, headers={"Content-Length": str(len(data))})


def _key(url: str) -> str:
    parts = url.split("/v/", 1)
    return parts[1].split("/", 1)[0] if len(parts) == 2 else ""
