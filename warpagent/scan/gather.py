"""The evidence stage of a scan, after nmap: default-credential probes (opt-in), SSH
collection, evidence folders, the supplier register and warpagent's own restic restore tests,
all attached to the inventory for the checks.

Records that are not machines (the supplier register, a restic repository) become hosts in
state RECORD_STATE, so their findings are tracked and resolved like any other.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import urllib3

from checks import tenant as tenant_checks
from checks.base import EstatePolicy
from warpagent.collect.scope import Scope, canonical_address
from warpagent.config import DirectorySettings, EstateConfig
from warpagent.evidence import folders as evidence
from warpagent.evidence import restore_test, web, windows_exports
from warpagent.evidence.formats import EvidenceError
from warpagent.evidence.parsers.supply import suppliers as parse_suppliers
from warpagent.model.directory import DirectorySnapshot
from warpagent.model.evidence import EvidenceKind, HostEvidence, Supplier
from warpagent.model.findings import RECORD_STATE, Host, Inventory
from warpagent.text import capped

log = logging.getLogger(__name__)

SUPPLIER_REGISTER = "supplier register"
DIRECTORY = "Active Directory"  # the asset the directory's findings are tracked against


def repository_asset(name: str) -> str:
    return f"backup repository {name}"


def domain_asset(name: str) -> str:
    return f"domain {name}"


@dataclass(frozen=True)
class DnsSettings:
    servers: tuple[str, ...] = ()  # host or host:port; none: the system resolver's
    timeout_s: float = 5.0


@dataclass(frozen=True)
class Gathered:
    inventory: Inventory
    problems: tuple[str, ...]  # make the run partial
    notes: tuple[str, ...]
    record_assets: frozenset[str]  # records configured for this estate (in scope even when unread)
    suppliers: tuple[Supplier, ...]
    policy: EstatePolicy

    @property
    def evidence_read(self) -> frozenset[tuple[str, EvidenceKind]]:
        """(asset, evidence kind) for every kind of evidence read this run."""
        return frozenset((h.asset, kind) for h in self.inventory.hosts for kind in h.evidence.read)


def policy_of(estate: EstateConfig) -> EstatePolicy:
    return EstatePolicy(backup_max_age=dt.timedelta(seconds=estate.backups.max_age_s),
                        backup_max_age_by_job=tuple((key, dt.timedelta(seconds=s))
                                                    for key, s in estate.backups.max_age_by_job_s),
                        restore_test_within=dt.timedelta(seconds=estate.backups.restore_test_within_s),
                        supplier_review=dt.timedelta(seconds=estate.supplier_review_s),
                        dmarc_report_to=estate.mail.dmarc_report_to,
                        patch_deadline=dt.timedelta(seconds=estate.patch_deadline_s),
                        has_domains=bool(estate.domains))


# The readers below that pull in a protocol library (paramiko, ldap3, smbprotocol, dnspython)
# are imported where used: a scan that reads no directory, domain or SSH host does not pay for
# them at start-up.


def _probe(inventory: Inventory, estate: EstateConfig) -> Inventory:
    from warpagent.evidence import probes as credential_probe

    hosts = []
    for host in inventory.hosts:
        if host.state != "up":
            hosts.append(host)
            continue
        probes = credential_probe.probe_host(host, estate.default_credentials)
        accepted = tuple(p.accepted for p in probes if p.accepted is not None)
        for probe in probes:
            log.info("estate %s: default-credential probe %s on %s port %s: %d attempt(s), %s", estate.name,
                     probe.service, host.asset, probe.port, probe.attempts,
                     "a default was accepted" if probe.accepted else "none accepted")
        probed = dataclasses.replace(host.evidence, credentials=accepted,
                                     read=host.evidence.read | {EvidenceKind.CREDENTIAL})
        hosts.append(dataclasses.replace(host, evidence=probed))
    return dataclasses.replace(inventory, hosts=tuple(hosts))


def _ssh(estate: EstateConfig, scope: Scope, into: Path) -> tuple[list[str], list[str]]:
    """Collect from every SSH source's hosts that are in scope; (problems, notes)."""
    from warpagent.evidence import ssh as ssh_collect

    problems: list[str] = []
    notes: list[str] = []
    for source in estate.ssh:
        for name in source.hosts:
            address = scope.address_for(name)
            if address is None:
                problems.append(f"ssh host '{name}' is not in estate '{estate.name}''s scope (or is excluded); "
                                "not contacted: add it to targets or remove it from evidence")
                continue
            result = ssh_collect.collect(source, name, address, scope.asset(address), into)
            if not result.ok:
                problems.append(result.problem)
            notes += result.notes
    return problems, notes


