"""The catalog web page (``GET /``), driven in headless Chromium.

The real app is served on a loopback port from a background thread; one browser serves the
whole module. Each test loads the page afresh and checks what a user sees against the
catalog itself and against the JSON ``/catalog`` endpoint, so the tests hold whatever
records load.

The page's HTML holds only the first screens of operations; its script builds the rest after
the first paint. ``open_page`` waits until every card is built; the tests that are about the
first render read the page before that. Timings are measured and reported (printed and
recorded as test properties), never asserted: the assertions are structural.
"""

import json
import os
import tempfile
import threading
import urllib.parse
import urllib.request

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

_missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
if _missing:
    pytest.skip(f"the catalog page tests need headless Chromium; missing: {', '.join(_missing)}",
                allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from server.app import create_app  # noqa: E402
from server.routes.catalog_pages import FIRST_CHUNK, INLINE_SCRIPT, MAX_NAME_LENGTH, MAX_Q_LENGTH  # noqa: E402

WAIT_SECONDS = 5
NOTHING_MATCHES = "zzq-no-such-operation-zzq"


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def app(tmp_path_factory):
    database = tmp_path_factory.mktemp("catalog-page") / "db.sqlite3"
    return create_app({"database_path": str(database)}, environ={})


@pytest.fixture(scope="module")
def catalog(app):
    return app.extensions["ghl_zapier"].catalog


@pytest.fixture(scope="module")
def base_url(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="catalog-page-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


@pytest.fixture(scope="module")
def driver():
    with tempfile.TemporaryDirectory(prefix="catalog-page-chromium-") as profile:
        options = Options()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    f"--user-data-dir={profile}"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            yield browser
        finally:
            browser.quit()


@pytest.fixture
def page(driver, base_url):
    """The catalog page, loaded and with its script applied."""
    open_page(driver, base_url + "/")
    return driver


# ---------------------------------------------------------------- helpers

def open_page(driver, url):
    """Load the page and wait until its script has the data and has built every card."""
    driver.get(url)
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: d.find_element(By.ID, "shown-count").get_attribute("data-shown") is not None,
        "the catalog script never ran")
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: d.find_element(By.ID, "shown-count").get_attribute("data-complete") == "true",
        "the catalog script never finished building the cards")


def catalog_json(base_url, **params):
    """The JSON ``/catalog`` answer for these filters."""
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v})
    with urllib.request.urlopen(f"{base_url}/catalog?{query}", timeout=5) as response:
        assert response.status == 200
        return json.load(response)


def card_text(driver, key):
    """The card's text with its detail view open (loaded), whitespace normalised."""
    card = driver.find_element(By.CSS_SELECTOR, f'.operation[data-key="{key}"]')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", card)
    details = card.find_element(By.CSS_SELECTOR, ".op-inputs")
    if not details.get_attribute("open"):
        card.find_element(By.CSS_SELECTOR, ".op-inputs summary").click()
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: not card.find_elements(By.CSS_SELECTOR, ".op-detail[data-lazy]"), f"{key}: details never loaded")
    return " ".join(driver.execute_script("return arguments[0].innerText;", card).split())


def keys_of(answer):
    return {record["key"] for record in answer["operations"]}


def visible_keys(driver):
    """Keys of the .operation elements that render (a hidden ancestor hides them too)."""
    return set(driver.execute_script(
        "return Array.from(document.querySelectorAll('.operation'))"
        ".filter(e => e.getClientRects().length > 0).map(e => e.dataset.key);"))


def visible_categories(driver):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('section.category'))"
        ".filter(e => e.getClientRects().length > 0).map(e => e.dataset.category);")


def shown_text(n):
    return f"{n} operation shown" if n == 1 else f"{n} operations shown"


def wait_for_shown(driver, n):
    """Wait until the live counter reads ``n``; the filters run as events arrive."""
    WebDriverWait(driver, WAIT_SECONDS).until(
        EC.text_to_be_present_in_element((By.ID, "shown-count"), shown_text(n)),
        f"#shown-count never read {shown_text(n)!r}")
    assert driver.find_element(By.ID, "shown-count").text == shown_text(n)


def type_into_search(driver, text):
    search = driver.find_element(By.ID, "search")
    search.send_keys(text)  # one key event at a time, as a user types
    return search


