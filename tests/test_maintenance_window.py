"""The broker's weekly maintenance window is each env's own (``messaging.maintenance_window``), in the env's own time
zone: Amazon MQ restarts the broker's nodes in it for up to two hours (a single instance goes offline) to apply
patches and pending changes (Amazon MQ developer guide, "Scheduling the maintenance window"; "Version upgrades").
A prod broker's window stays out of business hours and shares no hour with another env's broker."""

from __future__ import annotations

from typing import Any

import pytest

from shared.envs import load_env
from shared.errors import ConfigError, ConfigErrors
from shared.maintenance import business_hours_problem, time_zone_problem, utc_starts, windows_overlap
from shared.synth.engine import synth_env
from tests.layers.resource_types import BROKER
from tests.synth_helpers import of_type, synth_layers

SHIPPED = ("dev", "staging", "prod")


def _window(day: str, time: str | int, zone: str) -> dict[str, str | int]:
    return {"day_of_week": day, "time_of_day": time, "time_zone": zone}


def _refusals(name: str) -> list[ConfigError]:
    with pytest.raises((ConfigError, ConfigErrors)) as raised:
        load_env(name)
    error = raised.value
    return list(error.problems) if isinstance(error, ConfigErrors) else [error]


def _broker_window(document: dict[str, Any]) -> dict[str, str]:
    [broker] = of_type(document, BROKER)
    return dict(broker["inputs"]["maintenanceWindowStartTime"])


# -- what the broker is given -------------------------------------------------------------------------------------
def test_each_shipped_broker_has_its_envs_own_window_in_its_own_time_zone() -> None:
    windows = {env: _broker_window(synth_layers(env, "broker")["broker"]) for env in SHIPPED}
    for env, window in windows.items():
        own = load_env(env).messaging.maintenance_window
        assert window == {"dayOfWeek": own.day_of_week, "timeOfDay": own.time_of_day, "timeZone": own.time_zone}
        assert window["timeZone"] == "Europe/Dublin", f"{env}: its region's (eu-west-1) own time zone, not UTC"
    specs = {env: (w["dayOfWeek"], w["timeOfDay"], w["timeZone"]) for env, w in windows.items()}
    assert not any(windows_overlap(specs[a], specs[b]) for a in SHIPPED for b in SHIPPED if a < b), specs
    assert business_hours_problem(specs["prod"][0], specs["prod"][1]) is None


def test_an_env_without_the_key_keeps_sunday_3_utc(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["messaging"].pop("maintenance_window"))
    # prod moved off the default's hours, which a dev window may not share with it (below)
    edit_env("prod", lambda data: data["messaging"].update(
        maintenance_window=_window("SATURDAY", "03:00", "Europe/Dublin")))
    assert _broker_window(synth_env("dev", ["broker"])["broker"]) == {
        "dayOfWeek": "SUNDAY", "timeOfDay": "03:00", "timeZone": "UTC"}


# -- prod: outside business hours --------------------------------------------------------------------------------
@pytest.mark.parametrize(("day", "time", "reached"), [("MONDAY", "10:00", "MONDAY 10:00"),
                                                      ("FRIDAY", "17:00", "FRIDAY 17:00"),
                                                      ("MONDAY", "06:30", "MONDAY 08:00")])
def test_a_prod_window_in_business_hours_is_refused(edit_env: Any, day: str, time: str, reached: str) -> None:
    edit_env("prod", lambda data: data["messaging"].update(maintenance_window=_window(day, time, "Europe/Dublin")))
    [problem] = _refusals("prod")
    assert (problem.file.endswith("prod.yaml"), problem.key) == (True, "messaging.maintenance_window")
    assert f"business hours ({reached};" in problem.reason and "two hours" in problem.reason


@pytest.mark.parametrize(("day", "time"), [("FRIDAY", "18:00"), ("SATURDAY", "12:00"), ("MONDAY", "04:00"),
                                           ("SUNDAY", "23:00")])
def test_a_prod_window_at_night_or_at_the_weekend_is_accepted(edit_env: Any, day: str, time: str) -> None:
    edit_env("prod", lambda data: data["messaging"].update(maintenance_window=_window(day, time, "Europe/Dublin")))
    assert load_env("prod").messaging.maintenance_window.day_of_week == day


def test_a_non_prod_window_may_be_in_business_hours(edit_env: Any) -> None:
    # staging patched while people watch it is a choice; the rule holds prod only
    edit_env("staging", lambda data: data["messaging"].update(
        maintenance_window=_window("TUESDAY", "10:00", "Europe/Dublin")))
    assert load_env("staging").messaging.maintenance_window.time_of_day == "10:00"


# -- prod: a window of its own --------------------------------------------------------------------------------------
def test_prod_sharing_another_envs_window_is_refused_naming_that_env(edit_env: Any) -> None:
    edit_env("prod", lambda data: data["messaging"].update(
        maintenance_window=_window("THURSDAY", "04:00", "Europe/Dublin")))  # staging's THURSDAY 03:00, + 1 h
    [problem] = _refusals("prod")
    assert problem.key == "messaging.maintenance_window" and "staging's broker window" in problem.reason


def test_a_window_shared_in_winter_only_is_refused(edit_env: Any) -> None:
    # dev SUNDAY 04:00 Dublin is 04:00 UTC in January (overlaps prod's 05:00 UTC) and 03:00 UTC in July (does not)
    edit_env("dev", lambda data: data["messaging"].update(
        maintenance_window=_window("SUNDAY", "04:00", "Europe/Dublin")))
    edit_env("prod", lambda data: data["messaging"].update(maintenance_window=_window("SUNDAY", "05:00", "UTC")))
    assert utc_starts("SUNDAY", "04:00", "Europe/Dublin") == (6 * 1440 + 240, 6 * 1440 + 180)
    [problem] = _refusals("prod")
    assert "dev's broker window (SUNDAY 04:00 Europe/Dublin" in problem.reason


