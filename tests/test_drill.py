"""A short fault drill (``bench.drill``) in the suite: about 20 s of GHL faults, gunicorn
worker kills, hook worker kills and a failing hook receiver, then a drain. Every contact
created meanwhile fires exactly once per Zap and per hook, and so does every event of the
event triggers (tag added, stage changed, form submitted: a Zap and a hook each), with nothing
firing that was not made. No timing is asserted: the drill's phases are bounded in time, the
outcome is counted.
"""

from bench.drill import EVENT_FEEDS, DrillConfig, format_report, run_drill

EVENT_TRIGGERS = {"contact_tag_added", "opportunity_stage_changed", "new_form_submission"}


def test_short_drill_loses_nothing_and_doubles_nothing():
    config = DrillConfig(minutes=0.33, zaps=2, hooks=1, rate=4.0, poll_interval=0.7, fault_interval=1.5,
                         kill_interval=4.0, hook_kill_interval=8.0, receiver_fail_share=0.3,
                         drain_seconds=90.0, settle_seconds=1.0, event_rate=1.5)
    report = run_drill(config)
    text = format_report(report)
    print(text)
    assert report.created > 0, text
    assert report.worker_kills > 0 and sum(report.faults.values()) > 0, text
    assert EVENT_TRIGGERS <= {feed.trigger for feed in EVENT_FEEDS}
    assert set(report.events) == EVENT_TRIGGERS and all(report.events.values()), text
    assert len(report.rows) == 3 + 2 * len(EVENT_TRIGGERS), text
    for row in report.rows:
        assert row["fired"] >= row["created"], text
        assert row["missing"] == 0, text
        assert row["duplicated"] == 0, text
        assert row["unexpected"] == 0, text