def _directory(estate: EstateConfig, settings: DirectorySettings, scope: Scope) -> tuple[Host, str]:
    """The directory's record host (read tonight, or empty with the reason it was not)."""
    from warpagent.evidence import directory, sysvol

    address = scope.address_for(settings.host)
    if address is None:
        return _directory_host(None, frozenset()), (
            f"directory {settings.url}: {settings.host} is not in estate '{estate.name}''s scope (or is excluded); "
            "not contacted: add the domain controller to targets")
    try:
        password = directory.password_from(settings, os.environ)
        snapshot = directory.read(settings, address, password)
    except directory.DirectoryError as exc:
        return _directory_host(None, frozenset()), str(exc)
    log.info("estate %s: directory read: %d accounts, %d privileged groups, %d password policies",
             estate.name, len(snapshot.accounts), len(snapshot.groups), len(snapshot.policies))
    read = frozenset({EvidenceKind.DIRECTORY})
    snapshot = dataclasses.replace(snapshot, ldap_signing_required=directory.signing_required(
        address, settings.timeout_s))
    if settings.sysvol:
        try:
            found = sysvol.read(settings, address, password)
            snapshot = dataclasses.replace(snapshot, gpp_passwords=found.passwords, gpo_grants=found.grants)
            read |= {EvidenceKind.SYSVOL}
            log.info("estate %s: SYSVOL read: %d GPOs", estate.name, found.gpos)
        except sysvol.SysvolError as exc:
            # its findings stay as they were: not read is not fixed
            snapshot = dataclasses.replace(snapshot, notes=(*snapshot.notes, str(exc)))
    return _directory_host(snapshot, read), ""


def _directory_host(snapshot: DirectorySnapshot | None, read: frozenset[EvidenceKind]) -> Host:
    return Host(address="", asset=DIRECTORY, state=RECORD_STATE, evidence=HostEvidence(directory=snapshot, read=read))


def _records(estate: EstateConfig, scope: Scope, now: dt.datetime,
             dns: DnsSettings) -> tuple[list[Host], list[str], list[str], tuple[Supplier, ...]]:
    """The estate's records that are not machines: (hosts, problems, notes, the supplier register)."""
    hosts: list[Host] = []
    problems: list[str] = []
    notes: list[str] = []
    suppliers: tuple[Supplier, ...] = ()
    if estate.suppliers is not None:
        read: frozenset[EvidenceKind] = frozenset()
        try:
            suppliers = tuple(parse_suppliers(estate.suppliers.read_text(encoding="utf-8"), estate.suppliers.name))
            read = frozenset({EvidenceKind.SUPPLIER})
        except FileNotFoundError:
            problems.append(f"{estate.suppliers}: supplier register not found; check the estate's 'suppliers' path")
        except (OSError, UnicodeDecodeError, EvidenceError) as exc:
            problems.append(capped(f"{estate.suppliers}: skipped: {exc}"))
        except evidence.UNFORESEEN as exc:
            problems.append(capped(f"{estate.suppliers}: skipped: not a supplier register ({exc.__class__.__name__})"))
        hosts.append(Host(address="", asset=SUPPLIER_REGISTER, state=RECORD_STATE,
                          evidence=HostEvidence(suppliers=suppliers, read=read)))
    if estate.directory is not None:
        host, problem = _directory(estate, estate.directory, scope)
        hosts.append(host)
        problems += [problem] if problem else []
        notes += host.evidence.directory.notes if host.evidence.directory else ()
    if estate.windows_updates:
        windows = windows_exports.read(estate.windows_updates, now,
                                       dt.timedelta(seconds=estate.windows_updates_max_age_s))
        problems += windows.problems
        notes += windows.notes
        snapshot = next((h.evidence.directory for h in hosts if h.evidence.directory), None)
        builds = windows_exports.in_directory(windows.builds, snapshot) if snapshot else windows.builds
        hosts += [Host(address="", asset=build.name, state=RECORD_STATE,
                       evidence=HostEvidence(windows=build, read=frozenset({EvidenceKind.WINDOWS})))
                  for build in builds]
        unreported = windows_exports.unreported(snapshot, builds, now) if snapshot else ""
        notes += [unreported] if unreported else []
    if estate.m365:
        from warpagent.evidence import tenants

        assessed = tenants.read(estate.m365, now, dt.timedelta(seconds=estate.m365_max_age_s),
                                tenant_checks.policies())
        problems += assessed.problems
        notes += assessed.notes
        hosts += [Host(address="", asset=tenants.tenant_asset(t), state=RECORD_STATE,
                       evidence=HostEvidence(tenant=t, read=frozenset({EvidenceKind.TENANT})))
                  for t in assessed.tenants]
    if estate.domains:
        domain_hosts, domain_problems, domain_notes = _domains(estate, scope, dns)
        hosts += domain_hosts
        problems += domain_problems
        notes += domain_notes
    for repo in estate.backups.restic:
        tested = restore_test.run_restore_test(repo, now)
        problems += tested.problems
        hosts.append(Host(address="", asset=repository_asset(repo.name), state=RECORD_STATE,
                          evidence=HostEvidence(backups=tested.records,
                                                read=frozenset({EvidenceKind.BACKUP} if tested.records else ()))))
    return hosts, problems, notes, suppliers


