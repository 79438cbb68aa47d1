from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run_cli
from warpagent import config
from warpagent.errors import ConfigError
from warpagent.model.findings import Severity

GOOD = """
organisation: {name: Test Borough Council, region: north-west, sector: local-government}
store: ./data/findings.db
scan: {fail_on: high, timing: T3}
estates:
  - name: corporate
    targets: [198.18.0.0/28, intranet.example.test]
    exclude: [198.18.0.1]
    ports: "22,443,U:161"
    timeout: 90m
    host_timeout: 5m
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.parse_text(text, "config/warpagent.yaml", Path("/etc/warpagent"))
    return caught.value.problems


def test_good_config_is_typed() -> None:
    settings = config.parse_text(GOOD, "c.yaml", Path("/etc/warpagent"))
    estate = settings.estates[0]
    assert settings.store.path == Path("/etc/warpagent/data/findings.db")  # relative to the config's folder
    assert settings.scan.fail_on is Severity.HIGH and settings.scan.timing == "T3"
    assert estate.targets == ("198.18.0.0/28", "intranet.example.test")
    assert (estate.timeout_s, estate.host_timeout_s) == (5400, 300)
    assert estate.chunk_size == 256 and estate.max_addresses == 65536 and not estate.assume_up


def test_embedded_default_scans_loopback_into_a_local_file() -> None:
    settings = config.parse_text(config.example_text(), config.EMBEDDED, Path("/work"))
    assert [e.targets for e in settings.estates] == [("127.0.0.1",)]
    assert settings.store.path == Path("/work/warpagent.db")
    assert settings.estates[0].ports == "top-1000"


def test_issue_example_message_names_file_and_key_path() -> None:
    text = GOOD.replace("intranet.example.test", "10.0.0.300")
    assert _problems(text) == [
        "config/warpagent.yaml: At 'estates[0].targets[1]': '10.0.0.300' is not an IP address, CIDR or "
        "host name; fix or remove it"]


@pytest.mark.parametrize(("change", "expected"), [
    (("ports: \"22,443,U:161\"", "ports: \"22,99999\""), "At 'estates[0].ports': '99999' in '22,99999' is outside"),
    (("timeout: 90m", "timeout: soon"), "At 'estates[0].timeout': 'soon' is not a duration"),
    (("fail_on: high", "fail_on: severe"), "At 'scan.fail_on': 'severe' is not one of"),
    (("    exclude:", "    excludes: []\n    exclude:"), "At 'estates[0]': unknown key 'excludes'"),
    (("- name: corporate", "- name: 'bad name!'"), "At 'estates[0].name': 'bad name!' is not a valid name"),
    (("targets: [198.18.0.0/28, intranet.example.test]", "targets: ['-iL /etc/passwd']"),
     "At 'estates[0].targets[0]': '-iL /etc/passwd' is not an IP address"),
    (("targets: [198.18.0.0/28, intranet.example.test]", "targets: ['198.18.0.1 198.18.0.2']"),
     "is not an IP address, CIDR or host name"),
    (("targets: [198.18.0.0/28, intranet.example.test]", "targets: []"),
     "At 'estates[0]': estate 'corporate' has nothing to audit; give it targets, evidence folders, domains, a "
     "directory, Windows update exports or Microsoft 365 results"),
    (("timing: T3}", "timing: T3, dns_servers: ['198.18.0.53:ab']}"),
     "At 'scan.dns_servers[0]': '198.18.0.53:ab' has port 'ab', not 1-65535; write an address, optionally with :port"),
    (("timing: T3}", "timing: T3, dns_servers: [ns1.example.test]}"),
     "At 'scan.dns_servers[0]': 'ns1.example.test' is not an IP address (with an optional :port)"),
    (("    exclude:", "    directory: {url: 'ldap://dc1.example.test', bind_dn: r@example.test, "
                      "password_env: AD_PW}\n    exclude:"),
     "At 'estates[0].directory.url': plain ldap:// would send the password unencrypted"),
    (("    exclude:", "    directory: {url: 'ldaps://dc1.example.test:99999', bind_dn: r@example.test, "
                      "password_env: AD_PW}\n    exclude:"),
     "At 'estates[0].directory.url': the port is not 1-65535"),
    (("    exclude:", "    directory: {url: 'ldaps://reader:pw@dc1.example.test', bind_dn: r@example.test, "
                      "password_env: AD_PW}\n    exclude:"),
     "At 'estates[0].directory.url': the directory URL must be ldaps://HOST[:PORT] (or ldap://HOST with "
     "start_tls), with no user name or password in it (the value given is not shown"),
    (("    exclude:", "    directory: {url: 'ldaps://dc1.example.test', bind_dn: r@example.test}\n    exclude:"),
     "At 'estates[0].directory': 'password_env' is a required property"),
])
def test_each_problem_is_one_line_with_its_key_path(change: tuple[str, str], expected: str) -> None:
    problems = _problems(GOOD.replace(*change))
    assert len(problems) == 1, problems
    assert problems[0].startswith("config/warpagent.yaml: ")
    assert expected in problems[0]
    assert "\n" not in problems[0]


def test_every_problem_is_reported_at_once() -> None:
    text = GOOD.replace("fail_on: high", "fail_on: severe").replace("timeout: 90m", "timeout: x")
    assert len(_problems(text)) == 2


def test_check_config_shows_schema_names_and_scope_problems_together(tmp_path: Path) -> None:
    """Issue 30: check-config stopped at the first stage (schema, then duplicate names, then scope size)."""
    (tmp_path / "w.yaml").write_text("organisation: {name: X}\nstore: ./w.db\nestates:\n"
                                     "  - {name: corp, targts: [127.0.0.1]}\n"
                                     "  - {name: corp, targets: [10.0.0.0/8]}\n"
                                     "sharing: {peers: [{name: w, url: 'https://w.test/', collection: c, "
                                     "username: u, password_env: 'lower-case'}]}\n")
    result = run_cli("--config", "w.yaml", "check-config", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert "w.yaml: At 'estates[0]': unknown key 'targts'; did you mean 'targets'?" in lines
    assert "w.yaml: At 'estates[1].name': estate name 'corp' is used twice; give each estate its own name" in lines
    assert any(line.startswith("w.yaml: At 'estates[1].targets[0]': '10.0.0.0/8' holds 16777216 addresses")
               for line in lines)
    assert not any("^" in line or "$'" in line or "[A-Z" in line for line in lines)  # no regular expression


def test_a_pattern_problem_is_said_by_example_never_by_regular_expression() -> None:
    problems = _problems(GOOD.replace("region: north-west", "region: north-west") + "hub:\n  api_root: 'a b'\n"
                         "  users: [{name: c, role: coordinator, password_env: HUB_PW}]\n")
    assert problems and not any("does not match" in p or "^" in p for p in problems), problems


def test_missing_required_keys_say_what_to_add() -> None:
    problems = _problems("estates: [{name: a}]\n")
    assert any("At '(top level)': 'organisation' is a required property; add it" in p for p in problems)
    assert not any("'targets' is a required property" in p for p in problems)  # evidence or a directory will do


def test_duplicate_estate_names_are_refused() -> None:
    text = GOOD + "  - name: corporate\n    targets: [198.18.1.1]\n"
    assert _problems(text) == ["config/warpagent.yaml: At 'estates[1].name': estate name 'corporate' is used "
                               "twice; give each estate its own name"]


def test_yaml_syntax_error_names_line_and_column() -> None:
    (problem,) = _problems("organisation: {name: X\nestates: []\n")
    assert problem.startswith("config/warpagent.yaml: line 2, column 8: not valid YAML")


def test_empty_file_points_to_init() -> None:
    assert "run 'warpagent init'" in _problems("")[0]


def test_secrets_cannot_be_written_in_the_file() -> None:
    # no key accepts a literal password: only *_env references are part of the design
    problems = _problems(GOOD.replace("scan: {", "scan: {password: hunter2, "))
    assert "unknown key 'password'" in problems[0]
    assert "hunter2" not in problems[0]


def test_shipped_example_equals_the_embedded_default() -> None:
    assert (ROOT / "config/warpagent.example.yaml").read_text() == config.example_text()


def _schema_key_paths(node: dict, prefix: str = "") -> list[str]:  # type: ignore[type-arg]
    paths = []
    for key, child in node.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        assert child.get("description"), f"schema key {path} has no description"
        paths.append(path)
        paths += _schema_key_paths(child, path)
        if "items" in child:
            paths += _schema_key_paths(child["items"], f"{path}[]")
    return paths


def test_every_config_key_is_described_and_documented() -> None:
    reference = (ROOT / "config/README.md").read_text()
    for path in _schema_key_paths(config.schema()):
        assert f"`{path}`" in reference, f"config/README.md does not document {path}"


def test_every_schema_example_validates() -> None:
    schema = config.schema()
    estate_schema = schema["properties"]["estates"]["items"]["properties"]
    for key, spec in estate_schema.items():
        for example in spec.get("examples", []):
            document = yaml.safe_load(GOOD)
            document["estates"][0][key] = example
            assert config.validate(document, "x") == [], (key, example)


def test_check_config_cli_exit_2_and_nothing_written(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("intranet.example.test", "10.0.0.300").replace("./data/", "./"))
    result = run_cli("--config", str(bad), "check-config", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"{bad}: At 'estates[0].targets[1]': '10.0.0.300' is not an IP address, "
                                     "CIDR or host name; fix or remove it")
    assert "Traceback" not in result.stderr
    scan = run_cli("--config", str(bad), "scan", cwd=tmp_path)
    assert scan.returncode == 2 and "Traceback" not in scan.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]  # no store, nothing half-written


def test_missing_config_file_is_exit_2(tmp_path: Path) -> None:
    result = run_cli("--config", "nowhere/warpagent.yaml", "scan", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "nowhere/warpagent.yaml: no such file; run 'warpagent init nowhere' to write one"


def test_config_from_environment_variable(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text(GOOD.replace("intranet.example.test", "198.18.0.99"))
    result = run_cli("check-config", cwd=tmp_path, env={"WARPAGENT_CONFIG": str(path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: OK - 1 estate, 14 addresses in scope")


def test_init_writes_the_example_and_refuses_to_overwrite(tmp_path: Path) -> None:
    first = run_cli("init", str(tmp_path / "conf"), cwd=tmp_path)
    assert first.returncode == 0
    written = tmp_path / "conf" / "warpagent.yaml"
    assert written.read_text() == config.example_text()
    written.write_text("# my edits\n" + written.read_text())
    second = run_cli("init", str(tmp_path / "conf"), cwd=tmp_path)
    assert second.returncode == 2 and "already exists" in second.stderr
    assert written.read_text().startswith("# my edits")
    check = run_cli("--config", str(written), "check-config", cwd=tmp_path)
    assert check.returncode == 0, check.stderr


def test_host_evidence_keys_are_validated_one_line_each() -> None:
    document = yaml.safe_load(GOOD)
    document["estates"][0].update({
        "evidence": ["./evidence", {"ssh": {"hosts": ["127.0.0.1"], "username": "scan"}}],
        "backups": {"max_age": "soon", "restic": [{"name": "finance"}]},
        "default_credentials": {"max_attempts": 50, "services": ["rdp"]},
    })
    errors = config.validate(document, "w.yaml")
    assert errors == [
        "w.yaml: At 'estates[0].backups.max_age': 'soon' is not a duration; write a number and a unit, "
        "such as 90m, 6h or 1d",
        "w.yaml: At 'estates[0].backups.restic[0]': 'repository' is a required property; add it (see config/README.md)",
        "w.yaml: At 'estates[0].backups.restic[0]': 'password_env' is a required property; add it "
        "(see config/README.md)",
        "w.yaml: At 'estates[0].default_credentials.max_attempts': 50 is greater than the maximum of 10",
        "w.yaml: At 'estates[0].default_credentials.services[0]': 'rdp' is not one of: ssh, ftp, telnet, "
        "http-basic, snmp",
        "w.yaml: At 'estates[0].evidence[1].ssh': 'known_hosts' is a required property; add it (see config/README.md)",
    ]


def test_hostile_targets_are_named_by_their_key_path(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text('organisation: {name: X}\nestates:\n  - name: a\n    targets: ["198.18.0.1", '
                    '"::1%x 10.0-255.0-255.0-255"]\n  - name: b\n    targets: [198.18.0.2]\n'
                    '    exclude: ["::1%x\\n192.168.0-255.1-254", "::1%é"]\n', encoding="utf-8")
    result = run_cli("--config", str(path), "check-config", cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 3 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"{path}: At 'estates[0].targets[1]': '::1%x 10.0-255.0-255.0-255' has an IPv6 "
                               "zone ('%x 10.0-255.0-255.0-255') that is not a network interface name")
    assert lines[1].startswith(f"{path}: At 'estates[1].exclude[0]': '::1%x\\n192.168")  # escaped: one line
    assert lines[2].startswith(f"{path}: At 'estates[1].exclude[1]': '::1%\\xe9'")


def test_a_secret_pasted_where_its_variable_name_belongs_is_never_echoed(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text('organisation: {name: X}\nestates: [{name: a, targets: [198.18.0.1]}]\nsharing:\n'
                    '  pseudonym_key_env: "s3cr3t-Passw0rd!"\n'
                    '  peers: [{name: p, url: "https://warp.example/taxii2/", collection: c, username: u,\n'
                    '           password_env: "MyP@ss word"}]\n'
                    'reports: {email: {smtp_host: h, from: a@b.c, to: [x@y.z], password_env: "hunter2-secret"}}\n')
    result = run_cli("--config", str(path), "check-config", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 3
    for secret in ("s3cr3t-Passw0rd!", "MyP@ss word", "hunter2-secret"):
        assert secret not in result.stderr
    assert f"{path}: At 'sharing.peers[0].password_env': not the name of an environment variable" in result.stderr
    path.write_text('organisation: {name: X}\nestates: [{name: a, targets: [198.18.0.1]}]\nsharing:\n'
                    '  peers: [{name: p, url: "https://member:pw-in-url-77@warp.example/taxii2/", collection: c}]\n')
    in_url = run_cli("--config", str(path), "check-config", cwd=tmp_path)
    assert in_url.returncode == 2 and "pw-in-url-77" not in in_url.stderr and "member" not in in_url.stderr
    assert "At 'sharing.peers[0].url': the URL holds a user name or password (not shown)" in in_url.stderr


def test_duplicate_keys_alias_bombs_and_runaway_values_are_one_line_each(tmp_path: Path) -> None:
    def problems(text: str) -> list[str]:
        with pytest.raises(ConfigError) as refused:
            config.parse_text(text, "w.yaml", tmp_path)
        return refused.value.problems

    twice = "organisation: {name: n}\nestates: [{name: a, targets: [198.18.0.1]}]\nestates: []\n"
    assert problems(twice) == ["w.yaml: line 3: key 'estates' is given twice in one mapping (first on line 2); "
                               "keep one"]
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))
    (bombed,) = problems(bomb)
    assert len(bomb) < 400 and "YAML aliases are expanded" in bombed and len(bombed) < 200
    assert problems("a: " + "[" * 5000 + "]" * 5000 + "\n")[0].startswith("w.yaml: nested")
    merge = "base: &b {name: n}\norganisation: {<<: *b}\nestates: [{name: a, targets: [198.18.0.1]}]\n"
    assert "merge key" in problems(merge)[0]
    mixed = "organisation: {name: n, ~: 1, 3: x}\nestates: [{name: a, targets: [198.18.0.1]}]\n"
    assert problems(mixed) == ["w.yaml: At 'organisation': unknown key '3', 'None'; check the spelling against "
                               "config/README.md"]
    zone = "organisation: {name: n}\nestates: [{name: a, targets: [198.18.0.1]}]\nschedule: {timezone: %s}\n"
    assert "'America' is not a time zone" in problems(zone % "America")[0]
    assert "is not a time zone" in problems(zone % ("Europe/" + "x" * 300))[0]
    huge = "organisation: {name: n}\nestates: [{name: a, targets: [198.18.0.1], timeout: 99999999999d}]\n"
    assert "is longer than ten years" in problems(huge)[0]
