"""`nmap-xml`: nmap `-oX` output of a version scan (`-sV`) (SPEC §6, format 3).

Safety. The XML is parsed with defusedxml: entity declarations (billion laughs, quadratic
blow-up) and external entities/DTDs are refused with a DiscoveryError naming the reason. A
document type declaration is allowed only as nmap writes it, `<!DOCTYPE nmaprun>` (no
SYSTEM/PUBLIC id), because nmap puts it into every file and real scans must parse. Malformed or truncated XML is
a DiscoveryError with the line and column. Parsing streams through the document without
building a tree, so a 100,000-port scan costs little memory.

What becomes an asset. Only `state="open"` TCP ports whose service nmap *identified* as a
database: by product (`PostgreSQL DB`, `MySQL`, `MariaDB`, `Microsoft SQL Server 2019`,
`Oracle TNS listener`, `MongoDB`, `Redis key-value store`, `Elasticsearch REST API`,
`Apache Cassandra`, `IBM DB2`…) or, without a product, by the service name of a probe match
(`postgresql`, `mysql`, `ms-sql-s`, `oracle-tns`, `mongodb`, `redis`…). A database-looking port
whose service name comes from the port table (`method="table"`, nmap's guess from the port
number) gives a file warning and no asset: an engine guessed from a port number would be
written as a fact. One nmap could not fingerprint at all is a sighting-only record (below). Closed, filtered
and `open|filtered` ports are ignored.

Host and names. The host is the scanned address (IPv4 preferred, else IPv6): it is what nmap
actually reached, it is always present, and the record key is built from it. The `<hostnames>`
(user-given target name first, then PTR) become aliases, lower-cased without the trailing dot,
and every address of the host goes to `ip_addresses`, so the matching step learns the
name<->IP bridges. The asset name is `<first host name or address>:<port>`.

Versions. product/version fill engine/engine_version. nmap often reports a range
(`9.6.0 or later`, `5.0.0 - 5.0.7`, `3.X`): the text is kept as the engine version and
`metadata.nmap_version_range` is set to true so matching can treat it as inexact. For MariaDB
behind a MySQL banner (`5.5.5-10.3.23-MariaDB-…`) the engine is mariadb and the version the
MariaDB one. The raw product/version/extra info and CPEs are kept in metadata (`nmap_*`).

Unidentified open ports. An open TCP port nmap could not fingerprint (`tcpwrapped`, `unknown`,
no service name) becomes a *sighting-only* record (`sighting_only`, host and port, no engine):
the import counts it as a sighting of an asset that already has that address and port, and
skips it otherwise; it never creates an asset nor sets an engine (SPEC §6).

Coverage. The scan's targets and TCP port list (`<scaninfo>`, `args`, every `<host>` entry up
or down) become `ParseResult.coverage` (webapp/discovery/coverage.py), which staleness reads.

Record key: `nmap:<address>:<port>/tcp` (IPv6 addresses in brackets). A host that appears
twice in one scan (two target names for one address) is merged: one record per address and
port, with the names of both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from defusedxml import (
    DefusedXmlException,
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from webapp.discovery import coverage, normalise
from webapp.discovery.base import (
    Content,
    DiscoveredRecord,
    DiscoveryError,
    Format,
    ParseResult,
    Warnings,
    register,
)

NAME = "nmap-xml"

# (substring of the lower-cased product, engine); first match wins, so MariaDB before MySQL.
_PRODUCTS = (
    ("mariadb", "mariadb"),
    ("mysql", "mysql"),
    ("postgresql", "postgresql"),
    ("microsoft sql server", "mssql"),
    ("oracle tns", "oracle"),
    ("oracle database", "oracle"),
    ("oracle rdbms", "oracle"),
    ("mongodb", "mongodb"),
    ("redis", "redis"),
    ("elasticsearch", "elasticsearch"),
    ("cassandra", "cassandra"),
    ("db2", "db2"),
)
# service names of nmap probe matches (nmap-service-probes) for database protocols
_SERVICES = {
    "postgresql": "postgresql",
    "mysql": "mysql",
    "ms-sql-s": "mssql",
    "oracle-tns": "oracle",
    "oracle": "oracle",
    "mongodb": "mongodb",
    "mongod": "mongodb",
    "redis": "redis",
    "cassandra": "cassandra",
    "ibm-db2": "db2",
    "db2": "db2",
}
# ports where an unidentified service is worth a warning (the usual database listeners)
DATABASE_PORTS = frozenset(
    {
        1433,
        1521,
        1522,
        2483,
        2484,
        3306,
        5432,
        5433,
        6379,
        7000,
        7001,
        9042,
        9160,
        9200,
        9300,
        27017,
        27018,
        27019,
        50000,
    }
)
_RANGE = re.compile(r"\bor (?:later|earlier)\b|\s-\s|(?:^|\.)[xX](?:\.|$)")
_MARIADB_VERSION = re.compile(r"(\d+\.\d+\.\d+)-MariaDB", re.IGNORECASE)
_SV_FLAGS = re.compile(r"(?:^|\s)-(?:sV|A)\b|--version-(?:intensity|light|all)")


def detect(content: Content) -> int:
    if content.kind != "xml":
        return 0
    head = content.data[:65536]
    return 100 if b"<nmaprun" in head or b"DOCTYPE nmaprun" in head else 0


@dataclass
class _Port:
    number: int
    protocol: str = "tcp"
    state: str = ""
    service: dict[str, str] = field(default_factory=dict)
    cpes: list[str] = field(default_factory=list)


@dataclass
class _Host:
    addresses: list[tuple[str, str]] = field(default_factory=list)  # (addr, addrtype)
    names: list[tuple[str, str]] = field(default_factory=list)  # (name, type)
    status: str = "up"
    ports: list[_Port] = field(default_factory=list)


class _Target:
    """Receives expat's events and keeps only what the records need (no tree).

    Per-event work is what a large scan costs, so the handlers stay small: the root check runs
    once (`start_root` then hands over to `start`), and character data is only listened to
    inside a `<cpe>` element (the whitespace between all other elements is never delivered).
    """

    def __init__(self) -> None:
        self.expat: Any = None  # the pyexpat parser, set by _Parser
        self.root: str | None = None
        self.args = ""
        self.tcp_services: list[str] = []  # <scaninfo protocol="tcp" services=…>
        self.hosts: list[_Host] = []
        self._host: _Host | None = None
        self._port: _Port | None = None
        self._text: list[str] = []

    def start_root(self, tag: str, attrib: dict[str, str]) -> None:
        self.root = tag
        if tag != "nmaprun":
            raise DiscoveryError(
                f"This is XML, but not nmap -oX output: the root element is <{tag}>, not <nmaprun>."
            )
        self.args = attrib.get("args", "")
        self.expat.StartElementHandler = self.start

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        port = self._port
        if port is not None:
            if tag == "state":
                port.state = attrib.get("state", "")
            elif tag == "service":
                port.service = attrib
            elif tag == "cpe":
                self._text = []
                self.expat.CharacterDataHandler = self._text.append
            return
        host = self._host
        if tag == "host":
            self._host = _Host()
        elif host is None:
            if tag == "scaninfo" and attrib.get("protocol", "tcp") == "tcp":
                self.tcp_services.append(attrib.get("services", ""))
            return
        elif tag == "port":
            try:
                number = int(attrib.get("portid", ""))
            except ValueError:
                number = 0
            self._port = _Port(number=number, protocol=attrib.get("protocol", "tcp"))
        elif tag == "address":
            host.addresses.append((attrib.get("addr", ""), attrib.get("addrtype", "ipv4")))
        elif tag == "hostname":
            host.names.append((attrib.get("name", ""), attrib.get("type", "")))
        elif tag == "status":
            host.status = attrib.get("state", "up")

    def end(self, tag: str) -> None:
        if tag == "cpe":
            if self._port is not None:
                self._port.cpes.append("".join(self._text).strip())
            self.expat.CharacterDataHandler = None
        elif tag == "port":
            if self._port is not None and self._host is not None:
                self._host.ports.append(self._port)
            self._port = None
        elif tag == "host" and self._host is not None:
            self.hosts.append(self._host)
            self._host = None

    def data(self, text: str) -> None:  # ElementTree's parser wants one; never installed
        return None

    def close(self) -> None:
        return None


class _Parser(DefusedXMLParser):
    """defusedxml's parser, with the one DTD nmap writes allowed and every other refused."""

    def __init__(self, target: _Target) -> None:
        super().__init__(target=target, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        # Hand element events straight to the target: the pure-Python ElementTree layer in
        # between (name fixing, attribute lists to dicts) costs more than the parsing itself on
        # a large scan, and nmap output uses no namespaces. The defused DTD/entity handlers
        # installed above stay in place.
        expat = self.parser
        expat.ordered_attributes = False
        expat.StartElementHandler = target.start_root
        expat.EndElementHandler = target.end
        expat.CharacterDataHandler = None
        target.expat = expat

    def defused_start_doctype_decl(self, name, sysid, pubid, has_internal_subset):  # type: ignore[no-untyped-def]
        if name != "nmaprun":
            raise DTDForbidden(name, sysid, pubid)
        if sysid or pubid:  # never fetched by this parser, but nmap never writes one either
            raise ExternalReferenceForbidden(None, None, sysid, pubid)
        # <!DOCTYPE nmaprun>: allowed. Entity declarations in an internal subset are still
        # refused (forbid_entities).


def _read(content: Content) -> _Target:
    target = _Target()
    parser = _Parser(target)
    try:
        parser.feed(content.data)
        parser.close()
    except EntitiesForbidden as exc:
        raise DiscoveryError(
            f"The XML declares an entity ({exc.name!r}); entity declarations are refused because "
            "they allow entity-expansion (billion laughs) and external-entity attacks. nmap "
            "never writes them."
        ) from None
    except ExternalReferenceForbidden as exc:
        raise DiscoveryError(
            f"The XML refers to an external DTD or entity ({exc.sysid or exc.pubid!r}); external "
            "references are refused (they can read local files or reach the network). nmap "
            "never writes them."
        ) from None
    except DTDForbidden as exc:
        raise DiscoveryError(
            f"The XML has a document type declaration <!DOCTYPE {exc.name}>; only nmap's "
            "<!DOCTYPE nmaprun> is accepted, because DTDs can carry entity-expansion and "
            "external-entity attacks."
        ) from None
    except DefusedXmlException as exc:  # pragma: no cover - any other defusedxml refusal
        raise DiscoveryError(f"The XML was refused as unsafe: {exc}.") from None
    except ParseError as exc:
        line, column = exc.position
        reason = str(exc).split(":")[0]
        hint = (
            " (the file looks truncated)"
            if reason in ("no element found", "unclosed token")
            else ""
        )
        raise DiscoveryError(
            f"Invalid XML at line {line}, column {column + 1}: {reason}{hint}."
        ) from None
    if target.root is None:
        raise DiscoveryError("The XML has no root element.")
    return target


def parse(content: Content) -> ParseResult:
    target = _read(content)
    warnings = Warnings()
    if target.args and not _SV_FLAGS.search(target.args):
        warnings.add(
            "The scan was run without version detection (-sV): service names are nmap's guesses "
            "from port numbers, so no asset is created from them."
        )
    records: list[DiscoveredRecord] = []
    by_key: dict[str, DiscoveredRecord] = {}
    for host in target.hosts:
        if host.status != "up":
            continue
        _host_records(host, records, by_key, warnings)
    if not any(not r.sighting_only for r in records):
        warnings.add("No open database port was identified in this scan.")
    return ParseResult(format=NAME, records=records, warnings=warnings.finish(),
                       coverage=_coverage(target))


def _coverage(target: _Target) -> coverage.Coverage:
    """The hosts (every `<host>` entry, up or down, and the address targets of `args`) and the
    TCP ports this scan probed."""
    targets, networks, excluded = coverage.targets(target.args)
    # an insertion-ordered set: a scan of 100,000 hosts must not search a list per host
    hosts = dict.fromkeys(targets)
    for host in target.hosts:
        hosts.update(dict.fromkeys(_addresses(host)[1]))
        hosts.update(dict.fromkeys(_names(host)))
    ports = coverage.parse_ports(",".join(target.tcp_services))
    return coverage.Coverage(hosts=list(hosts), networks=networks,
                             excluded=excluded, tcp_ports=ports)


def _addresses(host: _Host) -> tuple[str | None, list[str]]:
    ipv4 = [normalise.ip(a) for a, t in host.addresses if t == "ipv4"]
    ipv6 = [normalise.ip(a) for a, t in host.addresses if t == "ipv6"]
    ips = [a for a in ipv4 + ipv6 if a]
    return (ips[0] if ips else None), ips


def _names(host: _Host) -> list[str]:
    ordered = [n for n, t in host.names if t == "user"] + [n for n, t in host.names if t != "user"]
    names: list[str] = []
    for raw in ordered:
        found = normalise.host(raw) if raw else None
        if found and found not in names:
            names.append(found)
    return names


def _host_records(
    host: _Host,
    records: list[DiscoveredRecord],
    by_key: dict[str, DiscoveredRecord],
    warnings: Warnings,
) -> None:
    address, ips = _addresses(host)
    if address is None:
        return
    names = _names(host)
    shown = f"[{address}]" if ":" in address else address
    for port in host.ports:
        if port.state != "open" or port.protocol != "tcp" or not 1 <= port.number <= 65535:
            continue
        where = f"{shown}:{port.number}/tcp"
        engine, problem = _identify(port)
        key = f"nmap:{where}"
        if engine is None and _unidentified(port) and key not in by_key:
            # open, but nmap could not tell what answers: a sighting of what is known there
            record = _sighting(key, len(records) + 1, address, ips, names, port)
            by_key[key] = record
            records.append(record)
            continue
        if engine is None:
            if problem:
                warnings.add(f"{where}: {problem}; no asset created.")
            continue
        existing = by_key.get(key)
        if existing is not None:  # the same address listed twice: merge the names
            aliases = existing.fields.setdefault("aliases", [])
            for name in names:
                if name not in aliases:
                    aliases.append(name)
            continue
        record = _record(key, len(records) + 1, address, ips, names, port, engine)
        by_key[key] = record
        records.append(record)


def _identify(port: _Port) -> tuple[str | None, str | None]:
    """(engine, None) for an identified database; (None, reason) for a database port nmap did
    not identify; (None, None) for anything else."""
    service = port.service
    name = service.get("name", "")
    product = service.get("product", "").lower()
    if name == "tcpwrapped":
        reason = "tcpwrapped (the connection is closed before any data)"
        return None, reason if port.number in DATABASE_PORTS else None
    for needle, engine in _PRODUCTS:
        if needle in product:
            if engine == "mysql" and "mariadb" in service.get("version", "").lower():
                return "mariadb", None
            return engine, None
    engine = _SERVICES.get(name)
    probed = service.get("method") == "probed"
    if engine and probed:
        if engine == "mysql" and "mariadb" in service.get("version", "").lower():
            return "mariadb", None
        return engine, None
    if engine or (port.number in DATABASE_PORTS and not (probed and name and name != "unknown")):
        shown = name or "no service"
        return None, f"service {shown!r} not identified by a probe (unrecognised fingerprint)"
    return None, None


def _unidentified(port: _Port) -> bool:
    """nmap saw the port open but could not fingerprint it: `tcpwrapped`, `unknown`, or no
    service name at all. A name from the port table (`method="table"`) is a guess, not a
    fingerprint, but it names a service: it keeps its warning and is no sighting."""
    return port.service.get("name", "") in ("", "tcpwrapped", "unknown")


def _sighting(
    key: str, row: int, address: str, ips: list[str], names: list[str], port: _Port
) -> DiscoveredRecord:
    shown = names[0] if names else (f"[{address}]" if ":" in address else address)
    fields: dict[str, Any] = {"name": f"{shown}:{port.number}", "host": address, "port": port.number}
    aliases = names + [ip for ip in ips if ip != address]
    if aliases:
        fields["aliases"] = aliases[:50]
    return DiscoveredRecord(key=key, fields=fields, warnings=[], row=row, ip_addresses=list(ips),
                            sighting_only=True)


def _record(
    key: str, row: int, address: str, ips: list[str], names: list[str], port: _Port, engine: str
) -> DiscoveredRecord:
    service = port.service
    product = service.get("product", "").strip()
    raw_version = service.get("version", "").strip()
    metadata: dict[str, Any] = {"nmap_service": service.get("name", "")}
    if product:
        metadata["nmap_product"] = product
    if raw_version:
        metadata["nmap_version"] = raw_version
    if service.get("extrainfo"):
        metadata["nmap_extrainfo"] = service["extrainfo"]
    if service.get("tunnel"):
        metadata["nmap_tunnel"] = service["tunnel"]
    if port.cpes:
        metadata["nmap_cpe"] = port.cpes
    fields: dict[str, Any] = {
        "name": f"{names[0] if names else (f'[{address}]' if ':' in address else address)}:{port.number}",
        "engine": engine,
        "host": address,
        "port": port.number,
    }
    version = raw_version
    if engine == "mariadb":
        match = _MARIADB_VERSION.search(raw_version)
        if match:
            version = match.group(1)
    if version:
        fields["engine_version"] = version[:100]
        if _RANGE.search(version):
            metadata["nmap_version_range"] = True
    aliases = names + [ip for ip in ips if ip != address]
    if aliases:
        fields["aliases"] = aliases[:50]
    try:
        conf = int(service.get("conf", ""))
    except ValueError:
        conf = None
    if conf is not None and 0 <= conf <= 10:
        fields["confidence"] = conf / 10
    fields["metadata"] = metadata
    return DiscoveredRecord(key=key, fields=fields, warnings=[], row=row, ip_addresses=list(ips))


register(
    Format(
        name=NAME,
        description="nmap -oX output of a version scan (-sV)",
        detect=detect,
        parse=parse,
        extensions=("xml",),
    )
)
