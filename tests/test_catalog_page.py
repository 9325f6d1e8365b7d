"""The catalog web page (``GET /``), driven in headless Chromium.

The real app is served on a loopback port from a background thread; one browser serves the
whole module. Each test loads the page afresh and checks what a user sees against the
catalog itself and against the JSON ``/catalog`` endpoint, so the tests hold whatever
records load.
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
    driver.get(url)
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: d.find_element(By.ID, "shown-count").get_attribute("data-shown") is not None,
        "the catalog script never ran")


def catalog_json(base_url, **params):
    """The JSON ``/catalog`` answer for these filters."""
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v})
    with urllib.request.urlopen(f"{base_url}/catalog?{query}", timeout=5) as response:
        assert response.status == 200
        return json.load(response)


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
    # The record with the most inputs exercises the collapsed inputs table.
    record = max(catalog.operations, key=lambda r: len(r["inputs"]))
    card = page.find_element(By.CSS_SELECTOR, f'.operation[data-key="{record["key"]}"]')
    assert card.get_attribute("data-kind") == record["kind"]
    assert card.get_attribute("data-category") == record["category"]
    assert card.find_element(By.CSS_SELECTOR, ".op-name").text == record["name"]
    assert card.find_element(By.CSS_SELECTOR, ".badge").get_attribute("textContent") == record["kind"]
    assert card.find_element(By.CSS_SELECTOR, ".op-summary").text == record["summary"]
    assert card.find_element(By.CSS_SELECTOR, ".method").text == record["method"]
    assert card.find_element(By.CSS_SELECTOR, ".path").text == record["path"]
    scopes = [e.text for e in card.find_elements(By.CSS_SELECTOR, ".scope")]
    assert scopes == record["scopes"]
    if record["version"]:
        assert record["version"] in card.find_element(By.CSS_SELECTOR, ".op-meta").text

    rows = card.find_elements(By.CSS_SELECTOR, ".op-inputs tbody tr")
    assert len(rows) == len(record["inputs"])
    assert not rows[0].is_displayed()  # collapsed until opened
    card.find_element(By.CSS_SELECTOR, ".op-inputs summary").click()
    WebDriverWait(page, WAIT_SECONDS).until(lambda d: rows[0].is_displayed())
    first = record["inputs"][0]
    assert rows[0].find_element(By.CSS_SELECTOR, "code").text == first["key"]
    assert ("required" in rows[0].text.lower()) == first["required"]
    required = sum(1 for row in rows if "required" in (row.get_attribute("class") or "").split())
    assert required == sum(1 for field in record["inputs"] if field["required"])


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
    page.find_element(By.ID, "clear-filters").click()
    wait_for_shown(page, len(catalog))
    assert visible_keys(page) == {record["key"] for record in catalog.operations}
    assert visible_categories(page) == [c["name"] for c in catalog.categories()]
    assert page.find_element(By.ID, "search").get_attribute("value") == ""
    assert Select(page.find_element(By.ID, "kind-filter")).first_selected_option.get_attribute("value") == ""
    assert Select(page.find_element(By.ID, "category-filter")).first_selected_option.get_attribute("value") == ""


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


def test_page_is_complete_without_javascript(app, catalog):
    """The server renders every operation; the script only hides and shows them."""
    html = app.test_client().get("/").get_data(as_text=True)
    for record in catalog.operations:
        assert f'data-key="{record["key"]}"' in html
    for category in catalog.categories():
        escaped = category["name"].replace("&", "&amp;")
        assert f'class="category" data-category="{escaped}"' in html
    assert html.count('class="operation ') == len(catalog)
    assert "<script src=\"/static/catalog.js\"></script>" in html
