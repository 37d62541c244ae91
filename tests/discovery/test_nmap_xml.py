"""`nmap-xml`: nmap -oX output of a version scan, and hostile XML."""

from __future__ import annotations

import pytest

from tests.discovery.helpers import by_key, fixture_bytes, parse_fixture
from webapp.discovery import DiscoveryError, UnknownFormat, parse


@pytest.fixture(scope="module")
def scan():
    return parse_fixture("nmap_sv.xml")


def test_real_output_with_its_doctype_parses(scan):
    assert fixture_bytes("nmap_sv.xml").startswith(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE nmaprun>'
    )
    assert scan.format == "nmap-xml"


def test_only_open_database_ports_become_records(scan):
    assert [r.key for r in scan.records if not r.sighting_only] == [
        "nmap:10.20.0.5:3306/tcp",
        "nmap:10.20.0.5:5432/tcp",  # one host, two database ports: two records
        "nmap:10.20.0.6:1433/tcp",
        "nmap:10.20.0.9:1521/tcp",
        "nmap:10.20.0.9:6379/tcp",
        "nmap:10.20.0.9:9200/tcp",
        "nmap:10.20.0.9:27017/tcp",
        "nmap:10.20.0.11:5432/tcp",
    ]
    # ssh on 22 is open but not a database; 6379 filtered and 27017 closed on 10.20.0.5,
    # and the down host 10.20.0.10, give nothing


def test_address_is_the_host_and_names_are_aliases(scan):
    record = by_key(scan)["nmap:10.20.0.5:5432/tcp"]
    assert record.fields["host"] == "10.20.0.5"
    # the user-given target DB01.CORP.EXAMPLE.COM. first, lower-cased without the root dot,
    # then the PTR names, each once
    assert record.fields["aliases"] == ["db01.corp.example.com", "pg-primary.corp.example.com"]
    assert record.ip_addresses == ["10.20.0.5"]
    assert record.fields["name"] == "db01.corp.example.com:5432"
    assert record.fields["port"] == 5432


def test_version_ranges_are_kept_and_flagged(scan):
    record = by_key(scan)["nmap:10.20.0.5:5432/tcp"]
    assert record.fields["engine"] == "postgresql"
    assert record.fields["engine_version"] == "9.6.0 or later"
    assert record.fields["metadata"]["nmap_version_range"] is True
    ranged = by_key(scan)["nmap:10.20.0.11:5432/tcp"]
    assert ranged.fields["engine_version"] == "14.10 - 14.11"
    assert ranged.fields["metadata"]["nmap_version_range"] is True
    assert ranged.fields["metadata"]["nmap_tunnel"] == "ssl"
    assert ranged.fields["name"] == "10.20.0.11:5432"  # no host name known
    exact = by_key(scan)["nmap:10.20.0.9:6379/tcp"]
    assert "nmap_version_range" not in exact.fields["metadata"]


def test_engines_from_product_and_service(scan):
    records = by_key(scan)
    engines = {
        key: (r.fields["engine"], r.fields.get("engine_version")) for key, r in records.items()
        if not r.sighting_only
    }
    assert engines == {
        "nmap:10.20.0.5:3306/tcp": ("mariadb", "10.11.6"),  # MariaDB behind a MySQL banner
        "nmap:10.20.0.5:5432/tcp": ("postgresql", "9.6.0 or later"),
        "nmap:10.20.0.6:1433/tcp": ("mssql", "15.00.2000.00; RTM"),
        "nmap:10.20.0.9:1521/tcp": ("oracle", "19.0.0.0.0"),
        "nmap:10.20.0.9:6379/tcp": ("redis", "7.2.4"),
        "nmap:10.20.0.9:9200/tcp": (
            "elasticsearch",
            "8.12.2",
        ),  # service "http", product Elasticsearch
        "nmap:10.20.0.9:27017/tcp": ("mongodb", "7.0.5"),
        "nmap:10.20.0.11:5432/tcp": ("postgresql", "14.10 - 14.11"),
    }
    mariadb = records["nmap:10.20.0.5:3306/tcp"].fields["metadata"]
    assert mariadb["nmap_version"] == "5.5.5-10.11.6-MariaDB-0+deb12u1"
    assert mariadb["nmap_product"] == "MySQL"
    assert mariadb["nmap_cpe"] == ["cpe:/a:mysql:mysql:5.5.5-10.11.6-MariaDB-0+deb12u1"]
    assert records["nmap:10.20.0.6:1433/tcp"].fields["confidence"] == 1.0