def test_an_external_envs_broker_has_no_window_to_share(edit_env: Any) -> None:
    edit_env("staging", lambda data: data["messaging"].update(
        broker="external", maintenance_window=_window("SUNDAY", "03:00", "Europe/Dublin"),
        external={"amqps_endpoint": "amqps://mq.example.com:5671", "management_endpoint": "https://mq.example.com"}))
    assert load_env("prod").messaging.maintenance_window.day_of_week == "SUNDAY"


def test_the_week_wraps_from_sunday_night_to_monday() -> None:
    assert windows_overlap(("SUNDAY", "23:00", "UTC"), ("MONDAY", "00:30", "UTC"))
    assert not windows_overlap(("SUNDAY", "22:00", "UTC"), ("MONDAY", "00:00", "UTC"))


# -- bad input -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("window", "key", "reason"), [
    (_window("SUNDAY", "03:00", "CET"), "time_zone", "Area/City"),
    (_window("SUNDAY", "03:00", "+01:00"), "time_zone", "Area/City"),
    (_window("SUNDAY", "03:00", "Europe/Atlantis"), "time_zone", "tz database"),
    (_window("SUNDAY", "3:00", "UTC"), "time_of_day", "pattern"),
    (_window("SUNDAY", "24:00", "UTC"), "time_of_day", "pattern"),
    (_window("SUNDAY", 46800, "UTC"), "time_of_day", "got int 46800"),  # YAML reads an unquoted 13:00 so
    (_window("SUN", "03:00", "UTC"), "day_of_week", "MONDAY"),
])
def test_a_window_amazon_mq_would_not_take_is_refused_naming_the_key(edit_env: Any, window: dict[str, Any], key: str,
                                                                     reason: str) -> None:
    edit_env("dev", lambda data: data["messaging"].update(maintenance_window=window))
    [problem] = _refusals("dev")
    assert problem.key == f"messaging.maintenance_window.{key}" and reason in problem.reason, problem


def test_time_zone_names() -> None:
    assert time_zone_problem("UTC") is None and time_zone_problem("America/Argentina/Buenos_Aires") is None
    assert time_zone_problem("Etc/GMT+1") is None and time_zone_problem("utc") is not None


def test_a_machine_without_a_tz_database_is_named_not_the_env_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """A runner image without tz data (no /usr/share/zoneinfo, no tzdata package) cannot resolve Europe/Dublin: the
    refusal says the machine lacks the tz database instead of calling the shipped zone unknown."""
    import sys
    import zoneinfo

    # the package fallback zoneinfo tries (and its zone submodules, imported already where an earlier test loaded one)
    for name in ["tzdata", *(name for name in sys.modules if name.startswith("tzdata."))]:
        monkeypatch.setitem(sys.modules, name, None)
    zoneinfo.reset_tzpath(to=[])
    zoneinfo.ZoneInfo.clear_cache()
    try:
        problem = time_zone_problem("Europe/Dublin")
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()
    assert problem is not None and "no tz database" in problem and "tzdata" in problem
    assert time_zone_problem("Europe/Dublin") is None
    assert "not in the tz database" in (time_zone_problem("Europe/Atlantis") or "")


def test_the_image_contract_tells_services_to_reconnect_through_the_window() -> None:
    from shared import REPO_ROOT

    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    contract = text.split("### What a service's image must provide", 1)[1].split("\n### ", 1)[0]
    for needed in ("reconnects, too, whenever its connection\ndrops, with a growing delay", "[maintenance window]",
                   "publisher\nconfirms", "never giving up"):
        assert needed in contract, f"README's image contract does not say {needed!r}"


def test_an_env_added_later_with_prods_hours_is_refused_in_its_own_file(edit_env: Any, env_dir: Any) -> None:
    """A new amazon-mq env file without a window (unset: SUNDAY 03:00 UTC, prod's hours) is refused when it is
    loaded itself, naming its own file, not only at prod's next load, which its author may never run."""
    sandbox = env_dir / "sandbox.yaml"
    sandbox.write_text((env_dir / "dev.yaml").read_text())
    edit_env("sandbox", lambda data: data["messaging"].pop("maintenance_window"))
    [problem] = [p for p in _refusals("sandbox") if p.key == "messaging.maintenance_window"]
    assert problem.file.endswith("sandbox.yaml"), problem.file
    assert "prod env prod's broker window (SUNDAY 03:00 Europe/Dublin" in problem.reason
    [problem] = [p for p in _refusals("prod") if p.key == "messaging.maintenance_window"]
    assert problem.file.endswith("prod.yaml") and "sandbox.yaml" in problem.reason


def test_the_window_edges_are_exact() -> None:
    """A window lasts up to two hours: starts 119 minutes apart overlap, 120 do not; a Monday window may start at
    06:00 (ending by 08:00) and not later."""
    for a, b in ((("MONDAY", "02:00", "UTC"), ("MONDAY", "03:59", "UTC")),
                 (("MONDAY", "03:59", "UTC"), ("MONDAY", "02:00", "UTC"))):
        assert windows_overlap(a, b)
    assert not windows_overlap(("MONDAY", "02:00", "UTC"), ("MONDAY", "04:00", "UTC"))
    assert business_hours_problem("MONDAY", "06:00") is None
    assert business_hours_problem("MONDAY", "06:01") is not None
