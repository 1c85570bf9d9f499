"""When CI refreshes each environment: a cron schedule per environment, UTC.

By default every environment refreshes daily from 05:07 UTC, in promotion order, 20
minutes apart: after the usual overnight loads; off the top of the hour, when GitHub delays
scheduled runs most; one at a time, so that refreshes of one warehouse do not pile up and,
where code is equal, a later environment reuses the versions an earlier one wrote and
verified. `releasekit ci init --refresh-schedule` sets other times: a bare CRON for every
environment, ENV=CRON for one.

A schedule reaches YAML and, on GitHub, a quoted string inside an expression (the job
compares it with `github.event.schedule`), so its fields are held to cron's own characters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from releasekit.errors import ConfigError

FIRST_HOUR, FIRST_MINUTE, STAGGER_MINUTES = 5, 7, 20
_FIELD = re.compile(r"[0-9A-Za-z*,/-]+")
_HINT = (
    "give five fields, minute hour day-of-month month day-of-week, in UTC: for example "
    "--refresh-schedule '7 5 * * *' (daily at 05:07) for every environment, or "
    "--refresh-schedule 'prod=7 6 * * 1-5' for one"
)


def refresh_schedules(names: Sequence[str], given: Sequence[str] = ()) -> dict[str, str]:
    """name -> cron for each of `names` (in promotion order): its `ENV=CRON` in `given`,
    else the last bare `CRON` in `given`, else the default, staggered."""
    chosen: dict[str, str] = {}
    every: str | None = None
    for value in given:
        env, named, cron = value.rpartition("=")
        if not named:
            every = cron_schedule(value)
        elif env not in names:
            known = ", ".join(names)
            raise ConfigError(
                f"--refresh-schedule {value!r} names {env!r}, which CI does not deploy ({known})",
                hint=f"name one of: {known}; or leave ENV= out to schedule them all",
            )
        else:
            chosen[env] = cron_schedule(cron, given=value)
    return {name: chosen.get(name) or every or default_schedule(i) for i, name in enumerate(names)}


def default_schedule(position: int) -> str:
    """The default cron of the environment at `position` in promotion order."""
    minutes = FIRST_HOUR * 60 + FIRST_MINUTE + position * STAGGER_MINUTES
    return f"{minutes % 60} {minutes // 60 % 24} * * *"


def cron_schedule(text: str, *, given: str | None = None) -> str:
    """`text` as a five-field cron schedule, its fields one space apart."""
    fields = text.split()
    if len(fields) != 5:
        problem = f"it has {len(fields)} fields, not 5"
    elif not all(_FIELD.fullmatch(field) for field in fields):
        problem = "it has characters cron does not use"
    else:
        return " ".join(fields)
    raise ConfigError(f"--refresh-schedule {given or text!r} is not a cron schedule: {problem}", hint=_HINT)