def test_port_table_guesses_are_warnings_not_guesses(scan):
    assert scan.warnings == [
        "10.20.0.6:9200/tcp: service 'wap-wsp' not identified by a probe (unrecognised fingerprint); no asset created.",
        "10.20.0.6:27017/tcp: service 'mongod' not identified by a probe (unrecognised fingerprint); no asset created.",
    ]
    assert not any(k.startswith(("nmap:10.20.0.6:27017", "nmap:10.20.0.6:9200")) for k in by_key(scan))


def test_a_tcpwrapped_port_is_a_sighting_only_record(scan):
    """SPEC §6: open but not fingerprinted: host and port only, never an engine."""
    sightings = [r for r in scan.records if r.sighting_only]
    assert [r.key for r in sightings] == ["nmap:10.20.0.6:3306/tcp"]
    assert sightings[0].fields == {"name": "sql01.corp.example.com:3306", "host": "10.20.0.6",
                                   "port": 3306, "aliases": ["sql01.corp.example.com"]}


def test_unknown_and_nameless_open_ports_are_sightings_too():
    ports = "".join(
        f'<port protocol="tcp" portid="{n}"><state state="open"/>{service}</port>'
        for n, service in ((5432, '<service name="unknown" method="probed" conf="1"/>'), (5433, ""),
                           (22, '<service name="ssh" product="OpenSSH" method="probed" conf="10"/>'))
    )
    data = (
        '<?xml version="1.0"?>\n<nmaprun scanner="nmap" args="nmap -sV -p 22,5432-5433 10.9.0.4">'
        '<scaninfo type="syn" protocol="tcp" numservices="3" services="22,5432-5433"/>'
        '<host><status state="up"/><address addr="10.9.0.4" addrtype="ipv4"/>'
        f"<ports>{ports}</ports></host></nmaprun>"
    ).encode()
    result = parse(data)
    assert [(r.key, r.sighting_only, "engine" in r.fields) for r in result.records] == [
        ("nmap:10.9.0.4:5432/tcp", True, False),
        ("nmap:10.9.0.4:5433/tcp", True, False),
    ]
    assert result.warnings == ["No open database port was identified in this scan."]


def test_coverage_holds_targets_hosts_up_and_down_and_the_port_list(scan):
    covered = scan.coverage
    assert covered.tcp_ports == [(22, 22), (1433, 1433), (1521, 1521), (3306, 3306), (5432, 5432),
                                 (6379, 6379), (9200, 9200), (27017, 27017)]
    assert covered.networks == ["10.20.0.0/28"]
    # every <host> entry, the down 10.20.0.10 too, with its names; the host name target only
    # through its <host> entry (a name that did not resolve was never scanned)
    assert {"10.20.0.5", "db01.corp.example.com", "10.20.0.10", "10.20.0.11"} <= set(covered.hosts)
    assert covered.covers_host(["10.20.0.14"]) and not covered.covers_host(["10.20.0.16"])
    assert covered.covers_port(5432) and not covered.covers_port(5433)


def test_coverage_reads_port_ranges_octet_ranges_and_excludes():
    data = (
        b'<?xml version="1.0"?>\n<nmaprun scanner="nmap" args="/usr/bin/nmap -sV -T4 -p 1-1024,3306,5432 '
        b'--exclude 10.0.1.7 -oX out.xml 10.0.1.1-20 db.example.com 2001:db8::9">'
        b'<scaninfo type="syn" protocol="tcp" numservices="1026" services="1-1024,3306,5432"/>'
        b'<scaninfo type="udp" protocol="udp" numservices="1" services="53"/>'
        b'<host><status state="down"/><address addr="10.0.1.3" addrtype="ipv4"/></host></nmaprun>'
    )
    covered = parse(data).coverage
    assert covered.as_json()["tcp_ports"] == "1-1024,3306,5432"  # udp 53 is not a TCP port
    assert covered.covers_port(1024) and covered.covers_port(3306) and not covered.covers_port(1025)
    assert covered.covers_host(["10.0.1.20"]) and not covered.covers_host(["10.0.1.21"])
    assert not covered.covers_host(["10.0.1.7"])  # --exclude
    assert covered.covers_host(["2001:db8::9"]) and covered.covers_host(["10.0.1.3"])
    assert not covered.covers_host(["db.example.com"])  # no <host> entry: never resolved


