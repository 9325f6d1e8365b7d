"""Slow clients cannot starve the service (issue 10): with hundreds of connections trickling a
request, the service as the Procfile runs it still answers health checks and real polls within
a second, and it ends the trickling connections itself."""

import pytest

from bench.abuse import SlowClients, healthz_probe, poll_probe, probe_for
from server.routes.caller import BODY_SECONDS

SLOW = 500
# The Procfile's --keep-alive: how long gunicorn's gevent worker waits for a request's headers.
HEADER_SECONDS = 5
LIVENESS_SECONDS = 1.0


def probes_while_slow_clients_hold(url, mode, hold):
    """Latencies of /healthz and a real poll, probed one after another for ``hold`` seconds while
    SLOW connections trickle ``mode``; and the slow clients, to see what the server did to them."""
    clients = SlowClients(url, SLOW, mode).start()
    try:
        assert clients.open_now == SLOW and clients.open_failures == 0
        found = probe_for(hold, {"healthz": healthz_probe(url), "poll": poll_probe(url)}, timeout=LIVENESS_SECONDS)
    finally:
        clients.stop()
    return found, clients


def assert_all_answered_in_time(found):
    for name, latencies in found.items():
        late = [t for t in latencies if t is None or t >= LIVENESS_SECONDS]
        assert len(latencies) >= 5 and not late, f"{name}: {len(late)} of {len(latencies)} probes failed or took >= 1 s"


@pytest.mark.parametrize("mode, hold", [("headers", 2 * HEADER_SECONDS), ("body", BODY_SECONDS + 2)])
def test_slow_clients_do_not_starve_health_checks_or_polls(gunicorn_service, mode, hold):
    found, clients = probes_while_slow_clients_hold(gunicorn_service.url, mode, hold)
    assert_all_answered_in_time(found)
    if mode == "headers":
        # Headers that never end are cut after the keep-alive time, silently.
        assert clients.closed >= SLOW and not clients.answers
    else:
        # A body still arriving after BODY_SECONDS is answered 408, and the connection closed.
        assert clients.answers[408] >= SLOW and set(clients.answers) == {408}
