"""``python -m bench.profile_poll``: where a poll's CPU goes in the service, and what the
proposed changes would save.

The service runs in this process (Flask's test client, one thread), the sandbox in its own
(latency 0), so the CPU timer (``time.process_time``) counts only the service. Prints CPU
milliseconds per poll for the service as it is and for variants changed here at run time,
never in the service's files:
  - ``trust_env off``: the GHL client's ``requests.Session`` stops re-reading proxy settings
    from the environment on every request;
  - ``no shared reads``: the single-flight table is not consulted;
then a cProfile (CPU timer) of the unchanged service, the top functions by cumulative time.
"""

import argparse
import cProfile
import io
import logging
import pstats
import tempfile
import time

from bench.harness import LOCATION, SandboxProcess
from server.app import create_app

TRIGGER = "list_contacts_deprecated"


def make_app(sandbox_url, path):
    return create_app({"ghl_base_url": sandbox_url, "using_sandbox": True, "database_path": path,
                       "secret_key": "profile-secret", "log_level": "WARNING",
                       "ghl_burst_max": 10 ** 9, "ghl_burst_window_seconds": 0.0})


def poller(app, prefix):
    client = app.test_client()

    def poll(n):
        response = client.post(f"/triggers/{TRIGGER}", json={}, headers={
            "Authorization": f"Bearer bench-token-{n % 256}", "X-Location-Id": LOCATION,
            "X-Subscriber-Id": f"{prefix}{n}"})
        assert response.status_code == 200, response.data[:300]
    return poll


def cpu_ms_per_poll(poll, count, repeats=3):
    for n in range(50):
        poll(10 ** 7 + n)
    best = None
    for r in range(repeats):
        started = time.process_time()
        for n in range(count):
            poll(r * count + n)
        value = (time.process_time() - started) * 1000 / count
        best = value if best is None else min(best, value)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.profile_poll")
    parser.add_argument("--page-items", type=int, default=20)
    parser.add_argument("--polls", type=int, default=400)
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ghl-profile-") as workdir, \
            SandboxProcess(latency_ms=0, burst_limit=10 ** 9, daily_limit=10 ** 12, tokens=256) as sandbox:
        extra = args.page_items - 5
        if extra > 0:
            sandbox.add_records("/contacts/", [{"firstName": f"P{n}", "email": f"p{n}@example.com"}
                                               for n in range(extra)])

        def variant(name, change=None):
            app = make_app(sandbox.url, f"{workdir}/{name.replace(' ', '-')}.sqlite3")
            logging.getLogger().setLevel(logging.WARNING)
            if change:
                change(app.extensions["ghl_zapier"].client)
            value = cpu_ms_per_poll(poller(app, name), args.polls)
            print(f"{name:32} {value:6.2f} ms CPU per poll (page of {args.page_items})", flush=True)
            return app

        def trust_env_off(client):
            client.session.trust_env = False

        def no_shared_reads(client):
            client.shared_reads = None

        def both(client):
            trust_env_off(client)
            no_shared_reads(client)

        app = variant("as is")
        variant("trust_env off", trust_env_off)
        variant("no shared reads", no_shared_reads)
        variant("trust_env off + no shared reads", both)

        poll = poller(app, "profiled")
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        for n in range(args.polls):
            poll(n)
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