def test_a_scan_without_version_detection_creates_nothing():
    result = parse_fixture("nmap_no_version_scan.xml")
    assert result.records == []
    assert result.warnings[0].startswith("The scan was run without version detection (-sV)")
    assert result.warnings[-1] == "No open database port was identified in this scan."


def test_ipv6_keys_udp_ports_and_a_host_listed_twice():
    result = parse_fixture("nmap_ipv6_and_repeated_host.xml")
    assert [r.key for r in result.records] == [
        "nmap:[2001:db8::10]:5432/tcp",
        "nmap:10.30.0.3:5432/tcp",
    ]
    v6, twice = result.records
    assert v6.fields["host"] == "2001:db8::10" and v6.fields["name"] == "db6.example.net:5432"
    assert v6.ip_addresses == ["2001:db8::10"]
    # the same address scanned under two names: one record carrying both names
    assert twice.fields["aliases"] == ["pg.example.net", "pg-alias.example.net"]


def test_a_file_named_csv_holding_nmap_xml():
    assert parse_fixture("nmap_scan_named.csv").records == parse_fixture("nmap_sv.xml").records


def test_xml_without_a_doctype_also_parses():
    data = fixture_bytes("nmap_sv.xml").replace(b"<!DOCTYPE nmaprun>\n", b"")
    assert len([r for r in parse(data).records if not r.sighting_only]) == 8


# --- hostile and broken XML ----------------------------------------------------------------


def test_billion_laughs_is_refused():
    with pytest.raises(DiscoveryError) as caught:
        parse_fixture("nmap_billion_laughs.xml")
    assert "declares an entity ('lol0')" in str(caught.value)
    assert "billion laughs" in str(caught.value)


def test_an_external_entity_is_refused():
    with pytest.raises(DiscoveryError, match=r"declares an entity \('xxe'\)"):
        parse_fixture("nmap_xxe.xml")


def test_an_external_dtd_is_refused():
    with pytest.raises(DiscoveryError, match="external DTD or entity .*attacker.invalid"):
        parse_fixture("nmap_external_dtd.xml")


def test_a_foreign_doctype_is_refused_when_forced_and_unknown_otherwise():
    with pytest.raises(DiscoveryError, match=r"<!DOCTYPE lolz>; only nmap's <!DOCTYPE nmaprun>"):
        parse_fixture("nmap_lolz_doctype.xml", format="nmap-xml")
    with pytest.raises(UnknownFormat, match="declares entities"):
        parse_fixture("nmap_lolz_doctype.xml")


def test_parameter_entities_are_refused():
    data = (
        b'<?xml version="1.0"?>\n<!DOCTYPE nmaprun [\n<!ENTITY % remote SYSTEM "http://x.invalid/a.dtd">\n'
        b'%remote;\n]>\n<nmaprun scanner="nmap" args="nmap -sV" version="7.94" xmloutputversion="1.05"/>\n'
    )
    with pytest.raises(DiscoveryError, match="declares an entity"):
        parse(data)


def test_truncated_xml_names_line_and_column():
    with pytest.raises(DiscoveryError) as caught:
        parse_fixture("nmap_truncated.xml")
    assert (
        str(caught.value)
        == "Invalid XML at line 42, column 36: unclosed token (the file looks truncated)."
    )


def test_malformed_xml_names_line_and_column():
    data = fixture_bytes("nmap_sv.xml").replace(
        b"</hostnames>\n<ports>", b"</hostname>\n<ports>", 1
    )
    with pytest.raises(
        DiscoveryError, match=r"Invalid XML at line \d+, column \d+: mismatched tag"
    ):
        parse(data)


def test_file_warnings_are_capped_and_counted():
    port = (
        '<port protocol="tcp" portid="5432"><state state="open" reason="syn-ack" reason_ttl="64"/>'
        '<service name="postgresql" method="table" conf="3"/></port>'
    )
    hosts = "".join(
        f'<host><status state="up" reason="syn-ack" reason_ttl="0"/>'
        f'<address addr="10.1.{i // 256}.{i % 256}" addrtype="ipv4"/><ports>{port}</ports></host>\n'
        for i in range(600)
    )
    data = (
        '<?xml version="1.0"?>\n<!DOCTYPE nmaprun>\n'
        '<nmaprun scanner="nmap" args="nmap -sV -p5432 10.1.0.0/22" version="7.94" xmloutputversion="1.05">\n'
        f"{hosts}</nmaprun>\n"
    ).encode()
    result = parse(data)
    assert result.records == []
    assert len(result.warnings) == 501
    assert result.warnings[-1] == "… and 101 more warnings like these (not listed)."
