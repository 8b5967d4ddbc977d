"""Bounded channels per site (issue 15 point 4): the inventory refuses channels beyond it."""

from __future__ import annotations

import pytest

from alerts.lifecycle import AlertBook
from gateway.inventory import CAPACITY_CLEAR_S, CapacityAlerts, ChannelInventory, SiteInventory, capacity_subject
from rules.errors import PayloadError
from rules.types import ChannelKey, ChannelRegistry, Hazard, RuleKind, Severity

T0 = 1_800_000_000.0


def key(site: str, device: str, hazard: Hazard = Hazard.CO) -> ChannelKey:
    return ChannelKey(site, "z1", device, hazard)


def test_learned_channels_stop_at_the_cap_and_known_ones_keep_working() -> None:
    reg = ChannelRegistry()
    inv = ChannelInventory(reg, {}, max_channels_per_site=3)
    ids = [inv.id_for(key("kop-1", f"d{i}")) for i in range(3)]
    with pytest.raises(PayloadError, match=r"site 'kop-1' already has 3 channels .* \(z1/d3 co\) refused"):
        inv.id_for(key("kop-1", "d3"))
    assert [inv.id_for(key("kop-1", f"d{i}")) for i in range(3)] == ids  # known channels: no change
    assert inv.id_for(key("kop-2", "d0")) == 3  # another site has its own room
    assert len(reg) == 4 and inv.refused == {"kop-1": 1}


def test_a_configured_device_list_and_the_site_count_are_enforced() -> None:
    inv = ChannelInventory(ChannelRegistry(), {"kop-1": SiteInventory(frozenset({"gd-1"}), 100)}, max_sites=1)
    inv.id_for(key("kop-1", "gd-1"))
    with pytest.raises(PayloadError, match="device 'gd-9' is not in the inventory of site 'kop-1'"):
        inv.id_for(key("kop-1", "gd-9"))
    inv.id_for(key("learned-1", "x"))  # one unconfigured site is allowed
    with pytest.raises(PayloadError, match=r"site 'learned-2' refused: already serving 1 sites .*OSH_MAX_SITES"):
        inv.id_for(key("learned-2", "x"))
    with pytest.raises(PayloadError, match="gd-9' is not in the inventory"):
        inv.admit_device("kop-1", "z1", "gd-9")


def test_one_capacity_alert_per_site_counting_refusals_then_cleared() -> None:
    book = AlertBook()
    inv = ChannelInventory(ChannelRegistry(), {}, max_channels_per_site=1)
    cap = CapacityAlerts(inv, book)
    inv.id_for(key("kop-1", "d0"))
    for i in range(1, 500):
        with pytest.raises(PayloadError):
            inv.id_for(key("kop-1", f"d{i}"))
    [ev] = cap.check(T0)
    assert (ev.event, ev.severity, ev.rule, ev.zone, ev.device, ev.hazard) == (
        "raised", Severity.MALFUNCTION, RuleKind.CAPACITY, "gateway", "inventory", "gateway",
    )  # fmt: skip
    assert ev.value == 499 and "Readings of 499 message(s) refused at site kop-1" in ev.message
    with pytest.raises(PayloadError):
        inv.id_for(key("kop-1", "more"))
    assert cap.check(T0 + 1) == []  # still one alert; its value follows the count
    assert book.open_alert(capacity_subject("kop-1"), RuleKind.CAPACITY).value == 500  # type: ignore[union-attr]
    [cleared] = cap.check(T0 + 1 + CAPACITY_CLEAR_S)
    assert cleared.event == "cleared"


def test_the_whole_gateway_has_a_channel_limit_too() -> None:
    inv = ChannelInventory(ChannelRegistry(), {}, max_channels_per_site=10, max_channels=4)
    for i in range(4):
        inv.id_for(key(f"site-{i}", "d"))
    with pytest.raises(PayloadError, match=r"the gateway already has 4 channels \(OSH_MAX_CHANNELS\)"):
        inv.id_for(key("site-9", "d"))
