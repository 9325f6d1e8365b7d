"""Short fault drills (``bench.drill``) in the suite: about 20 s of GHL faults, gunicorn
worker kills, hook worker kills and a failing hook receiver, then a drain. Every contact
created meanwhile fires exactly once per Zap and per hook, and so does every event of the
event triggers (tag added, stage changed, form submitted: a Zap and a hook each), with nothing
firing that was not made. No timing is asserted: the drill's phases are bounded in time, the
outcome is counted.

The two-host drill runs two hosts (a gunicorn group and a hook worker each) on one PostgreSQL
database: Zaps poll through both in turn, hooks are subscribed on one host and deleted on the
other, kills hit both, and the sandbox must never have refused a request for its burst limit
(the hosts share one rate budget). It uses the session's real PostgreSQL server
(``postgres_server``): without Debian's PostgreSQL binaries that fixture raises, so the test
errors, never skips (``make test`` installs them).
"""

from bench.drill import EVENT_FEEDS, DrillConfig, format_report, run_drill

EVENT_TRIGGERS = {"contact_tag_added", "opportunity_stage_changed", "new_form_submission"}


def short_drill(**overrides):
    return DrillConfig(**{**dict(minutes=0.33, zaps=2, hooks=1, rate=4.0, poll_interval=0.7, fault_interval=1.5,
                                 kill_interval=4.0, hook_kill_interval=8.0, receiver_fail_share=0.3,
                                 drain_seconds=90.0, settle_seconds=1.0, event_rate=1.5), **overrides})


def assert_nothing_lost_or_doubled(report, text):
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


def test_short_drill_loses_nothing_and_doubles_nothing():
    report = run_drill(short_drill())
    text = format_report(report)
    print(text)
    assert_nothing_lost_or_doubled(report, text)
    assert report.ghl_calls > 0 and not report.rate_problems, text
    assert not report.failed, text


def test_two_hosts_on_postgres_share_everything(postgres_server):
    database_url = postgres_server.fresh_database("drill")
    report = run_drill(short_drill(hosts=2, backend="postgres", database_url=database_url, hook_kill_interval=5.0,
                                   churn_interval=4.0))
    text = format_report(report)
    print(text)
    assert report.backend == "postgres" and len(report.hosts) == 2, text
    assert_nothing_lost_or_doubled(report, text)
    for host in report.hosts:  # both hosts served polls and lost processes
        assert host["polls"].get(200, 0) > 0, text
        assert host["worker_kills"] > 0 and host["hook_worker_kills"] > 0, text
        assert host["hooks_subscribed"] > 0 and host["hooks_deleted"] > 0, text
    # Hooks subscribed on one host were seen, deleted and stopped by the other, during the chaos too.
    deleted = [check for check in report.hook_checks if check.get("deleted_on")]
    assert len(deleted) >= 1 + len(EVENT_TRIGGERS) + 1, text
    assert any(check["kind"] == "churn" for check in deleted), text
    assert not report.hook_problems, text
    # One rate budget for both hosts: the sandbox never refused the service for its burst limit.
    assert report.ghl_calls > 0 and report.rate["limit"] == 50, text
    assert not report.rate_problems, text
    assert not report.failed, text
