"""A short fault drill (``bench.drill``) in the suite: about 20 s of GHL faults, gunicorn
worker kills, hook worker kills and a failing hook receiver, then a drain. Every contact
created meanwhile fires exactly once per Zap and per hook. No timing is asserted: the drill's
phases are bounded in time, the outcome is counted.
"""

from bench.drill import DrillConfig, format_report, run_drill


def test_short_drill_loses_nothing_and_doubles_nothing():
    config = DrillConfig(minutes=0.33, zaps=2, hooks=1, rate=4.0, poll_interval=0.7, fault_interval=1.5,
                         kill_interval=4.0, hook_kill_interval=8.0, receiver_fail_share=0.3,
                         drain_seconds=90.0, settle_seconds=1.0)
    report = run_drill(config)
    text = format_report(report)
    print(text)
    assert report.created > 0, text
    assert report.worker_kills > 0 and sum(report.faults.values()) > 0, text
    assert len(report.rows) == 3, text
    for row in report.rows:
        assert row["fired"] >= row["created"], text
        assert row["missing"] == 0, text
        assert row["duplicated"] == 0, text
