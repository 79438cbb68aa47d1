"""What a run does to the findings it touches, as a pure function: no database."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from warpagent.model.evidence import EvidenceKind
from warpagent.model.findings import CheckError, Finding, FindingStatus, Severity, Weakness
from warpagent.store.lifecycle import RunReport, StoredFinding, decide

T = dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.UTC)
HOSTS = frozenset({"198.18.0.10", "198.18.0.11"})


def finding(asset: str = "198.18.0.10", check: str = "WA512", subject: str = "23/tcp", port: int | None = 23,
            kind: EvidenceKind | None = None) -> Finding:
    weakness = Weakness(subject=subject, title="t", severity=Severity.HIGH, evidence="e", remediation="r",
                        port=port, protocol="tcp" if port else "", evidence_kind=kind)
    return Finding.of(weakness, estate="corp", asset=asset, check_id=check, category="configs",
                      evidence=(kind,) if kind else ())


def stored(f: Finding, status: FindingStatus = FindingStatus.OPEN) -> StoredFinding:
    return StoredFinding(id=f.id, asset=f.asset, check_id=f.check_id, status=status, port=f.port,
                         protocol=f.protocol, evidence_kind=f.evidence_kind)


def report(*found: Finding, complete: bool = True, observed: frozenset[str] = HOSTS,
           **extra: object) -> RunReport:
    return RunReport(findings=found, finished=T, complete=complete, observed_assets=observed,
                     in_scope_assets=HOSTS, hosts_scanned=len(observed), **extra)  # type: ignore[arg-type]


def test_new_seen_again_reopened_and_resolved() -> None:
    telnet, ftp, old = finding(), finding(port=21, subject="21/tcp"), finding(port=80, subject="80/tcp")
    verdict = decide(report(telnet, ftp), [stored(ftp), stored(old), stored(finding(port=25, subject="25/tcp"),
                                                                         FindingStatus.RESOLVED)])
    assert verdict.new == (telnet.id,) and verdict.still_open == (ftp.id,)
    assert verdict.resolved == {old.id: "not seen in a complete scan"}
    back = decide(report(old), [stored(old, FindingStatus.RESOLVED)])
    assert back.reopened == (old.id,) and back.resolved == {}


def test_a_partial_run_resolves_nothing() -> None:
    assert decide(report(complete=False), [stored(finding())]).resolved == {}


@pytest.mark.parametrize(("why", "run"), [
    ("host down tonight", report(observed=frozenset({"198.18.0.11"}))),
    ("its check errored", report(check_errors=(CheckError("WA512", "198.18.0.10", "boom"),))),
    ("its check had no intel", report(unmeasured_checks=frozenset({"WA512"}))),
    ("its port was not scanned", report(scanned_ports=frozenset({("tcp", 22)}))),
])
def test_not_seen_is_not_fixed(why: str, run: RunReport) -> None:
    assert decide(run, [stored(finding())]).resolved == {}, why


def test_an_asset_gone_from_scope_resolves_with_its_reason() -> None:
    gone = finding(asset="198.18.0.99")
    assert decide(report(), [stored(gone)]).resolved == {gone.id: "asset no longer in the estate's scope"}


def test_evidence_findings_resolve_only_when_that_kind_was_read_for_that_host() -> None:
    sudo = finding(check="WA302", subject="sudo:etc/sudoers:3", port=None, kind=EvidenceKind.SUDO)
    assert decide(report(), [stored(sudo)]).resolved == {}
    other_kind = report(evidence_read=frozenset({("198.18.0.10", EvidenceKind.SHADOW)}))
    assert decide(other_kind, [stored(sudo)]).resolved == {}
    read = report(evidence_read=frozenset({("198.18.0.10", EvidenceKind.SUDO)}))
    assert decide(read, [stored(sudo)]).resolved == {sudo.id: "not seen in a complete scan"}


def test_an_accepted_risk_seen_again_stays_as_it_was_and_is_not_counted_new() -> None:
    accepted = finding()
    verdict = decide(report(accepted), [stored(accepted, FindingStatus.ACCEPTED_RISK)])
    # issue 30: counted as "still open" it made the summary disagree with the open total
    assert verdict.still_decided == (accepted.id,) and verdict.still_open == ()
    assert verdict.new == () and verdict.reopened == ()
    assert verdict.status_after(accepted.id, FindingStatus.ACCEPTED_RISK) is FindingStatus.ACCEPTED_RISK
    wrong = decide(report(accepted), [stored(accepted, FindingStatus.FALSE_POSITIVE)])
    assert wrong.still_decided == (accepted.id,)


def test_a_weakness_must_come_from_evidence_its_check_declared() -> None:
    weakness = Weakness(subject="sudo:x", title="t", severity=Severity.LOW, evidence="e", remediation="r",
                        evidence_kind=EvidenceKind.SHADOW)
    with pytest.raises(ValueError, match="declares sudo"):
        Finding.of(weakness, estate="e", asset="a", check_id="WA302", category="privileges",
                   evidence=(EvidenceKind.SUDO,))
    network = Weakness(subject="23/tcp", title="t", severity=Severity.LOW, evidence="e", remediation="r")
    assert Finding.of(network, estate="e", asset="a", check_id="WA512", category="configs").evidence_kind is None
    with pytest.raises(ValueError, match="declares no evidence"):
        Finding.of(weakness, estate="e", asset="a", check_id="WA512", category="configs")


def test_the_finding_id_is_what_it_was_before_findings_were_built_in_one_place() -> None:
    """Ids are the store's keys: the same weakness must keep its id across releases."""
    expected = hashlib.sha256("\x1f".join(("corp", "198.18.0.10", "WA512", "23/tcp")).encode()).hexdigest()[:20]
    assert finding().id == expected
