"""The webhook URL guard (SPEC §9): a webhook may not make the inventory call its own network.

    target = check("https://hooks.example.com/x", allow_private=False, require_https=True)
    target.address                      # the resolved address to connect to (no second lookup)

Checked when a webhook is saved and again before every delivery, after DNS resolution: every
address the name resolves to must be public, so a name that resolves to 127.0.0.1 (`localhost`,
or a name an attacker points there later) is refused. Refused: a malformed URL, any scheme but
http and https (http only in development), user name or password in the URL, and loopback,
private, shared (CGNAT), link-local, multicast, unspecified, reserved and documentation
addresses, unless `allow_private` (`WEBHOOK_ALLOW_PRIVATE=true`, for tests and closed networks).
Cloud metadata endpoints are refused even then: no webhook has a reason to call them.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

URL_MAX = 2000
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})
METADATA_ADDRESSES = frozenset({
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack …
    ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
    ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class UnsafeURL(ValueError):
    """The URL is refused; `reason` is a sentence for the person who typed it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str  # as written (lower case, IDNA-encoded)
    port: int
    addresses: tuple[str, ...]  # every address the host resolved to, all allowed

    @property
    def address(self) -> str:
        """The address to connect to: the first one checked."""
        return self.addresses[0]


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (A and AAAA), in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


def parse(url: str, *, require_https: bool) -> tuple[str, str, int]:
    """(scheme, host, port) of a well-formed webhook URL, or UnsafeURL saying what is wrong.
    No DNS here: `check` resolves."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeURL("Enter the URL that receives the events, starting with https://.")
    if len(url) > URL_MAX:
        raise UnsafeURL(f"Keep the URL under {URL_MAX:,} characters.")
    if any(ord(c) < 0x21 or c == "\x7f" or 0xD800 <= ord(c) <= 0xDFFF for c in url):
        raise UnsafeURL("The URL holds spaces or control characters; encode them (%20).")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeURL("This is not a valid URL (check the host and the port).") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeURL("Only http and https URLs can receive webhooks.")
    if scheme == "http" and require_https:
        raise UnsafeURL("Use an https URL: events and their signature must not travel in clear text.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeURL("Remove the user name and password from the URL; the receiver checks the "
                        "signature instead.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeURL("The URL has no host name.")
    if not _is_ip(host):
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise UnsafeURL("The URL's host name is not valid.") from None
    return scheme, host, port or (443 if scheme == "https" else 80)


def check(url: str, *, allow_private: bool, require_https: bool,
          resolver: Resolver = resolve) -> Target:
    """The URL, parsed and resolved, if every address it resolves to may be called; otherwise
    UnsafeURL with the reason."""
    scheme, host, port = parse(url, require_https=require_https)
    if host in METADATA_HOSTS or host.endswith(".metadata.google.internal"):
        raise UnsafeURL(f"{host} is a cloud metadata service; webhooks may not call it.")
    if _is_ip(host):
        addresses = [host]
    else:
        try:
            addresses = resolver(host, port)
        except (OSError, UnicodeError):
            addresses = []
        if not addresses:
            raise UnsafeURL(f"The host name {host} does not resolve to an address.")
    for text in addresses:
        address = ipaddress.ip_address(text)
        refusal = address_refusal(address, allow_private=allow_private)
        if refusal:
            what, rule = refusal
            subject = f"{address} is" if text == host else f"{host} resolves to {address},"
            raise UnsafeURL(f"{subject} {what}; {rule}.")
    return Target(url=url, scheme=scheme, host=host, port=port, addresses=tuple(addresses))


def address_refusal(address: IPAddress, *, allow_private: bool) -> tuple[str, str] | None:
    """Why a webhook may not call this address, as (what it is, the rule); None: it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is not None:
            return address_refusal(embedded, allow_private=allow_private)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address", "webhooks may not call it"
    if allow_private:
        return None
    for test, what in (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address (this machine)"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),
        ("is_private", "a private network address"),
    ):
        if getattr(address, test):
            return what, "webhooks may only call public addresses"
    if not address.is_global:  # shared (100.64/10, CGNAT) and the like
        return "not a public address", "webhooks may only call public addresses"
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
