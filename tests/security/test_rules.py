"""The pure rules behind sign-in lockout and admin safety (no I/O)."""

from __future__ import annotations

import datetime as dt

import pytest

from app.core.auth.domain import check_admins_remain, failures_counted_since, locked, seconds_until
from app.core.errors import Conflict

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def test_a_lock_holds_until_its_end() -> None:
    assert locked(NOW + dt.timedelta(seconds=1), NOW)
    assert not locked(NOW, NOW) and not locked(None, NOW)


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    assert seconds_until(NOW + dt.timedelta(seconds=90.2), NOW) == 91
    assert seconds_until(NOW, NOW) == 1


def test_failures_count_within_the_window_and_after_the_last_lock_or_unlock() -> None:
    assert failures_counted_since(NOW, 900, None) == NOW - dt.timedelta(seconds=900)
    unlocked = NOW - dt.timedelta(seconds=60)
    assert failures_counted_since(NOW, 900, unlocked) == unlocked
    long_ago = NOW - dt.timedelta(days=1)
    assert failures_counted_since(NOW, 900, long_ago) == NOW - dt.timedelta(seconds=900)


def test_the_last_active_admin_stays() -> None:
    check_admins_remain(1)
    with pytest.raises(Conflict, match="no active admin"):
        check_admins_remain(0)