def clear_search_by_keyboard(driver):
    search = driver.find_element(By.ID, "search")
    search.send_keys(Keys.CONTROL, "a")
    search.send_keys(Keys.BACKSPACE)
    return search


def matches_q(record, q):
    needle = q.strip().lower()
    return any(needle in record[field].lower() for field in ("name", "summary", "path"))


# ---------------------------------------------------------------- tests

def test_totals_match_catalog_counts(page, catalog):
    counts = catalog.counts()
    for name in ("operations", "triggers", "actions", "categories"):
        assert page.find_element(By.ID, f"total-{name}").text == str(counts[name]), name
    assert len(page.find_elements(By.CSS_SELECTOR, ".operation")) == counts["operations"]
    assert visible_keys(page) == {record["key"] for record in catalog.operations}
    assert visible_categories(page) == [category["name"] for category in catalog.categories()]
    assert page.find_element(By.ID, "shown-count").text == shown_text(counts["operations"])
    assert not page.find_element(By.ID, "no-match").is_displayed()


def test_operation_cards_show_the_record(page, catalog):
    # The record with the most inputs exercises the collapsed inputs table; past the first
    # screens, its card is one the script built.
    record = max(catalog.operations, key=lambda r: len(r["inputs"]))
    card = page.find_element(By.CSS_SELECTOR, f'.operation[data-key="{record["key"]}"]')
    assert card.get_attribute("data-kind") == record["kind"]
    assert card.get_attribute("data-category") == record["category"]
    assert card.get_attribute("data-service") == record["service"]
    assert card.get_attribute("data-origin") == record["origin"]
    page.execute_script("arguments[0].scrollIntoView({block: 'center'});", card)
    assert card.find_element(By.CSS_SELECTOR, ".op-name").text == record["name"]
    assert card.find_element(By.CSS_SELECTOR, ".badge").get_attribute("textContent") == record["kind"]
    assert card.find_element(By.CSS_SELECTOR, ".op-summary").text == record["summary"]
    assert card.find_element(By.CSS_SELECTOR, ".method").text == record["method"]
    assert card.find_element(By.CSS_SELECTOR, ".path").text == record["path"]
    assert card.find_element(By.CSS_SELECTOR, ".service").text == record["service"]
    scopes = [e.text for e in card.find_elements(By.CSS_SELECTOR, ".scope")]
    assert scopes == record["scopes"]
    if record["version"]:
        assert record["version"] in card.find_element(By.CSS_SELECTOR, ".op-meta").text

    details = card.find_element(By.CSS_SELECTOR, ".op-inputs")
    assert not details.get_attribute("open")  # collapsed until opened
    card.find_element(By.CSS_SELECTOR, ".op-inputs summary").click()
    WebDriverWait(page, WAIT_SECONDS).until(
        lambda d: len(card.find_elements(By.CSS_SELECTOR, ".op-inputs tbody tr")) == len(record["inputs"]))
    rows = card.find_elements(By.CSS_SELECTOR, ".op-inputs tbody tr")
    WebDriverWait(page, WAIT_SECONDS).until(lambda d: rows[0].is_displayed())
    first = record["inputs"][0]
    assert rows[0].find_element(By.CSS_SELECTOR, "code").text == first["key"]
    assert ("required" in rows[0].text.lower()) == first["required"]
    required = sum(1 for row in rows if "required" in (row.get_attribute("class") or "").split())
    assert required == sum(1 for field in record["inputs"] if field["required"])


def flagged_records(catalog):
    """One record of each kind of flag (and a plain hand-written one), for the card tests."""
    picks = {}
    for record in catalog.operations:
        access = record.get("access") or []
        replacement = (record.get("deprecated") or {}).get("replacement")
        for name, wanted in (("hand-written", record["origin"] == "hand-written"),
                             ("generated-unknown", bool((record.get("generated") or {}).get("unknown"))),
                             ("agency", "agency" in access), ("oauth", "oauth" in access),
                             ("deprecated-replaced", bool(replacement)),
                             ("deprecated-alone", bool(record.get("deprecated")) and not replacement)):
            if wanted:
                picks.setdefault(name, record)
    return picks


