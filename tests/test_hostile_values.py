"""The residue of hostile input (issue 28): every value that was still an internal error is a named
regression test, and property tests feed each parser Unicode digits, huge numbers and the wrong
JSON types. A parser's answer is a value or a one-line problem naming the field; never a traceback."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds import sources
from feeds.intel_store import LoadedIntel
from feeds.model import FeedError
from tests.conftest import run_cli
from warpagent import numbers
from warpagent.cli.main import _not_utf8
from warpagent.evidence.formats import EvidenceError
from warpagent.evidence.parsers import directory, mail_records
from warpagent.model.findings import Platform

BOUNDED = settings(max_examples=150, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# What passes str.isdigit() but not int(), what int() reads but no format writes, and the huge
hostile_numbers = st.one_of(
    st.sampled_from(["²", "².04", "¹⁰", "٣", "１２", "1_000", " 7 ", "+5", "-0", "0x10", "1e3", "",
                     "9" * 30, "9" * 4301, "-" + "9" * 25, "4" * 19, "\x00", "7\n8"]),
    st.text(alphabet=st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=12),
    st.integers(min_value=-10**40, max_value=10**40).map(str))


# --- the one reading of a number --------------------------------------------------------------------

@BOUNDED
@given(text=hostile_numbers)
def test_a_number_is_ascii_digits_of_bounded_length_or_a_named_problem(text: str) -> None:
    try:
        value = numbers.whole(text, "maxPwdAge", signed=True)
    except numbers.NotANumber as exc:
        assert str(exc).startswith("maxPwdAge is '") and "\n" not in str(exc)
        return
    assert text.lstrip("+-").isascii() and text.lstrip("+-").isdigit() and abs(value) < 10**19


def test_unicode_digits_are_not_numbers() -> None:
    for text in ("²", "٣", "１２", "1_000", " 7 "):
        assert numbers.whole_or_none(text) is None
    assert numbers.whole("0042", "x") == 42 and numbers.whole("-7", "x", signed=True) == -7
    with pytest.raises(numbers.NotANumber, match="more than 19 digits"):
        numbers.whole("9" * 30, "x")


# --- named regressions: each was a traceback --------------------------------------------------------

def test_os_release_version_id_of_a_superscript_two() -> None:
    assert Platform("ubuntu", "².04").osv_ecosystem == "Ubuntu:².04"  # no LTS claim, no traceback
    assert Platform("ubuntu", "22.04").osv_ecosystem == "Ubuntu:22.04:LTS"


def test_a_scan_of_evidence_with_version_id_superscript_two_completes(tmp_path: Path) -> None:
    host = tmp_path / "evidence" / "web1" / "etc"
    host.mkdir(parents=True)
    (host / "os-release").write_text('ID=ubuntu\nVERSION_ID="².04"\n')
    (host / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "w.yaml").write_text("organisation: {name: X}\nstore: ./w.db\n"
                                     "estates: [{name: e, evidence: [./evidence]}]\n")
    result = run_cli("--config", "w.yaml", "scan", "--json", cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("pct", ["²", "9" * 4301, "٣", "101"])
def test_dmarc_pct_that_is_not_0_to_100_is_a_problem(pct: str) -> None:
    parsed = mail_records.dmarc(f"v=DMARC1; p=reject; pct={pct}")
    assert any(p.startswith("pct=") and p.endswith("is not 0-100") for p in parsed.problems)


@pytest.mark.parametrize("age", ["²", "9" * 4301, "١٢"])
def test_mta_sts_max_age_that_is_not_a_number_is_a_problem(age: str) -> None:
    policy = mail_records.mta_sts_policy(f"version: STSv1\nmode: enforce\nmx: mx.council.test\nmax_age: {age}\n")
    assert policy.max_age is None and "max_age is missing or not a number of seconds" in policy.problems


def test_a_directory_max_password_age_of_30_digits_is_named() -> None:
    with pytest.raises(EvidenceError, match=r"^DC=x: maxPwdAge is '9{30}', more than 19 digits$"):
        directory.domain_policy("DC=x", {"maxPwdAge": [b"9" * 30]})
    huge = directory.domain_policy("DC=x", {"maxPwdAge": [b"-" + b"9" * 19]})
    assert huge.max_age is not None  # the widest value AD holds is a (very long) age, not an overflow


FEEDS = {"kev": ("known_exploited_vulnerabilities.json", lambda bad: json.dumps(
    {"catalogVersion": "1", "count": 1, "vulnerabilities": [{
        "cveID": "CVE-2021-44228", "vendorProject": bad, "product": "Log4j", "vulnerabilityName": "n",
        "dateAdded": "2021-12-10", "dueDate": "2021-12-24", "knownRansomwareCampaignUse": "Known",
        "requiredAction": "a"}]})),
    "nvd": ("nvdcve-2.0-2026.json", lambda bad: json.dumps(
        {"resultsPerPage": 1, "vulnerabilities": [{"cve": {"id": "CVE-2021-44228", "published": "2021-12-10",
                                                            "descriptions": [{"lang": "en", "value": bad}]}}]})),
    "distro-info": ("debian.csv", lambda bad: "version,codename,series,created,release,eol\n12,Bookworm\n")}


@pytest.mark.parametrize("source", sorted(FEEDS))
@pytest.mark.parametrize("bad", [{"vendor": "x"}, ["a", "b"], 7, None, True])
def test_a_feed_record_of_the_wrong_shape_is_named_never_stored(source: str, bad: Any, tmp_path: Path) -> None:
    name, make = FEEDS[source]
    (tmp_path / name).write_text(make(bad))
    intel = LoadedIntel()
    with pytest.raises(FeedError) as caught:
        sources.load_source(source, tmp_path, intel)
    assert str(caught.value).startswith(str(tmp_path / name)) and "\n" not in str(caught.value)


@pytest.mark.parametrize("args", [["accept", "abcdef", "--reason", b"caf\xe9".decode("utf-8", "surrogateescape"),
                                   "--until", "2030-01-01"],
                                  ["accept", "abcdef", "--reason", "ok", "--until", "2030-01-01",
                                   "--by", b"\xff\xfe".decode("utf-8", "surrogateescape")],
                                  ["reopen", "abcdef", "--by", b"j\xf6rg".decode("utf-8", "surrogateescape")],
                                  ["findings", "--estate", b"\xc3\x28".decode("utf-8", "surrogateescape")]])
def test_arguments_that_are_not_utf8_are_refused_in_one_line(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text("organisation: {name: X}\nstore: ./w.db\nestates: [{name: e, targets: "
                                     "[127.0.0.1]}]\n")
    result = run_cli("--config", "w.yaml", *args, cwd=tmp_path)
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "\n" not in line and line.endswith("is not UTF-8 text; type it again in UTF-8")
    assert line.startswith(("warpagent: the value of --", "warpagent: argument "))
    assert not (tmp_path / "w.db").exists()  # refused before anything was opened


# --- property suites: mail records, directory values, feed records, CLI arguments -----------------

mail_text = st.one_of(st.text(max_size=200), hostile_numbers.map(lambda n: f"v=DMARC1; p=reject; pct={n}"),
                      hostile_numbers.map(lambda n: f"version: STSv1\nmode: enforce\nmx: a\nmax_age: {n}\n"),
                      hostile_numbers.map(lambda n: f"v=DKIM1; k=rsa; p={n}"))


@BOUNDED
@given(record=mail_text)
def test_any_mail_record_is_parsed_never_raised(record: str) -> None:
    mail_records.dmarc(record)
    mail_records.mta_sts_policy(record)
    mail_records.dkim_key(record)
    mail_records.spf_lookups(record)
    mail_records.spf_all(record)


directory_value = st.one_of(hostile_numbers.map(str.encode), st.binary(max_size=40))
POLICY_ATTRIBUTES = ("pwdProperties", "minPwdLength", "lockoutThreshold", "maxPwdAge")
ACCOUNT_ATTRIBUTES = ("userAccountControl", "pwdLastSet", "lastLogonTimestamp", "whenCreated", "objectSid",
                      "sAMAccountName", "servicePrincipalName")


@BOUNDED
@given(values=st.dictionaries(st.sampled_from(POLICY_ATTRIBUTES + ACCOUNT_ATTRIBUTES),
                              st.lists(directory_value, min_size=1, max_size=2), max_size=6))
def test_any_directory_value_is_read_or_named_never_raised(values: dict[str, list[bytes]]) -> None:
    for read in (lambda: directory.domain_policy("DC=x", values), lambda: directory.account("CN=a,DC=x", values),
                 lambda: directory.fine_grained_policy("CN=p,DC=x", values)):
        try:
            read()
        except EvidenceError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(("DC=x", "CN="))


json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
                                     st.floats(allow_nan=True), st.text(max_size=20), hostile_numbers),
                           lambda children: st.one_of(st.lists(children, max_size=3),
                                                      st.dictionaries(st.text(max_size=8), children, max_size=3)),
                           max_leaves=10)
KEV_FIELDS = ("cveID", "vendorProject", "product", "vulnerabilityName", "dateAdded", "dueDate",
              "knownRansomwareCampaignUse", "requiredAction")
GOOD_KEV = {"cveID": "CVE-2021-44228", "vendorProject": "Apache", "product": "Log4j", "vulnerabilityName": "n",
            "dateAdded": "2021-12-10", "dueDate": "2021-12-24", "knownRansomwareCampaignUse": "Known",
            "requiredAction": "a"}


@BOUNDED
@given(field=st.sampled_from(KEV_FIELDS), value=json_values)
def test_any_kev_record_loads_or_is_a_feed_error(field: str, value: Any) -> None:
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "known_exploited_vulnerabilities.json"
        path.write_text(json.dumps({"count": 1, "vulnerabilities": [{**GOOD_KEV, field: value}]}))
        try:
            sources.load_source("kev", Path(work), LoadedIntel())
        except FeedError as exc:
            assert "\n" not in str(exc)


@BOUNDED
@given(row=st.lists(st.one_of(st.text(max_size=12).filter(lambda t: "\n" not in t and "\r" not in t),
                              hostile_numbers), max_size=8))
def test_any_distro_info_row_loads_or_is_a_feed_error(row: list[str]) -> None:
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "debian.csv"
        path.write_text("version,codename,series,created,release,eol\n" + ",".join(row) + "\n",
                        encoding="utf-8", errors="surrogatepass")
        try:
            sources.load_source("distro-info", Path(work), LoadedIntel())
        except FeedError as exc:
            assert "\n" not in str(exc)


@BOUNDED
@given(args=st.lists(st.text(max_size=12), max_size=5), bad=st.binary(min_size=1, max_size=6), at=st.integers(0, 5))
def test_any_argument_list_with_bytes_that_are_not_utf8_is_named(args: list[str], bad: bytes, at: int) -> None:
    text = bad.decode("utf-8", "surrogateescape")
    argv = [*args[:at], text, *args[at:]]
    problem = _not_utf8(argv)
    try:
        bad.decode("utf-8")
    except UnicodeDecodeError:
        assert problem is not None and "\n" not in problem and problem.endswith("type it again in UTF-8")
