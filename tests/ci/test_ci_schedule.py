"""When CI refreshes each environment: the default, staggered in promotion order, and the
schedules `--refresh-schedule` gives."""

from __future__ import annotations

import pytest

from releasekit.ci.schedule import cron_schedule, default_schedule, refresh_schedules
from releasekit.errors import ConfigError


def test_the_default_is_daily_from_0507_utc_twenty_minutes_apart_in_promotion_order() -> None:
    assert refresh_schedules(["dev", "staging", "prod"]) == {
        "dev": "7 5 * * *",
        "staging": "27 5 * * *",
        "prod": "47 5 * * *",
    }
    assert default_schedule(3) == "7 6 * * *"
    assert default_schedule(3 * 24) == "7 5 * * *"  # a day later: past midnight, wraps


def test_a_bare_cron_is_every_environment_s_and_env_cron_one_s_whatever_the_order() -> None:
    given = ["prod=0 7 * * 1-5", "30 6 * * *"]
    assert refresh_schedules(["dev", "prod"], given) == {"dev": "30 6 * * *", "prod": "0 7 * * 1-5"}
    assert refresh_schedules(["dev", "prod"], ["dev=0 1 * * *"]) == {"dev": "0 1 * * *", "prod": "27 5 * * *"}


def test_a_schedule_is_held_to_cron_s_characters_and_spaced_one_apart() -> None:
    assert cron_schedule("*/15\t0-6,22-23  *  JAN-MAR mon-fri") == "*/15 0-6,22-23 * JAN-MAR mon-fri"
    for unsafe in ("0 6 * * '1'", '0 6 * * "1"', "0 6 * * ${x}", "0 6 * * 1#2"):
        with pytest.raises(ConfigError, match="characters cron does not use"):
            cron_schedule(unsafe)