def test_cards_built_by_the_script_match_the_server_rendered_ones(driver, base_url, catalog):
    picks = flagged_records(catalog)
    first_keys = {r["key"] for r in catalog.operations[:FIRST_CHUNK]}
    built = {name: r for name, r in picks.items() if r["key"] not in first_keys}
    assert built, "every flagged record is in the first screens; nothing to compare"
    open_page(driver, base_url + "/")
    from_script = {name: card_text(driver, r["key"]) for name, r in built.items()}
    open_page(driver, base_url + "/?all=1")  # the server renders every card
    for name, record in built.items():
        assert card_text(driver, record["key"]) == from_script[name], name


def test_badges_say_where_a_record_comes_from_and_what_it_needs(page, catalog):
    picks = flagged_records(catalog)
    for name in ("hand-written", "generated-unknown", "agency", "oauth", "deprecated-replaced"):
        assert name in picks, f"the catalog has no {name} record"
    for record in catalog.operations:
        card = page.find_element(By.CSS_SELECTOR, f'.operation[data-key="{record["key"]}"]')
        flags = {e.get_attribute("textContent") for e in card.find_elements(By.CSS_SELECTOR, ".flag")}
        access = record.get("access") or []
        expected = ({"generated"} if record["origin"] == "generated" else set()) \
            | ({"agency only"} if "agency" in access else set()) | ({"OAuth only"} if "oauth" in access else set()) \
            | ({"deprecated"} if record.get("deprecated") else set())
        assert flags == expected, record["key"]
    notes = page.find_element(By.CSS_SELECTOR, f'.operation[data-key="{picks["agency"]["key"]}"] .op-notes')
    assert "agency token only" in notes.get_attribute("textContent").lower()
    notes = page.find_element(By.CSS_SELECTOR, f'.operation[data-key="{picks["oauth"]["key"]}"] .op-notes')
    assert "oauth token only" in notes.get_attribute("textContent").lower()


def test_detail_view_says_what_the_spec_does_not(page, catalog):
    record = flagged_records(catalog)["generated-unknown"]
    text = card_text(page, record["key"])
    assert "Generated from " + record["generated"]["from"] in text
    card = page.find_element(By.CSS_SELECTOR, f'.operation[data-key="{record["key"]}"]')
    items = [e.text for e in card.find_elements(By.CSS_SELECTOR, ".op-unknown li")]
    assert items == record["generated"]["unknown"]
    summary = card.find_element(By.CSS_SELECTOR, ".op-inputs summary").text
    assert f'{len(record["generated"]["unknown"])} unknown' in summary


def test_deprecated_card_links_to_its_replacement_even_when_filtered_out(page, catalog):
    record = flagged_records(catalog)["deprecated-replaced"]
    replacement = catalog.get(record["deprecated"]["replacement"])
    Select(page.find_element(By.ID, "origin-filter")).select_by_value(record["origin"])
    type_into_search(page, record["name"])
    card = page.find_element(By.CSS_SELECTOR, f'.operation[data-key="{record["key"]}"]')
    WebDriverWait(page, WAIT_SECONDS).until(lambda d: card.is_displayed())
    target = page.find_element(By.CSS_SELECTOR, f'.operation[data-key="{replacement["key"]}"]')
    link = card.find_element(By.CSS_SELECTOR, ".note-deprecated a.replacement")
    assert link.text == replacement["name"]
    if not matches_q(replacement, record["name"]):
        assert not target.is_displayed()
    link.send_keys(Keys.ENTER)  # by keyboard
    WebDriverWait(page, WAIT_SECONDS).until(lambda d: target.is_displayed())
    assert page.switch_to.active_element == target
    assert page.current_url.endswith("#op-" + replacement["key"])


