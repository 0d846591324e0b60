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
