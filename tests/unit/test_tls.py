"""bridge/tls.py: one verifying context per CA setting, shared by every client, following SSL_CERT_FILE."""

from __future__ import annotations

import ssl

import certifi
import pytest

from bridge import tls
from bridge.slack.api import make_client
from connectors.meta.graph import Graph


def test_one_context_per_setting_shared_by_every_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    first = tls.verifying()
    assert tls.verifying() is first and first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname
    assert tls.system() is tls.system() and tls.system() is not first
    graph = Graph("https://graph.example.com/v23.0", timeout=5)
    pool = graph.client._transport._pool  # type: ignore[attr-defined]
    assert pool._ssl_context is first
    assert make_client("xoxb-1", "https://slack.com/api/").ssl is tls.system()


def test_a_changed_ca_setting_gives_a_new_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    default = tls.verifying()
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    named = tls.verifying()
    assert named is not default and tls.verifying() is named
    monkeypatch.delenv("SSL_CERT_FILE")
    assert tls.verifying() is default


def test_repeating_the_same_alpn_list_leaves_the_shared_context_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    context = tls._client_context()
    monkeypatch.setattr(ssl.SSLContext, "set_alpn_protocols", lambda self, p: calls.append(list(p)))
    for _ in range(3):  # httpcore sets it before every new connection
        context.set_alpn_protocols(["http/1.1"])
    context.set_alpn_protocols(["http/1.1", "h2"])
    assert calls == [["http/1.1"], ["http/1.1", "h2"]]


def test_the_system_context_follows_the_cert_settings_as_openssl_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with_file = tls.system()
    assert with_file.cert_store_stats()["x509_ca"] > 0 and tls.system() is with_file
    monkeypatch.setenv("SSL_CERT_DIR", "/nonexistent")
    assert tls.system() is not with_file  # a new setting, a new context