def test_a_link_to_a_card_past_the_first_screens_scrolls_to_it(driver, base_url, catalog):
    record = catalog.operations[-1]
    driver.get(f"{base_url}/#op-{record['key']}")
    card = WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: d.find_element(By.CSS_SELECTOR, f'.operation[data-key="{record["key"]}"]'))
    WebDriverWait(driver, WAIT_SECONDS).until(lambda d: driver.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return r.top >= 0 && r.top < innerHeight;", card))


def test_typing_narrows_to_search_matches(page, base_url, catalog):
    total = len(catalog)
    type_into_search(page, "con")
    partial = catalog_json(base_url, q="con")
    wait_for_shown(page, partial["counts"]["operations"])
    assert visible_keys(page) == keys_of(partial)

    type_into_search(page, "tact")
    answer = catalog_json(base_url, q="contact")
    expected = keys_of(answer)
    assert expected == {r["key"] for r in catalog.operations if matches_q(r, "contact")}
    assert 0 < len(expected) < total
    wait_for_shown(page, len(expected))
    assert visible_keys(page) == expected
    assert visible_categories(page) == [category["name"] for category in answer["categories"]]


def test_search_ignores_case_and_surrounding_spaces(page, base_url):
    type_into_search(page, "  CONTACT ")
    expected = keys_of(catalog_json(base_url, q="contact"))
    wait_for_shown(page, len(expected))
    assert visible_keys(page) == expected


def test_kind_filter_narrows_further(page, base_url):
    type_into_search(page, "contact")
    searched = keys_of(catalog_json(base_url, q="contact"))
    wait_for_shown(page, len(searched))

    Select(page.find_element(By.ID, "kind-filter")).select_by_value("action")
    expected = keys_of(catalog_json(base_url, q="contact", kind="action"))
    assert expected < searched
    wait_for_shown(page, len(expected))
    assert visible_keys(page) == expected
    kinds = page.execute_script(
        "return Array.from(document.querySelectorAll('.operation'))"
        ".filter(e => e.getClientRects().length > 0).map(e => e.dataset.kind);")
    assert set(kinds) == {"action"}


def test_category_filter_hides_other_sections(page, base_url, catalog):
    categories = [category["name"] for category in catalog.categories()]
    chosen = "Contacts" if "Contacts" in categories else categories[0]
    Select(page.find_element(By.ID, "category-filter")).select_by_value(chosen)
    expected = keys_of(catalog_json(base_url, category=chosen))
    wait_for_shown(page, len(expected))
    assert visible_keys(page) == expected
    assert visible_categories(page) == [chosen]
    for section in page.find_elements(By.CSS_SELECTOR, "section.category"):
        assert section.is_displayed() == (section.get_attribute("data-category") == chosen)


def test_clearing_restores_everything(page, base_url, catalog):
    narrowed = catalog_json(base_url, q="contact", kind="action")
    assert narrowed["operations"], "the catalog has no contact actions to filter by"
    category = narrowed["operations"][0]["category"]
    type_into_search(page, "contact")
    Select(page.find_element(By.ID, "kind-filter")).select_by_value("action")
    Select(page.find_element(By.ID, "category-filter")).select_by_value(category)
    expected = keys_of(catalog_json(base_url, q="contact", kind="action", category=category))
    wait_for_shown(page, len(expected))
    assert visible_keys(page) == expected

    # Emptying the search box by keyboard leaves the other filters in force...
    clear_search_by_keyboard(page)
    expected = keys_of(catalog_json(base_url, kind="action", category=category))
    wait_for_shown(page, len(expected))
    assert visible_keys(page) == expected

    # ...and the Clear button restores the whole catalog.
    Select(page.find_element(By.ID, "origin-filter")).select_by_value(narrowed["operations"][0]["origin"])
    Select(page.find_element(By.ID, "service-filter")).select_by_value(narrowed["operations"][0]["service"])
    page.find_element(By.ID, "clear-filters").click()
    wait_for_shown(page, len(catalog))
    assert visible_keys(page) == {record["key"] for record in catalog.operations}
    assert visible_categories(page) == [c["name"] for c in catalog.categories()]
    assert page.find_element(By.ID, "search").get_attribute("value") == ""
    assert Select(page.find_element(By.ID, "kind-filter")).first_selected_option.get_attribute("value") == ""
    for control in ("category-filter", "service-filter", "origin-filter"):
        assert Select(page.find_element(By.ID, control)).first_selected_option.get_attribute("value") == ""


def test_query_matching_nothing_shows_no_match_message(page, base_url, catalog):
    assert catalog_json(base_url, q=NOTHING_MATCHES)["operations"] == []
    no_match = page.find_element(By.ID, "no-match")
    assert not no_match.is_displayed()
    type_into_search(page, NOTHING_MATCHES)
    wait_for_shown(page, 0)
    WebDriverWait(page, WAIT_SECONDS).until(EC.visibility_of(no_match))
    assert "no operations match" in no_match.text.lower()
    assert visible_keys(page) == set()
    assert visible_categories(page) == []

    clear_search_by_keyboard(page)
    wait_for_shown(page, len(catalog))
    WebDriverWait(page, WAIT_SECONDS).until(EC.invisibility_of_element(no_match))


def test_filters_round_trip_through_the_address(driver, base_url):
    open_page(driver, base_url + "/?q=contact&kind=action")
    expected = keys_of(catalog_json(base_url, q="contact", kind="action"))
    wait_for_shown(driver, len(expected))
    assert visible_keys(driver) == expected
    assert driver.find_element(By.ID, "search").get_attribute("value") == "contact"

    Select(driver.find_element(By.ID, "kind-filter")).select_by_value("trigger")
    WebDriverWait(driver, WAIT_SECONDS).until(lambda d: "kind=trigger" in d.current_url)


def test_page_loads_without_console_errors(driver, base_url):
    driver.get_log("browser")  # drop what earlier tests logged
    open_page(driver, base_url + "/")
    type_into_search(driver, "contact")
    Select(driver.find_element(By.ID, "kind-filter")).select_by_value("search")
    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []


def test_service_and_origin_filters_narrow_the_page(page, base_url, catalog):
    service = "invoices" if "invoices" in catalog.services() else catalog.services()[0]
    Select(page.find_element(By.ID, "service-filter")).select_by_value(service)
    expected = keys_of(catalog_json(base_url, service=service))
    assert expected == {r["key"] for r in catalog.operations if r["service"] == service}
    wait_for_shown(page, len(expected))
    assert visible_keys(page) == expected
    WebDriverWait(page, WAIT_SECONDS).until(lambda d: f"service={service}" in d.current_url)

    Select(page.find_element(By.ID, "service-filter")).select_by_value("")
    for origin in ("generated", "hand-written"):
        Select(page.find_element(By.ID, "origin-filter")).select_by_value(origin)
        expected = keys_of(catalog_json(base_url, origin=origin))
        assert 0 < len(expected) < len(catalog)
        wait_for_shown(page, len(expected))
        assert visible_keys(page) == expected

    # Both, with the kind filter and a search: the page agrees with GET /catalog.
    Select(page.find_element(By.ID, "service-filter")).select_by_value(service)
    Select(page.find_element(By.ID, "origin-filter")).select_by_value("generated")
    Select(page.find_element(By.ID, "kind-filter")).select_by_value("action")
    answer = catalog_json(base_url, service=service, origin="generated", kind="action")
    wait_for_shown(page, len(answer["operations"]))
    assert visible_keys(page) == keys_of(answer)
    assert visible_categories(page) == [c["name"] for c in answer["categories"]]


def test_every_filter_has_a_label_and_takes_the_keyboard(page):
    for control in ("search", "kind-filter", "category-filter", "service-filter", "origin-filter"):
        element = page.find_element(By.ID, control)
        labels = page.execute_script("return Array.from(arguments[0].labels).map(l => l.textContent.trim());", element)
        assert labels and labels[0], control
    page.find_element(By.TAG_NAME, "body").send_keys("/")
    assert page.switch_to.active_element.get_attribute("id") == "search"
    page.switch_to.active_element.send_keys(Keys.TAB, Keys.TAB, Keys.TAB)
    assert page.switch_to.active_element.get_attribute("id") == "service-filter"


def test_filters_in_the_address_are_rendered_by_the_server(driver, base_url, catalog):
    service = "invoices" if "invoices" in catalog.services() else catalog.services()[0]
    open_page(driver, f"{base_url}/?service={service}&origin=generated")
    expected = keys_of(catalog_json(base_url, service=service, origin="generated"))
    wait_for_shown(driver, len(expected))
    assert visible_keys(driver) == expected
    assert Select(driver.find_element(By.ID, "service-filter")).first_selected_option.get_attribute("value") == service
    assert Select(driver.find_element(By.ID, "origin-filter")).first_selected_option.get_attribute("value") == "generated"


# ---------------------------------------------------------------- the first render

def first_render(driver, url):
    """Load ``url`` and read, once the script is done: the browser's timings (ms from navigation
    start) and what the page held when it first painted."""
    driver.get(url)
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: d.find_element(By.ID, "shown-count").get_attribute("data-complete") == "true")
    return driver.execute_script("""
        const nav = performance.getEntriesByType('navigation')[0];
        const paint = {};
        performance.getEntriesByType('paint').forEach(e => { paint[e.name] = e.startTime; });
        const shown = document.getElementById('shown-count').dataset;
        return {fcp: paint['first-contentful-paint'], dcl: nav.domContentLoadedEventEnd,
                html: nav.decodedBodySize, complete: Number(shown.completeAt || 0),
                first_cards: Number(shown.firstCards), cards_at_first_frame: Number(shown.cardsAtFirstFrame),
                cards: document.querySelectorAll('.operation').length, viewport: innerHeight,
                first_bottom: (() => {
                  const first = Array.from(document.querySelectorAll('.operation')).slice(0, Number(shown.firstCards));
                  return first.length ? first[first.length - 1].getBoundingClientRect().bottom : 0;
                })()};""")


