from __future__ import annotations

from collections.abc import Callable, Iterator

from checks import ALL_CHECKS, CheckContext
from checks.base import Weakness, check
from tests.conftest import RECORDED_AT
from warpagent.collect import nmap_xml
from warpagent.model.findings import Host, Inventory
from warpagent.scan import engine


@check("WA599", "configs", "always-breaks")
def _broken(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """Raises on every host."""
    raise RuntimeError(f"cannot judge {host.address}")


def test_a_check_that_raises_is_recorded_and_the_others_go_on(asset: Callable[[str], str]) -> None:
    parsed = nmap_xml.parse(asset("nmap-estate.xml"), {})
    inventory = Inventory(estate="lab", hosts=parsed.hosts, scanned=parsed.finished)
    ctx = CheckContext(now=RECORDED_AT)
    with_broken = engine.evaluate(inventory, ctx, (_broken, *ALL_CHECKS))
    healthy = engine.evaluate(inventory, ctx)
    assert {f.id for f in with_broken.findings} == {f.id for f in healthy.findings}
    assert [(e.check_id, e.asset) for e in with_broken.errors] == [
        ("WA599", "198.18.18.10"), ("WA599", "198.18.18.11"), ("WA599", "198.18.18.20")]
    assert with_broken.errors[0].message == "RuntimeError: cannot judge 198.18.18.10"


def test_finding_ids_are_stable_and_distinct(asset: Callable[[str], str]) -> None:
    parsed = nmap_xml.parse(asset("nmap-estate.xml"), {})
    inventory = Inventory(estate="lab", hosts=parsed.hosts, scanned=parsed.finished)
    first = engine.evaluate(inventory, CheckContext(now=RECORDED_AT)).findings
    again = engine.evaluate(inventory, CheckContext(now=RECORDED_AT)).findings
    assert [f.id for f in first] == [f.id for f in again]
    assert len({f.id for f in first}) == len(first)
    other_estate = Inventory(estate="schools", hosts=parsed.hosts, scanned=parsed.finished)
    elsewhere = engine.evaluate(other_estate, CheckContext(now=RECORDED_AT)).findings
    assert not {f.id for f in first} & {f.id for f in elsewhere}
