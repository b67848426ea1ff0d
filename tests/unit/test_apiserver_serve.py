"""Serving: TLS by default, plain HTTP only on loopback."""

from __future__ import annotations

import logging

import pytest

from dockyard.apiserver import __main__ as entry
from dockyard.apiserver import auth, serve


def test_plain_http_only_on_loopback() -> None:
    assert serve.is_loopback("127.0.0.1") and serve.is_loopback("::1") and serve.is_loopback("localhost")
    assert not serve.is_loopback("0.0.0.0") and not serve.is_loopback("10.0.0.1") and not serve.is_loopback("example")
    assert serve.config(object(), insecure_http=True).ssl_certfile is None
    with pytest.raises(serve.InsecureListen):
        serve.config(object(), host="0.0.0.0", insecure_http=True)
    with pytest.raises(ValueError):
        serve.config(object())  # TLS needs a certificate
    tls = serve.config(object(), cert="c.pem", key="k.pem")
    assert tls.ssl_certfile == "c.pem" and tls.access_log is False


def test_entry_point_refuses_plain_http_off_loopback(tmp_path, capsys) -> None:
    code = entry.main(["--data-dir", str(tmp_path / "d"), "--host", "0.0.0.0", "--insecure-http", "--port", "0"])
    assert code == 2 and "loopback" in capsys.readouterr().err


def test_webhook_secrets_are_redacted_from_paths_and_uvicorn_records() -> None:
    path = "/apis/dockyard.dev/v1alpha1/namespaces/ns/buildconfigs/bc/webhooks/TOPSECRET/generic"
    assert auth.redact_path(path) == path.replace("TOPSECRET", "<redacted>")
    assert auth.redact_path(path + "/x?y") == path.replace("TOPSECRET", "<redacted>") + "/x?y"
    assert auth.redact_path("/api/v1/pods") == "/api/v1/pods"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "POST", path, "1.1", 202),
        None,
    )
    assert serve.RedactWebhookSecrets().filter(record)
    assert "TOPSECRET" not in record.getMessage() and "<redacted>" in record.getMessage()
    serve.config(object(), insecure_http=True)
    assert all(
        any(isinstance(f, serve.RedactWebhookSecrets) for f in logging.getLogger(n).filters)
        for n in serve.UVICORN_LOGGERS
    )
