"""The scheduler: run the pipeline on a cron schedule, but only when the inbox has changed.

Monthly extracts arrive (or are resubmitted) at unpredictable times, so the scheduler wakes on a
cron schedule, hashes the inbox's contents, and runs the pipeline only when that hash differs from
the last *successful* run's. A failed run is therefore retried on the next tick with no manual
clean-up, and an unchanged inbox costs one hash. Every tick is recorded in `runs.sqlite` (a
`skipped` row when nothing changed or another run holds the lock), so the admin page can show that
the scheduler is alive. Ticks missed while a run was in progress are not replayed: after each tick
the next due time is computed from the clock.

The 5-field cron parser is here rather than a dependency because it is ~100 lines; it follows
crontab(5): `*`, lists, ranges, steps (`*/15`, `0-30/10`, `5/20`), month and weekday names, day of
week 0-7 (0 and 7 are Sunday), the `@daily`-style macros, and the rule that when both day fields
are restricted a day matching *either* is due.

Running from cron or a systemd timer instead of this loop is described in docs/scheduling.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from pipelines.config import Config

# (the inbox's SHA-256, {top-level entry: its SHA-256}): pipelines.publish.hash_inbox
Hashed = tuple[str, dict[str, str]]

log = logging.getLogger(__name__)

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
# name, lowest, highest, names (index + offset = value)
_FIELDS = [
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day-of-month", 1, 31, None),
    ("month", 1, 12, (_MONTHS, 1)),
    ("day-of-week", 0, 7, (_DAYS, 0)),
]


def _value(text: str, fname: str, lo: int, hi: int, names) -> int:
    if names and text.upper() in names[0]:
        return names[0].index(text.upper()) + names[1]
    if not text.isdigit():
        raise ValueError(f"{fname}: {text!r} is not a number")
    n = int(text)
    if not lo <= n <= hi:
        raise ValueError(f"{fname}: {n} is outside {lo}-{hi}")
    return n


def _parse_field(text: str, fname: str, lo: int, hi: int, names) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{fname}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if rng == "*":
            start, end = lo, hi
        elif "-" in rng:
            a, b = rng.split("-", 1)
            start, end = _value(a, fname, lo, hi, names), _value(b, fname, lo, hi, names)
            if start > end:
                raise ValueError(f"{fname}: range {rng!r} runs backwards")
        else:
            start = _value(rng, fname, lo, hi, names)
            end = hi if step_text else start  # crontab(5): "5/20" means 5-max/20
        out.update(range(start, end + 1, step))
    return frozenset(out)


@dataclass(frozen=True)
class CronExpr:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday … 6 = Saturday
    day_or: bool  # both day fields restricted: either may match

    @classmethod
    def parse(cls, text: str) -> CronExpr:
        expr = _MACROS.get(text.strip().lower(), text)
        parts = expr.split()
        if len(parts) != 5:
            raise ValueError(
                f"cron expression {text!r} must have 5 fields (minute hour day-of-month month day-of-week)"
            )
        sets = [_parse_field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in sets[4])
        day_or = not parts[2].startswith("*") and not parts[4].startswith("*")
        cron = cls(text, sets[0], sets[1], sets[2], sets[3], weekdays, day_or)
        cron.next_after(dt.datetime(2000, 1, 1))  # rejects expressions that can never be due
        return cron

    def _day_matches(self, d: dt.date) -> bool:
        dom = d.day in self.days
        dow = (d.isoweekday() % 7) in self.weekdays
        return (dom or dow) if self.day_or else (dom and dow)

    def matches(self, t: dt.datetime) -> bool:
        return (
            t.minute in self.minutes
            and t.hour in self.hours
            and t.month in self.months
            and self._day_matches(t.date())
        )

    def next_after(self, t: dt.datetime) -> dt.datetime:
        """The first minute strictly after `t` that is due (naive wall-clock time in, naive out)."""
        t = t.replace(tzinfo=None, second=0, microsecond=0) + dt.timedelta(minutes=1)
        last_year = t.year + 9  # long enough for any leap day; beyond that it is never due
        while t.year <= last_year:
            if t.month not in self.months:
                t = dt.datetime(t.year + (t.month == 12), t.month % 12 + 1, 1)
            elif not self._day_matches(t.date()):
                t = dt.datetime(t.year, t.month, t.day) + dt.timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + dt.timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += dt.timedelta(minutes=1)
            else:
                return t
        raise ValueError(f"cron expression {self.text!r} is never due")


def next_due(cron: CronExpr, now: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The next due instant after `now` (aware), with the cron read as wall-clock time in `tz`."""
    local = now.astimezone(tz).replace(tzinfo=None)
    # A wall time skipped by a DST jump resolves forward (fold=0 keeps the old offset); a repeated
    # wall time runs at its first occurrence only, unless that is already past.
    while True:
        cand = cron.next_after(local)
        for fold in (0, 1):
            due = cand.replace(tzinfo=tz, fold=fold).astimezone(dt.UTC)
            if due > now:
                return due
        local = cand


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class TickOutcome:
    run_id: int
    status: str  # success | failed | skipped
    message: str