_WEB_AT_ONCE = 16  # front pages read at once: one slow server must not hold up the estate's others


def _web_pages(inventory: Inventory, silent: frozenset[tuple[str, int]]) -> Inventory:
    """Each web service's front page, for the web checks (the hosts nmap just scanned: in scope)."""
    def one(host: Host) -> Host:
        if host.state != "up":
            return host
        return web.probe(host, silent=frozenset(port for address, port in silent if address == host.address))

    # warnings' filters are one process-wide list that catch_warnings saves and restores: set
    # here, once, so the readers' threads cannot restore each other's out from under them
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=_WEB_AT_ONCE,
                                                        thread_name_prefix="web-page") as pool:
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        return dataclasses.replace(inventory, hosts=tuple(pool.map(one, inventory.hosts)))


def _domains(estate: EstateConfig, scope: Scope, dns: DnsSettings) -> tuple[list[Host], list[str], list[str]]:
    """Each of the estate's domains as a record host: (hosts, problems, notes)."""
    from warpagent.evidence import domains as domain_records

    hosts: list[Host] = []
    problems: list[str] = []
    notes: list[str] = []
    inside = frozenset(scope.addresses)
    transport = domain_records.Transport(in_scope=lambda address: canonical_address(address) in inside,
                                         ca_bundle=estate.mail.ca_bundle, timeout_s=estate.mail.timeout_s)
    for name, result in domain_records.read_all(estate.domains, estate.mail.dkim_selectors,
                                                domain_records.resolver_for(dns.servers, dns.timeout_s),
                                                transport=transport):
        found = None if isinstance(result, str) else result
        problems += [result] if isinstance(result, str) else list(result.problems)
        notes += found.notes if found else ()
        whole = found is not None and not found.problems  # a partial domain resolves nothing tonight
        hosts.append(Host(address="", asset=domain_asset(name), state=RECORD_STATE, evidence=HostEvidence(
            domain=found, read=frozenset({EvidenceKind.DOMAIN}) if whole else frozenset())))
    return hosts, problems, notes


def gather(estate: EstateConfig, inventory: Inventory, scope: Scope, now: dt.datetime,
           dns: DnsSettings = DnsSettings(), silent: frozenset[tuple[str, int]] = frozenset()) -> Gathered:
    """Everything beyond nmap's own view; `silent`: (address, port) of services whose version
    detection overran its budget (not asked for a web page)."""
    if estate.default_credentials.enabled:
        inventory = _probe(inventory, estate)
    inventory = _web_pages(inventory, silent)
    with tempfile.TemporaryDirectory(prefix="warpagent-ssh-") as collected:
        ssh_problems, ssh_notes = _ssh(estate, scope, Path(collected)) if estate.ssh else ([], [])
        folders = estate.evidence + ((collected,) if estate.ssh else ())
        attached = evidence.attach(inventory, folders, scope, own_names=not estate.targets)
    records, record_problems, record_notes, suppliers = _records(estate, scope, now, dns)
    inventory = dataclasses.replace(attached.inventory, hosts=attached.inventory.hosts + tuple(records))
    return Gathered(inventory=inventory, problems=tuple(ssh_problems) + attached.problems + tuple(record_problems),
                    notes=tuple(ssh_notes) + attached.notes + tuple(record_notes),
                    record_assets=frozenset(h.asset for h in records),
                    suppliers=suppliers, policy=policy_of(estate))