def test_first_render_is_measured_and_the_first_screen_comes_before_the_rest(
        driver, base_url, catalog, record_property):
    total = len(catalog)
    first_render(driver, base_url + "/")  # warm the caches (CSS, script, page data)
    first_render(driver, base_url + "/?all=1")
    chunked = first_render(driver, base_url + "/")
    eager = first_render(driver, base_url + "/?all=1")  # baseline: every card in the HTML
    for name in ("fcp", "dcl", "complete", "html"):
        record_property(f"catalog_page_{name}", chunked[name])
        record_property(f"catalog_page_all_{name}", eager[name])
    report = (f"catalog page, {total} operations: first contentful paint {chunked['fcp']:.0f} ms, "
              f"DOMContentLoaded {chunked['dcl']:.0f} ms, every card built {chunked['complete']} ms, "
              f"HTML {chunked['html'] / 1024:.0f} KB; with every card in the HTML (?all=1): "
              f"{eager['fcp']:.0f} ms, {eager['dcl']:.0f} ms, {eager['html'] / 1024:.0f} KB")
    print("\n" + report)
    record_property("catalog_page_report", report)

    # Structure, not time: the HTML holds the first screens; the first frame shows them before
    # the script builds the rest; in the end every operation has its card.
    assert total > FIRST_CHUNK
    assert chunked["first_cards"] == FIRST_CHUNK
    assert chunked["cards_at_first_frame"] == FIRST_CHUNK
    assert chunked["cards"] == total == eager["cards"] == eager["first_cards"]
    # The cards in the HTML fill the first screen (at this window size) by themselves.
    assert chunked["first_bottom"] > chunked["viewport"]