def run_once(
    config: Config, run_fn: Callable[[Config, Hashed], Any], *, trigger: str = "schedule", force: bool = False
) -> TickOutcome:
    """One tick: take the lock, hash the inbox, run `run_fn(config, hashed)` if it changed, record the
    outcome.

    `hashed` is :func:`pipelines.publish.hash_inbox`'s result, made here under the lock, so the run
    need not read the inbox a second time to hash it (national: 11 s). `force` runs even when the
    inbox is unchanged (a manual rebuild). `run_fn` may return a :class:`pipelines.runs.RunStats` or a
    mapping with the same keys, or None.
    """
    from pipelines.publish import hash_inbox
    from pipelines.runs import RunInProgress, RunLog, run_lock

    warehouse, inbox = config.pipeline.warehouse, config.pipeline.inbox
    runs = RunLog(warehouse)
    try:
        with run_lock(warehouse):
            runs.mark_interrupted()
            try:
                hashed = hash_inbox(inbox)
            except OSError as e:
                run_id = runs.record(trigger, "failed", message=f"cannot read the inbox: {e}")
                return TickOutcome(run_id, "failed", f"cannot read the inbox: {e}")
            inbox_hash = hashed[0]
            last = runs.last_successful()
            if not force and last is not None and last.inbox_hash == inbox_hash:
                msg = f"inbox unchanged since run {last.run_id} (build {last.build_id})"
                return TickOutcome(
                    runs.record(trigger, "skipped", inbox_hash=inbox_hash, message=msg), "skipped", msg
                )
            run_id = runs.start(trigger, inbox_hash)
            try:
                result = run_fn(config, hashed)
            except Exception as e:  # the outcome is recorded; the scheduler keeps going
                log.exception("run %s failed", run_id)
                msg = f"{type(e).__name__}: {e}"
                runs.finish(run_id, "failed", message=msg)
                return TickOutcome(run_id, "failed", msg)
            except BaseException:
                runs.finish(run_id, "failed", message="interrupted")
                raise
            stats = runs.finish(run_id, "success", result)
            return TickOutcome(run_id, "success", stats.message or "")
    except RunInProgress as e:
        return TickOutcome(runs.record(trigger, "skipped", message=str(e)), "skipped", str(e))


def run_scheduler(
    config: Config,
    run_fn: Callable[[Config, Hashed], Any],
    *,
    now_fn: Callable[[], dt.datetime] = _utcnow,
    sleep_fn: Callable[[float], None] = time.sleep,
    max_ticks: int | None = None,
) -> list[TickOutcome]:
    """Loop forever (or `max_ticks` ticks): sleep until the cron is next due, then :func:`run_once`.

    Sleeps in slices of at most a minute and re-reads the clock, so a suspended machine or a clock
    change delays a tick by at most a minute rather than by the whole interval.
    """
    cron = CronExpr.parse(config.schedule.cron)
    tz = ZoneInfo(config.schedule.timezone)
    outcomes: list[TickOutcome] = []
    while max_ticks is None or len(outcomes) < max_ticks:
        due = next_due(cron, now_fn(), tz)
        log.info("next tick at %s", due.isoformat())
        while (now := now_fn()) < due:
            sleep_fn(min((due - now).total_seconds(), 60.0))
        outcome = run_once(config, run_fn, trigger="schedule")
        log.info("tick: run %s %s %s", outcome.run_id, outcome.status, outcome.message)
        outcomes.append(outcome)
    return outcomes
