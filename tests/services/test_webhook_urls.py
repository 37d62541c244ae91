"""The webhook URL guard (SPEC §9): what is refused and why, after DNS resolution, and that the
connection goes to the address that was checked."""

from __future__ import annotations

import uuid

import pytest

from tests import webhook_receiver
from webapp.services import webhook_urls, webhooks
from webapp.services.webhook_urls import UnsafeURL, check


def _resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    """DNS as a table (names the test makes up, so no real lookup is needed)."""

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("Name or service not known")
        return table[host]

    return resolve


def _refused(url: str, *, allow_private: bool = False, require_https: bool = False, resolver=None) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(UnsafeURL) as refused:
        check(url, allow_private=allow_private, require_https=require_https,
              **({"resolver": resolver} if resolver else {}))
    return refused.value.reason


@pytest.mark.parametrize(("url", "says"), [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.8.9.10:8080/x", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped IPv6
    ("http://10.0.0.5/", "private network"),
    ("http://172.16.3.4/", "private network"),
    ("http://192.168.1.1/", "private network"),
    ("http://[fc00::1]/", "private network"),
    ("http://169.254.10.20/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://224.0.0.251/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://240.0.0.1/", "reserved"),
    ("http://100.64.1.1/", "not a public address"),  # shared address space (CGNAT)
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://[fd00:ec2::254]/", "cloud metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata"),
    ("http://2130706433/", "2130706433 resolves to 127.0.0.1"),  # 127.0.0.1 as one number
])
def test_addresses_that_are_not_public_are_refused(url, says):
    assert says in _refused(url)


def test_localhost_is_refused_after_resolution():
    reason = _refused("http://localhost:8080/hook")
    assert reason.startswith("localhost resolves to ") and "loopback" in reason


def test_every_resolved_address_must_be_public():
    dns = _resolver({"hooks.example": ["93.184.215.14"], "split.example": ["93.184.215.14", "10.1.1.1"],
                     "v6.example": ["2606:2800:220:1:248:1893:25c8:1946"]})
    assert check("https://hooks.example/x", allow_private=False, require_https=True, resolver=dns).address \
        == "93.184.215.14"
    assert check("https://v6.example/", allow_private=False, require_https=True, resolver=dns).port == 443
    assert _refused("https://split.example/", resolver=dns) == (
        "split.example resolves to 10.1.1.1, a private network address; webhooks may only call public addresses.")
    assert "does not resolve" in _refused("https://nowhere.example/", resolver=dns)


@pytest.mark.parametrize(("url", "says"), [
    ("", "Enter the URL"),
    ("hooks.example.com/x", "Only http and https"),
    ("ftp://93.184.215.14/", "Only http and https"),
    ("file:///etc/passwd", "Only http and https"),
    ("javascript:alert(1)", "Only http and https"),
    ("http://user:secret@93.184.215.14/", "user name and password"),
    ("http://user@93.184.215.14/", "user name and password"),
    ("http:///path-only", "no host"),
    ("http://93.184.215.14:99999/", "not a valid URL"),
    ("http://[::1/", "not a valid URL"),
    ("http://93.184.215.14/a b", "spaces or control characters"),
    ("http://93.184.215.14/\x00", "spaces or control characters"),
    ("https://" + "a" * 2000 + ".example/", "under 2,000 characters"),
])
def test_malformed_urls_are_refused(url, says):
    assert says in _refused(url)


def test_https_is_required_outside_development():
    assert "Use an https URL" in _refused("http://93.184.215.14/hook", require_https=True)
    assert check("https://93.184.215.14/hook", allow_private=False, require_https=True).scheme == "https"
    assert check("http://93.184.215.14/hook", allow_private=False, require_https=False).scheme == "http"


def test_the_setting_allows_private_addresses_but_never_metadata():
    for url in ("http://127.0.0.1:9000/", "http://localhost:9000/", "http://10.0.0.5/", "http://[::1]/"):
        assert check(url, allow_private=True, require_https=False)
    for url in ("http://169.254.169.254/", "http://[fd00:ec2::254]/", "http://metadata.google.internal/"):
        assert "cloud metadata" in _refused(url, allow_private=True)


def test_https_configuration_comes_from_the_environment_name(app):
    assert app.config["ENV_NAME"] == "development" and not webhooks.require_https()
    app.config["ENV_NAME"] = "production"
    assert webhooks.require_https()
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    with pytest.raises(UnsafeURL):
        webhooks.check_url("https://localhost/")


def test_the_connection_goes_to_the_address_that_was_checked():
    """The name is resolved once, by the guard; the POST connects to that address and tells the
    receiver the name in the Host header (no second lookup a DNS rebinding could answer)."""
    receiver = webhook_receiver.start(webhook_receiver.Receiver())
    try:
        port = receiver.server.server_address[1]
        receiver.secrets["/ok"] = "s3cret"
        prepared = webhooks.Prepared(delivery_id=uuid.uuid4(), webhook_id=uuid.uuid4(), webhook_name="t",
                                     url=f"http://localhost:{port}/ok", secret="s3cret", kind="test",
                                     body='{"id":"1"}', attempt=1)
        target = webhook_urls.check(prepared.url, allow_private=True, require_https=False)
        headers: dict[str, str] = {}
        pinned, extensions = webhooks._pinned(target, headers)
        assert pinned in (f"http://127.0.0.1:{port}/ok", f"http://[::1]:{port}/ok")
        assert headers["Host"] == f"localhost:{port}" and extensions == {}

        outcome = webhooks.post(prepared, allow_private=True, require_https=False, timeout=2)
        assert outcome.ok and outcome.status_code == 200, outcome
        [got] = receiver.at("/ok")
        assert got.host == f"localhost:{port}" and got.signature_ok

        refused = webhooks.post(prepared, allow_private=False, require_https=False, timeout=2)
        assert not refused.ok and refused.error.startswith("refused, not sent: localhost resolves to")
        assert len(receiver.received) == 1
    finally:
        webhook_receiver.shut(receiver)


def test_https_keeps_the_host_name_for_sni_and_certificate_checks():
    target = webhook_urls.check("https://hooks.example:8443/in?x=1", allow_private=False, require_https=True,
                                resolver=_resolver({"hooks.example": ["93.184.215.14"]}))
    headers: dict[str, str] = {}
    pinned, extensions = webhooks._pinned(target, headers)
    assert pinned == "https://93.184.215.14:8443/in?x=1"
    assert headers["Host"] == "hooks.example:8443" and extensions == {"sni_hostname": "hooks.example"}
