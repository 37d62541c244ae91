"""What a discovery file covered (SPEC §6, "staleness is honest"): the hosts and TCP ports an
nmap scan probed, or the cloud accounts and regions a listing enumerated.

An asset that a run did not report counts as *missed* only when the run covered it: its host
(or an alias) was a scan target and its port in the scan's port list, or its cloud account,
region and resource type were listed. Absence from anything else says nothing.

Pure, like the parsers: `Coverage` is built by them and stored on the import run as JSON
(`as_json` / `from_json`); the service layer (`webapp/services/coverage.py`) asks `covers_*`
about the assets it reads.

nmap: the ports come from `<scaninfo protocol="tcp" services="1-1024,3306,5432"/>` (one element
per scanned protocol, `services` a comma list of ports and `a-b` ranges, as the nmap DTD
writes it); the hosts from every `<host>` entry, up or down (addresses and host names), and
the IP literals, CIDR blocks and octet ranges (`10.0.0.1-20`) among the targets in
`<nmaprun args=…>` (down hosts are not written to the XML without `-v`, but nmap probed them).
Host names among the targets count only through a `<host>` entry: a name that did not resolve
was never scanned. `--exclude` targets are left out.

Cloud: a scope is (provider, account, region, resource kind) from each listed resource's id:
an ARN `arn:aws:rds:<region>:<account>:<db|cluster>:<id>`, a Cloud SQL self-link
`…/projects/<project>/instances/<name>` with the instance's region, an Azure id
`/subscriptions/<id>/resourceGroups/…/providers/<type>/<name>` with its location. A listing
says nothing about an account or region it shows no resource of.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from webapp.discovery import normalise

MAX_PORT = 65535
# nmap options that take a value as the next argument (so the value is not a target)
_VALUED = frozenset({
    "-p", "-o", "-oX", "-oN", "-oG", "-oA", "-oS", "-oM", "-iL", "-iR", "-e", "-S", "-D", "-g",
    "-b", "-M", "--exclude", "--excludefile", "--source-port", "--script", "--script-args",
    "--script-args-file", "--top-ports", "--port-ratio", "--max-retries", "--min-rate",
    "--max-rate", "--host-timeout", "--scan-delay", "--max-scan-delay", "--version-intensity",
    "--data-length", "--data", "--data-string", "--ttl", "--dns-servers", "--resume",
    "--datadir", "--stylesheet", "--max-parallelism", "--min-parallelism", "--min-hostgroup",
    "--max-hostgroup", "--min-rtt-timeout", "--max-rtt-timeout", "--initial-rtt-timeout",
    "--mtu", "--proxies", "--spoof-mac", "--ip-options", "--servicedb", "--versiondb",
    "--script-timeout", "--stats-every", "--scanflags", "--exclude-ports", "-sI", "--log-errors",
})
_OCTET_RANGE = re.compile(r"^(\d{1,3}(?:-\d{1,3})?)(?:\.(\d{1,3}(?:-\d{1,3})?)){3}$")
_ARN = re.compile(r"^arn:(aws[a-z-]*):rds:([^:]+):([^:]+):([^:]+):")
_SELF_LINK = re.compile(r"/projects/([^/]+)/instances/[^/]+$")
_AZURE = re.compile(r"^/subscriptions/([^/]+)/resourcegroups/[^/]+/providers/([^/]+/[^/]+)/")


def parse_ports(text: str) -> list[tuple[int, int]]:
    """`1-1024,3306,5432` -> sorted, merged (low, high) ranges; malformed parts are ignored.
    A protocol prefix (`T:`) and open ends (`-1024`, `60000-`) are read as nmap's `-p` reads them."""
    ranges: list[tuple[int, int]] = []
    for part in (text or "").split(","):
        part = part.strip()
        if ":" in part:
            part = part.split(":", 1)[1]
        if not part:
            continue
        low_text, dash, high_text = part.partition("-")
        try:
            low = int(low_text) if low_text else 1
            high = (int(high_text) if high_text else MAX_PORT) if dash else low
        except ValueError:
            continue
        low, high = max(low, 1), min(high, MAX_PORT)
        if low <= high:
            ranges.append((low, high))
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def format_ports(ranges: Iterable[tuple[int, int]]) -> str:
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


def _octet_networks(target: str) -> list[str]:
    """`10.0.0.1-20` / `10.0.*.*`-style octet ranges as the CIDR blocks that cover them (at most
    256 blocks; a wider spread is ignored)."""
    if "*" in target:
        target = target.replace("*", "0-255")
    if not _OCTET_RANGE.match(target):
        return []
    octets = []
    for part in target.split("."):
        low, _, high = part.partition("-")
        octets.append((int(low), int(high or low)))
    if any(lo > hi or hi > 255 for lo, hi in octets):
        return []
    first, last = (ipaddress.IPv4Address(".".join(str(o[i]) for o in octets)) for i in (0, 1))
    if all(lo == hi for lo, hi in octets[:3]):  # the common case: a range in the last octet
        return [str(n) for n in ipaddress.summarize_address_range(first, last)]
    # ranges in several octets: every address between first and last is an over-estimate, so
    # only whole ranges (0-255) below the first ranged octet are accepted
    varying = next(i for i, (lo, hi) in enumerate(octets) if lo != hi)
    if any(o != (0, 255) for o in octets[varying + 1:]):
        return []
    return [str(n) for n in ipaddress.summarize_address_range(first, last)][:256]


