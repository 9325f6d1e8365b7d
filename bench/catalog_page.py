"""``python -m bench.catalog_page``: how fast the catalog page (``GET /``) renders, in headless Chromium.

The service runs in this process (werkzeug, one loopback port, a background thread); one
Chromium loads each page ``--runs`` times (first load thrown away: it warms the caches) and
reads the browser's own timings (Navigation Timing and Paint Timing):
  - html KB: the page's HTML as sent; nodes: DOM elements when the load event has fired;
  - response: responseEnd (the HTML fully received; includes the server's render);
  - FCP: first-contentful-paint; DCL: domContentLoadedEventEnd; load: loadEventEnd;
  - complete: when the page's script says every record is built (``data-complete``);
all in ms from navigation start, the median of the runs.

Absolute times depend on the machine, so the table also gives each page's ratio to the
baseline measured in the same run: ``/?all=1``, where the server renders every operation
into the HTML (what the page did for every visitor before it rendered in chunks).
    python -m bench.catalog_page [--runs 7] [--path /?all=1 --path /]
"""

import argparse
import logging
import statistics
import tempfile
import threading

from werkzeug.serving import make_server

from server.app import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# Read once the load event has fired and the script (if any) says it is done.
TIMINGS_JS = """
const done = arguments[arguments.length - 1];
function read() {
  const nav = performance.getEntriesByType('navigation')[0];
  const paint = {};
  performance.getEntriesByType('paint').forEach(e => { paint[e.name] = e.startTime; });
  const shown = document.getElementById('shown-count');
  const complete = shown ? Number(shown.getAttribute('data-complete-at') || 0) : 0;
  done({
    html: nav.encodedBodySize || nav.transferSize, response: nav.responseEnd,
    fcp: paint['first-contentful-paint'] || null, fp: paint['first-paint'] || null,
    dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
    complete: complete || null, nodes: document.getElementsByTagName('*').length,
    cards: document.querySelectorAll('.operation').length
  });
}
function wait() {
  const nav = performance.getEntriesByType('navigation')[0];
  const shown = document.getElementById('shown-count');
  const ready = nav && nav.loadEventEnd > 0 &&
    (!shown || !shown.hasAttribute('data-complete') || shown.getAttribute('data-complete') === 'true');
  if (ready) { read(); } else { setTimeout(wait, 20); }
}
wait();
"""


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--window-size=1280,900"):
        options.add_argument(arg)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    browser.set_script_timeout(30)
    return browser


def measure(browser, url):
    browser.get(url)
    return browser.execute_async_script(TIMINGS_JS)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--path", action="append", help="page paths to load (default: /?all=1 and /)")
    args = parser.parse_args(argv)
    paths = args.path or ["/?all=1", "/"]

    with tempfile.TemporaryDirectory(prefix="bench-catalog-page-") as tmp:
        app = create_app({"database_path": f"{tmp}/db.sqlite3", "log_level": "WARNING"}, environ={})
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_port}"
        browser = chromium()
        try:
            results = {}
            for path in paths:
                measure(browser, base + path)  # warm-up
                runs = [measure(browser, base + path) for _ in range(args.runs)]
                results[path] = {name: statistics.median(r[name] for r in runs if r[name] is not None)
                                 if any(r[name] is not None for r in runs) else None
                                 for name in runs[0]}
        finally:
            browser.quit()
            server.shutdown()
            thread.join(timeout=5)
            server.server_close()

    print(f"catalog: {len(app.extensions['ghl_zapier'].catalog)} operations; median of {args.runs} loads (ms)")
    columns = ("html", "nodes", "cards", "response", "fcp", "dcl", "load", "complete")
    print(f"{'page':<14}" + "".join(f"{c:>10}" for c in columns))
    for path, row in results.items():
        cells = []
        for c in columns:
            value = row[c]
            if value is None:
                cells.append(f"{'-':>10}")
            elif c == "html":
                cells.append(f"{value / 1024:>8.0f}KB")
            else:
                cells.append(f"{value:>10.0f}")
        print(f"{path:<14}" + "".join(cells))
    baseline = results[paths[0]]
    for path in paths[1:]:
        row = results[path]
        ratios = ", ".join(f"{c} x{row[c] / baseline[c]:.2f}" for c in ("html", "nodes", "fcp", "dcl")
                           if row[c] and baseline[c])
        print(f"{path} vs {paths[0]}: {ratios}")
    return results


if __name__ == "__main__":
    main()
