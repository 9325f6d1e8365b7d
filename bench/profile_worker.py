"""``python -m bench.profile_worker``: where a gunicorn worker's CPU goes while it serves polls.

Starts the sandbox (50 ms latency) and the service as the Procfile runs it but with one worker,
drives it with concurrent polls, and samples that worker with py-spy (``--gil``: only the thread
holding the interpreter lock, so the shares are Python CPU, not time spent waiting on sockets).
Prints the functions with the largest inclusive share of the samples.

py-spy is a profiler, not a dependency of the service: ``.venv/bin/pip install py-spy`` first.
"""

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.harness import LOCATION, SandboxProcess, Service
from bench.load import run_load

TRIGGER = "list_contacts_deprecated"
BIG = 10 ** 9


def py_spy():
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def frame_name(frame):
    """``fn (path/to/file.py:12)`` -> ``fn (file.py)``, with the venv and repo prefixes dropped."""
    match = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
    if not match:
        return frame
    path = match.group(2).split("site-packages/")[-1]
    return f"{match.group(1)} ({path.split('/main/')[-1]})"


def inclusive_shares(raw_lines):
    """Per function, the share of samples in which it is on the stack (py-spy's raw format)."""
    on_stack, total = collections.Counter(), 0
    for line in raw_lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        for name in {frame_name(frame) for frame in stack.split(";")}:
            on_stack[name] += int(count)
    return total, on_stack


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.profile_worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--steady", action="store_true",
                        help="256 Zaps polled in turn (steady state) instead of a new Zap per poll")
    args = parser.parse_args(argv)
    spy = py_spy()
    with tempfile.TemporaryDirectory(prefix="ghl-profile-") as workdir, \
            SandboxProcess(latency_ms=args.latency_ms, burst_limit=BIG, daily_limit=BIG, tokens=256) as sandbox, \
            Service(sandbox.url, Path(workdir) / "service.sqlite3", workers=1,
                    env={"GHL_BURST_MAX": str(BIG), "GHL_BURST_WINDOW_SECONDS": "0"}) as service:
        def poll(session, n):
            response = session.post(f"{service.url}/triggers/{TRIGGER}", json={}, timeout=60, headers={
                "Authorization": f"Bearer bench-token-{n % 256}", "X-Location-Id": LOCATION,
                "X-Subscriber-Id": f"profile-{n % 256 if args.steady else n}"})
            response.content
            return response.status_code

        run_load(poll, args.concurrency, seconds=2, warmup_s=1)
        raw = Path(workdir) / "samples.txt"
        sampler = subprocess.Popen(
            [spy, "record", "--gil", "--nonblocking", "--rate", "200", "--duration", str(int(args.seconds)),
             "--format", "raw", "--output", str(raw), "--pid", str(service.worker_pids()[0])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        result = run_load(poll, args.concurrency, seconds=args.seconds, warmup_s=0.5)
        _, errors = sampler.communicate(timeout=args.seconds + 60)
        if sampler.returncode != 0 or not raw.exists():
            raise SystemExit(f"py-spy failed: {errors.decode()[-500:]}")
        total, on_stack = inclusive_shares(raw.read_text().splitlines())
    print(f"{result.count} polls at concurrency {args.concurrency}, {result.throughput:.0f}/s, "
          f"p50 {result.p50:.1f} ms; {total} samples of the worker holding the GIL")
    for name, count in on_stack.most_common(args.top):
        print(f"{100 * count / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