def targets(args: str) -> tuple[list[str], list[str], list[str]]:
    """(IP addresses, CIDR networks, excluded networks) named on an nmap command line."""
    try:
        words = shlex.split(args or "")
    except ValueError:
        words = (args or "").split()
    hosts: list[str] = []
    networks: list[str] = []
    excluded: list[str] = []
    skip_next = False
    for i, word in enumerate(words[1:], start=1):
        if skip_next:
            skip_next = False
            if words[i - 1] == "--exclude":
                excluded += _networks_of(word.split(","))
            continue
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            if name in _VALUED and "=" not in word:
                skip_next = True
            elif name == "--exclude":
                excluded += _networks_of(word.split("=", 1)[1].split(","))
            continue
        address = normalise.ip(word)
        if address:
            hosts.append(address)
            continue
        networks += _networks_of([word])
    return hosts, networks, excluded


def _networks_of(words: Iterable[str]) -> list[str]:
    found: list[str] = []
    for word in words:
        word = word.strip()
        if "/" in word:
            try:
                found.append(str(ipaddress.ip_network(word, strict=False)))
            except ValueError:
                continue  # a host name with a mask (`db.example.com/24`): resolved by nmap, unknown here
        elif normalise.ip(word):
            found.append(str(ipaddress.ip_network(normalise.ip(word) or word)))
        else:
            found += _octet_networks(word)
    return found


def cloud_scope(cloud_id: Any, region: Any) -> tuple[str, str, str, str] | None:
    """(provider, account, region, kind) of a cloud resource, or None when its id says too little.
    For AWS the provider is the ARN's partition (`aws`, `aws-cn`, `aws-us-gov`)."""
    text = str(cloud_id or "").strip()
    arn = _ARN.match(text)
    if arn:
        return arn.group(1), arn.group(3), arn.group(2), arn.group(4)
    place = str(region or "").strip().lower().replace(" ", "")
    if not place:
        return None
    link = _SELF_LINK.search(text.rstrip("/"))
    if link and text.startswith("https://"):
        return "gcp", link.group(1), place, "instances"
    azure = _AZURE.match(text.lower())
    if azure:
        return "azure", azure.group(1), place, azure.group(2)
    return None


def scope_prefixes(scope: tuple[str, str, str, str] | list[str]) -> list[str]:
    """The starts every cloud id in `scope` has (for an indexed prefix search); the region of a
    Cloud SQL or Azure resource is not in its id, so those prefixes also bring other regions."""
    provider, account, region, kind = scope
    if provider == "gcp":
        return [f"https://sqladmin.googleapis.com/sql/{v}/projects/{account}/instances/"
                for v in ("v1beta4", "v1")]
    if provider == "azure":
        return [f"/subscriptions/{account}/"]
    return [f"arn:{provider}:rds:{region}:{account}:{kind}:"]


@dataclass
class Coverage:
    """What one import covered. Empty (`covers_nothing`) when the file says nothing usable."""

    hosts: list[str] = field(default_factory=list)  # canonical names and addresses
    networks: list[str] = field(default_factory=list)  # CIDR blocks
    excluded: list[str] = field(default_factory=list)
    tcp_ports: list[tuple[int, int]] = field(default_factory=list)
    scopes: list[tuple[str, str, str, str]] = field(default_factory=list)

    @property
    def covers_nothing(self) -> bool:
        return not self.scopes and not (self.tcp_ports and (self.hosts or self.networks))

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.tcp_ports:
            data["tcp_ports"] = format_ports(self.tcp_ports)
        for name in ("hosts", "networks", "excluded"):
            if getattr(self, name):
                data[name] = list(getattr(self, name))
        if self.scopes:
            data["scopes"] = [list(s) for s in self.scopes]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Coverage:
        data = data or {}
        return cls(
            hosts=list(data.get("hosts") or []), networks=list(data.get("networks") or []),
            excluded=list(data.get("excluded") or []), tcp_ports=parse_ports(data.get("tcp_ports") or ""),
            scopes=[tuple(s) for s in data.get("scopes") or []],  # type: ignore[misc]
        )

    def covers_port(self, port: int | None) -> bool:
        return port is not None and any(low <= port <= high for low, high in self.tcp_ports)

    def covers_host(self, names: Iterable[str]) -> bool:
        """Whether any of an asset's host names and addresses was a scan target (and none of
        its addresses excluded)."""
        names = list(names)
        addresses = [a for a in (_address(n) for n in names) if a is not None]
        if any(a in net for a in addresses for net in _parsed(self.excluded)):
            return False
        if set(names) & set(self.hosts):
            return True
        return any(a in net for a in addresses for net in _parsed(self.networks))

    def covers_cloud(self, cloud_id: Any, region: Any) -> bool:
        scope = cloud_scope(cloud_id, region)
        return scope is not None and scope in set(self.scopes)


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None


def _parsed(networks: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    found = []
    for text in networks:
        try:
            found.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            continue
    return found


def of_cloud_records(records: Iterable[Any]) -> Coverage:
    """A cloud listing's coverage: the scopes of the resources it lists."""
    scopes: dict[tuple[str, str, str, str], None] = {}
    for record in records:
        if getattr(record, "error", None) is not None:
            continue
        scope = cloud_scope(record.fields.get("cloud_resource_id"), record.fields.get("region"))
        if scope is not None:
            scopes[scope] = None
    return Coverage(scopes=list(scopes))
