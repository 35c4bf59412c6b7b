"""The tick schedule: due times from the plan, late slots skipped, never accumulated."""

from pipeline.server.runner import schedule


def test_an_early_tick_waits_for_its_slot():
    wait, skipped = schedule(start=100.0, slot=3, period=0.05, now=100.10)
    assert abs(wait - 0.05) < 1e-9 and skipped == 0


def test_a_late_tick_runs_at_once_without_making_up_lost_time():
    wait, skipped = schedule(start=100.0, slot=3, period=0.05, now=100.17)
    assert wait == 0.0 and skipped == 0            # 20 ms late: run now; the next slot is still 3 * 0.05 + 0.05


def test_whole_missed_slots_are_skipped_and_counted():
    assert schedule(start=100.0, slot=3, period=0.05, now=100.26) == (0.0, 2)


def test_due_times_do_not_drift():
    # After a slow tick the next one is due on the original grid, not one period after the slow one ended.
    start, period = 0.0, 0.05
    wait, _ = schedule(start, slot=4, period=period, now=0.19)
    assert abs((0.19 + wait) - 0.20) < 1e-9
