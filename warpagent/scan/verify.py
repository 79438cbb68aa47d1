"""`scan --verify ID`: re-measure one finding now, the way its night's scan measured it, and
touch nothing else: only its host (inside the estate's own scope and exclusions), only its
port for a network finding, and its evidence re-read for an evidence finding. The run that
records it may resolve that finding alone and does not count as the estate's night."""

from __future__ import annotations

import dataclasses

from warpagent.collect.scope import Scope
from warpagent.config import EstateConfig
from warpagent.errors import ScopeError
from warpagent.model.findings import TrackedFinding

# An evidence finding's host is still looked at (its evidence is attached to what the scan saw);
# one port keeps that look short.
EVIDENCE_LOOK_PORT = "T:22"


def narrowed(estate: EstateConfig, scope: Scope, tracked: TrackedFinding) -> tuple[EstateConfig, Scope]:
    """The estate cut down to the finding's host and port, and that host's scope."""
    finding = tracked.finding
    address = scope.address_for(finding.asset)
    if address is None:
        raise ScopeError(f"finding {tracked.id}: {finding.asset} is not a host in estate '{estate.name}' now "
                         "(its targets and exclusions; a supplier register or backup repository is re-read at the "
                         "next scan); nothing was scanned")
    if finding.port is not None and finding.evidence_kind is None:
        ports = f"{'U' if finding.protocol == 'udp' else 'T'}:{finding.port}"
    else:
        ports = EVIDENCE_LOOK_PORT
    ssh = tuple(dataclasses.replace(source, hosts=tuple(h for h in source.hosts if h in (finding.asset, address)))
                for source in estate.ssh)
    # the address is already inside the estate's scope, exclusions applied; records (suppliers,
    # restic repositories) and credential probes other than the one being verified stay out
    cut = dataclasses.replace(
        estate, targets=(address,), exclude=(), ports=ports, ssh=tuple(s for s in ssh if s.hosts), chunk_size=1,
        parallel=1, suppliers=None, backups=dataclasses.replace(estate.backups, restic=()),
        default_credentials=dataclasses.replace(estate.default_credentials,
                                                enabled=estate.default_credentials.enabled
                                                and finding.check_id == "WA406"))
    names = {address: scope.names[address]} if address in scope.names else {}
    return cut, Scope(estate=estate.name, addresses=(address,), names=names)