def test_initial_html_grows_with_what_it_shows_not_with_the_catalog(app, catalog):
    client = app.test_client()
    shell = len(client.get(f"/?q={NOTHING_MATCHES}").data)  # no card at all
    first = client.get("/").get_data(as_text=True)
    everything = client.get("/?all=1").get_data(as_text=True)
    assert first.count('class="operation ') == FIRST_CHUNK
    assert everything.count('class="operation ') == len(catalog)
    per_card = (len(everything.encode()) - shell) / len(catalog)
    # The first screens cost their cards (at most 3x an average card each), never the catalog.
    assert len(first.encode()) - shell <= 3 * per_card * FIRST_CHUNK
    assert len(first.encode()) < len(everything.encode()) / 5


# ---------------------------------------------------------------- without JavaScript

def test_page_is_complete_without_javascript(app, catalog):
    """``?all=1`` renders every operation on the server; ``/`` the first screens and a link to it."""
    client = app.test_client()
    html = client.get("/?all=1").get_data(as_text=True)
    for record in catalog.operations:
        assert f'data-key="{record["key"]}"' in html
    for category in catalog.categories():
        escaped = category["name"].replace("&", "&amp;")
        assert f'class="category" data-category="{escaped}"' in html
    assert html.count('class="operation ') == len(catalog)
    assert "<script src=\"/static/catalog.js\"></script>" in html
    assert 'id="more"' not in html

    first = client.get("/").get_data(as_text=True)
    assert 'href="/?all=1"' in first and f"Show all {len(catalog)}" in first
    # The form works without the script: the server applies the filters it submits.
    filtered = client.get("/?origin=generated&kind=search&all=1").get_data(as_text=True)
    expected = catalog.filter(origin="generated", kind="search")
    assert filtered.count('class="operation ') == len(expected)
    for record in expected:
        assert f'data-key="{record["key"]}"' in filtered


