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
That default mode measures *first* polls (a new ``X-Subscriber-Id`` per poll).

``--steady`` measures the steady state instead: a fixed set of Zaps (``--zaps``, each its own
``X-Subscriber-Id`` and token) polled round-robin, warmed up first (``--warmup`` rounds, so
every measured poll finds its whole page already known), in two configurations:
  - ``redelivers page``: default settings, the known items are answered again inside the
    redelivery window;
  - ``answers none``: ``redelivery_minutes=0``, the pure steady state (answers ``[]``);
measured in ``--rounds`` interleaved rounds of ``--polls`` polls each, best round reported
(``time.process_time``: service CPU plus Flask's test client, the sandbox runs elsewhere).
Then a cProfile of ``--profile-variant``'s steady polls (``--dump`` saves the pstats file).
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


STEADY_VARIANTS = {
    "redelivers page": {},
    "answers none": {"redelivery_minutes": 0},
}


def steady_poller(app, zaps):
    """Polls of ``zaps`` fixed Zaps in turn: poll ``n`` is Zap ``n % zaps``; returns the items."""
    client = app.test_client()

    def poll(n):
        zap = n % zaps
        response = client.post(f"/triggers/{TRIGGER}", json={}, headers={
            "Authorization": f"Bearer bench-token-{zap}", "X-Location-Id": LOCATION,
            "X-Subscriber-Id": f"zap{zap}"})
        assert response.status_code == 200, response.data[:300]
        return response
    return poll


def steady(args, workdir, sandbox):
    polls = {}
    for name, extra in STEADY_VARIANTS.items():
        app = create_app({"ghl_base_url": sandbox.url, "using_sandbox": True,
                          "database_path": f"{workdir}/steady-{name.replace(' ', '-')}.sqlite3",
                          "secret_key": "profile-secret", "log_level": "WARNING",
                          "ghl_burst_max": 10 ** 9, "ghl_burst_window_seconds": 0.0, **extra})
        logging.getLogger().setLevel(logging.WARNING)
        poll = steady_poller(app, args.zaps)
        for n in range(args.warmup * args.zaps):
            poll(n)
        answered = {len(poll(n).get_json()) for n in range(args.zaps)}
        print(f"{name:16} items answered per steady poll: {sorted(answered)}", flush=True)
        polls[name] = poll
    best = dict.fromkeys(polls)
    for _ in range(args.rounds):
        for name, poll in polls.items():  # interleaved, so a noisy neighbour hits every variant alike
            started = time.process_time()
            for n in range(args.polls):
                poll(n)
            value = (time.process_time() - started) * 1000 / args.polls
            best[name] = value if best[name] is None else min(best[name], value)
    for name, value in best.items():
        print(f"{name:16} {value:6.2f} ms CPU per steady poll (best of {args.rounds} x {args.polls}, "
              f"{args.zaps} Zaps, page of {args.page_items})", flush=True)
    if args.no_profile:
        return
    poll = polls[args.profile_variant]
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    for n in range(args.polls):
        poll(n)
    profile.disable()
    if args.dump:
        profile.dump_stats(args.dump)
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    print(f"cProfile of {args.polls} steady polls ({args.profile_variant}):", file=out)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    print(out.getvalue())


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.profile_poll")
    parser.add_argument("--page-items", type=int, default=20)
    parser.add_argument("--polls", type=int, default=400)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--steady", action="store_true",
                        help="measure steady-state polls (fixed Zaps, page already known) instead of first polls")
    parser.add_argument("--zaps", type=int, default=16, help="--steady: how many Zaps (X-Subscriber-Id)")
    parser.add_argument("--warmup", type=int, default=3, help="--steady: warm-up polls per Zap")
    parser.add_argument("--rounds", type=int, default=5, help="--steady: interleaved measured rounds")
    parser.add_argument("--profile-variant", choices=sorted(STEADY_VARIANTS), default="answers none")
    parser.add_argument("--dump", help="--steady: save the cProfile stats to this file")
    parser.add_argument("--no-profile", action="store_true", help="--steady: CPU per poll only, no cProfile")
    args = parser.parse_args(argv)
    if args.steady and not 0 < args.zaps <= 256:
        parser.error("--zaps must be between 1 and 256 (the sandbox's tokens)")
    with tempfile.TemporaryDirectory(prefix="ghl-profile-") as workdir, \
            SandboxProcess(latency_ms=0, burst_limit=10 ** 9, daily_limit=10 ** 12, tokens=256) as sandbox:
        extra = args.page_items - 5
        if extra > 0:
            sandbox.add_records("/contacts/", [{"firstName": f"P{n}", "email": f"p{n}@example.com"}
                                               for n in range(extra)])
        if args.steady:
            steady(args, workdir, sandbox)
            return 0

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