# ---------------------------------------------------------------- GET /catalog

def test_json_filters_by_service_and_origin_with_counts(app, catalog):
    client = app.test_client()
    service = "invoices" if "invoices" in catalog.services() else catalog.services()[0]
    body = client.get(f"/catalog?service={service}&origin=generated").json
    expected = [r for r in catalog.operations if r["service"] == service and r["origin"] == "generated"]
    assert [r["key"] for r in body["operations"]] == [r["key"] for r in expected]
    assert body["services"] == [{"name": service, "count": len(expected)}]
    assert body["origins"] == [{"name": "generated", "count": len(expected)}]
    assert body["counts"]["operations"] == len(expected)
    assert body["filters"]["service"] == service and body["filters"]["origin"] == "generated"
    # Values are matched without regard to case, and answered as the catalog spells them.
    assert client.get(f"/catalog?service={service.upper()}&origin=Generated").json["operations"] == body["operations"]

    everything = client.get("/catalog").json
    assert set(everything) >= {"operations", "categories", "counts", "services", "origins"}
    assert sum(s["count"] for s in everything["services"]) == len(catalog)
    assert [s["name"] for s in everything["services"]] == catalog.services()
    assert {o["name"]: o["count"] for o in everything["origins"]} == {
        origin: sum(1 for r in catalog.operations if r["origin"] == origin) for origin in ("hand-written", "generated")}


@pytest.mark.parametrize("name, value, listed", [
    ("service", "no-such-service", "invoices"),
    ("origin", "handwritten", "hand-written"),
    ("kind", "banana", "trigger"),
    ("category", "No Such Category", "Contacts"),
])
def test_json_unknown_filter_value_is_a_400_listing_the_allowed_ones(app, name, value, listed):
    response = app.test_client().get(f"/catalog?{urllib.parse.urlencode({name: value})}")
    assert response.status_code == 400
    error = response.json["error"]
    assert error["code"] == "invalid_filter" and error["parameter"] == name
    assert listed in error["allowed"] and listed in error["message"]


@pytest.mark.parametrize("query", [
    "q=" + "a" * (MAX_Q_LENGTH + 1),
    "service=" + "s" * (MAX_NAME_LENGTH + 1),
    "category=" + "%F0%9F%92%A5" * 200,
])
def test_json_overlong_filter_is_a_400(app, query):
    response = app.test_client().get(f"/catalog?{query}")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_filter"
    assert "at most" in response.json["error"]["message"]


@pytest.mark.parametrize("query", [
    "q=%00%01%FF%FE", "q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "service=%00", "origin=%C0%AF",
    "kind=trigger&kind=banana", "q=" + "%25" * 150, "service[]=x&origin=", "category=%0A%0D",
    "q=" + "a" * 5000 + "&service=" + "b" * 5000 + "&all=1",
])
def test_hostile_query_parameters_never_cause_a_500(app, query):
    client = app.test_client()
    answer = client.get(f"/catalog?{query}")
    assert answer.status_code in (200, 400) and answer.is_json
    page = client.get(f"/?{query}")
    assert page.status_code == 200  # the page drops what it cannot use
    assert "<script>alert(1)</script>" not in page.get_data(as_text=True)


def test_page_data_has_every_card_and_is_cacheable(app, catalog):
    client = app.test_client()
    response = client.get("/catalog/page-data.json")
    assert response.status_code == 200 and response.is_json
    cards = response.json["operations"]
    assert [c["key"] for c in cards] == [r["key"] for r in catalog.operations]
    assert len(response.data) < len(client.get("/catalog").data) / 2
    again = client.get("/catalog/page-data.json", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_the_page_runs_only_its_own_scripts_and_is_never_framed(app):
    response = app.test_client().get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self' 'sha256-" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # The one inline script is the one the policy's hash allows (a console error in a real
    # browser otherwise: test_page_loads_without_console_errors).
    assert f"<script>{INLINE_SCRIPT}</script>" in response.get_data(as_text=True)
