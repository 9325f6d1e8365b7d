"""Change detection (``triggers.changes``) and its baselines in the dedupe store: what changed,
when a record counts as new, stable identities, concurrency, restarts, size on disk; how a
change trigger reads GHL's pages; and the record vocabulary (``response.watch``)."""

import copy
import sqlite3
import threading
from datetime import datetime, timezone

import pytest

from catalog.registry import CatalogError, check_record, load_catalog, load_records
from triggers import changes
from triggers.changes import Baseline, ChangeBatch, describe, kept_value, watch_of
from triggers.dedupe_store import SqliteDedupeStore
from triggers.poll import PollLimits, fetch_changes, poll_once

CATALOG = load_catalog()
T0 = 1_700_000_000.0
HOUR = 3600


def iso(seconds):
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def contact(ghl_id, updated, tags=(), created=T0 - 86400, **fields):
    return {"id": ghl_id, "tags": list(tags), "dateAdded": iso(created), "dateUpdated": iso(updated), **fields}


def watch(key, **inputs):
    return watch_of(CATALOG.get(key), inputs)


def answer(store, scope, batch, now, new_limit=100, window=HOUR):
    return store.answer(scope, batch, now, new_limit, window, 100)


def fired(store, scope, w, items, now, **kwargs):
    """Only the never-answered items of a poll (what Zapier fires), oldest first."""
    answered = store.answer(scope, ChangeBatch(w, items), now, kwargs.get("new_limit", 100), 0, 0)
    return list(reversed(answered))


# -- what changed ---------------------------------------------------------------------------------

def test_scalar_changes_name_the_fields_and_their_previous_values():
    old = {"email": "a@example.com", "phone": "+1555", "dnd": False}
    new = {"email": "b@example.com", "phone": "+1555", "dnd": True}
    changed, previous, added, removed = describe(old, new, ("email", "phone", "dnd"))
    assert changed == ["email", "dnd"]
    assert previous == {"email": "a@example.com", "dnd": False}
    assert added == removed == {}


def test_list_changes_say_what_was_added_and_removed_and_order_does_not_matter():
    old = {"tags": kept_value(["lead", "customer"])}
    assert describe(old, {"tags": kept_value(["customer", "lead"])}, ("tags",))[0] == []
    changed, previous, added, removed = describe(old, {"tags": kept_value(["customer", "VIP"])}, ("tags",))
    assert changed == ["tags"] and previous == {"tags": ["customer", "lead"]}
    assert added == {"tags": ["VIP"]} and removed == {"tags": ["lead"]}
    # From empty: everything was added.
    assert describe({"tags": None}, {"tags": kept_value(["a", "b"])}, ("tags",))[2] == {"tags": ["a", "b"]}


def test_long_values_are_kept_as_a_hash_and_left_out_of_previous():
    long_value = [{"id": f"field-{n}", "value": "x" * 20} for n in range(5)]
    kept = kept_value(long_value)
    assert changes.is_hashed(kept) and len(str(kept)) < 40
    assert kept_value(copy.deepcopy(long_value)) == kept
    changed, previous, _, _ = describe({"customFields": kept, "email": "a@x.io"},
                                       {"customFields": kept_value(long_value[:4]), "email": "b@x.io"},
                                       ("customFields", "email"))
    assert changed == ["customFields", "email"] and previous == {"email": "a@x.io"}
    # A long list element is kept (and reported) as its hash; short ones as they are.
    tag = "t" * 100
    assert kept_value(["vip", tag]) == sorted(["vip", changes.element_key(tag)])
    assert changes.element_key(tag).startswith("#") and len(changes.element_key(tag)) == 17


def test_values_are_stored_without_field_names_and_another_field_list_reads_as_unknown():
    w = watch("contact_updated")
    assert changes.pack(watch("contact_tag_added"), {"tags": ["vip"]})[1:] == [["vip"]]
    # Stored while the record watched only email (a release ago): every field is unknown now,
    # so the record is re-baselined silently instead of firing "changed from nothing".
    base = Baseline(changes.pack(watch("contact_updated", fields=["email"]), {"email": "a@x.io"}), None, 0)
    batch = ChangeBatch(w, [contact("c1", T0 + 10, email="b@x.io", phone="+1555")])
    resolution = batch.resolve({"c1": base}, T0, T0 + 20)
    assert resolution.candidates == []
    assert changes.unpack(w, resolution.baselines["c1"].values)["phone"] == "+1555"


def test_the_watch_block_resolves_inputs():
    w = watch("contact_updated", fields=["email", "phone"])
    assert w.fields == ("email", "phone") and w.ordered_by == "dateUpdated"
    assert watch("contact_updated").fields[:2] == ("firstNameLowerCase", "lastNameLowerCase")
    assert watch("contact_tag_added", tag="vip").filters == (("tags", "vip"),)
    assert watch("contact_tag_added").filters == ()
    assert watch("new_contact").ordered_by == "dateAdded"
    assert watch("opportunity_stage_changed", pipelineId="p").ordered_by is None  # scans
    record = CATALOG.get("opportunity_stage_changed")
    assert changes.request_inputs(record, {"location_id": "l", "pipelineId": "p", "stageId": "s"}) == {
        "location_id": "l"}


# -- baselines and identities in the store ----------------------------------------------------------

@pytest.fixture
def store(backend):
    """The dedupe store on each backend: SQLite and PostgreSQL."""
    return backend.dedupe_store()


def test_the_first_poll_records_baselines_and_fires_nothing(store):
    w = watch("contact_tag_added")
    assert fired(store, "s", w, [contact("c1", T0 - 5, ["vip"]), contact("c2", T0 - 9, ["lead"])], T0) == []
    assert store.watch_scope("s").first_poll == T0
    assert set(store.baselines("s", ["c1", "c2", "c3"])) == {"c1", "c2"}
    items = fired(store, "s", w, [contact("c1", T0 + 5, ["vip", "gold"]), contact("c2", T0 - 9, ["lead"])], T0 + 60)
    assert [(i["id"], i["tag"], i["ghl_id"]) for i in items] == [("c1:1:+gold", "gold", "c1")]
    assert items[0]["previous"] == {"tags": ["vip"]} and items[0]["added"] == {"tags": ["gold"]}


def test_a_record_created_after_the_first_poll_fires_from_empty_and_an_older_one_is_baselined_silently(store):
    w = watch("contact_tag_added")
    fired(store, "s", w, [contact("c1", T0 - 5)], T0)
    new = contact("new", T0 + 30, ["vip", "lead"], created=T0 + 30)
    old = contact("old", T0 + 31, ["vip"], created=T0 - 30 * 86400)  # not on the page read at T0
    items = fired(store, "s", w, [old, new], T0 + 60)
    assert sorted(i["id"] for i in items) == ["new:1:+lead", "new:1:+vip"]
    assert items[0]["previous"] == {"tags": None}
    assert set(store.baselines("s", ["old", "new"])) == {"old", "new"}
    # The old one is known now: its next change fires.
    old = contact("old", T0 + 90, ["vip", "gold"], created=T0 - 30 * 86400)
    assert [i["id"] for i in fired(store, "s", w, [old], T0 + 120)] == ["old:1:+gold"]
    # Created a little before the first poll but first seen after it (GHL's index lags): new.
    # (A record first seen later counts on from the scope's two changes so far.)
    lagged = contact("lagged", T0 + 100, ["vip"], created=T0 - 60)
    assert [i["id"] for i in fired(store, "s", w, [lagged], T0 + 180)] == ["lagged:3:+vip"]


def test_created_fires_once_per_record_created_after_the_first_poll(store):
    w = watch("new_contact")
    fired(store, "s", w, [contact("c1", T0 - 5)], T0)
    batch = [contact("n1", T0 + 10, created=T0 + 10), contact("c1", T0 + 20), contact("o1", T0, created=T0 - 86400)]
    assert [(i["id"], i["ghl_id"]) for i in fired(store, "s", w, batch, T0 + 30)] == [("n1", "n1")]
    assert fired(store, "s", w, batch, T0 + 60) == []


def test_identities_are_stable_under_repeated_polls(store):
    w = watch("contact_updated", fields=["email"])
    answer(store, "s", ChangeBatch(w, [contact("c1", T0, email="a@x.io")]), T0)
    after = [contact("c1", T0 + 10, email="b@x.io")]
    first = answer(store, "s", ChangeBatch(w, after), T0 + 20)
    assert [i["id"] for i in first] == ["c1:1"] and first[0]["previous"] == {"email": "a@x.io"}
    for n in range(1, 4):  # the same answer again within the redelivery window, nothing new
        assert answer(store, "s", ChangeBatch(w, after), T0 + 20 + n * 60) == first
    assert answer(store, "s", ChangeBatch(w, after), T0 + 20 + 2 * HOUR) == []


def test_a_value_flipping_back_and_forth_fires_each_change_with_its_own_identity(store):
    w = watch("opportunity_stage_changed", pipelineId="p1")
    opportunity = {"id": "o1", "pipelineId": "p1", "createdAt": iso(T0 - 86400)}
    fired(store, "s", w, [{**opportunity, "pipelineStageId": "A", "updatedAt": iso(T0 - 1)}], T0)
    ids = []
    for n, stage in enumerate(["B", "A", "B"], start=1):
        items = fired(store, "s", w, [{**opportunity, "pipelineStageId": stage, "updatedAt": iso(T0 + n)}], T0 + 10 * n)
        assert len(items) == 1 and items[0]["pipelineStageId"] == stage
        assert items[0]["previous"]["pipelineStageId"] == {"B": "A", "A": "B"}[stage]
        ids.append(items[0]["id"])
    assert ids == ["o1:1", "o1:2", "o1:3"]


def test_filters_choose_the_changes_that_fire_and_counting_goes_on_behind_them(store):
    w = watch("opportunity_stage_changed", pipelineId="p1", stageId="won")
    base = {"id": "o1", "pipelineId": "p1", "createdAt": iso(T0 - 86400)}
    fired(store, "s", w, [{**base, "pipelineStageId": "new", "updatedAt": iso(T0 - 1)}], T0)
    assert fired(store, "s", w, [{**base, "pipelineStageId": "call", "updatedAt": iso(T0 + 1)}], T0 + 10) == []
    won = fired(store, "s", w, [{**base, "pipelineStageId": "WON", "updatedAt": iso(T0 + 2)}], T0 + 20)
    assert [i["id"] for i in won] == ["o1:2"] and won[0]["previous"] == {"pipelineStageId": "call"}
    # Another pipeline: the move never fires, wherever it goes.
    other = watch("opportunity_stage_changed", pipelineId="p2")
    fired(store, "t", other, [{**base, "pipelineStageId": "new", "updatedAt": iso(T0 - 1)}], T0)
    assert fired(store, "t", other, [{**base, "pipelineStageId": "won", "updatedAt": iso(T0 + 2)}], T0 + 20) == []


def test_a_stale_read_never_undoes_a_newer_one(store):
    w = watch("contact_tag_added")
    fired(store, "s", w, [contact("c1", T0 - 5, ["vip"])], T0)
    newer = contact("c1", T0 + 20, ["vip", "gold"])
    older = contact("c1", T0 + 10, ["vip"])
    assert [i["id"] for i in fired(store, "s", w, [newer], T0 + 30)] == ["c1:1:+gold"]
    assert fired(store, "s", w, [older], T0 + 31) == []  # read before the newer one, answered after it
    assert fired(store, "s", w, [newer], T0 + 40) == []
    assert changes.unpack(w, store.baselines("s", ["c1"])["c1"].values) == {"tags": ["gold", "vip"]}


def test_concurrent_polls_never_fire_a_change_twice(tmp_path):
    path = str(tmp_path / "d.sqlite3")
    w = watch("contact_tag_added")
    SqliteDedupeStore(path).answer("s", ChangeBatch(w, [contact(f"c{n}", T0 - n) for n in range(50)]), T0, 100, 0, 0)
    # Between polls every contact gets a tag; some polls read GHL before the change (stale).
    before = [contact(f"c{n}", T0 - n) for n in range(50)]
    after = [contact(f"c{n}", T0 + 100 + n, ["vip"]) for n in range(50)]
    barrier = threading.Barrier(8)
    results, errors = [], []

    def poll(snapshot):
        try:
            local = SqliteDedupeStore(path)
            barrier.wait()
            for round_ in range(3):
                results.append(local.answer("s", ChangeBatch(w, snapshot), T0 + 200 + round_, 100, 0, 0))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=poll, args=(after if n % 2 else before,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    ids = [item["id"] for answered in results for item in answered]
    assert sorted(ids) == sorted(f"c{n}:1:+vip" for n in range(50)), "each change fired exactly once"


def test_a_restart_loses_nothing_and_a_crash_mid_poll_records_nothing(tmp_path, monkeypatch):
    path = str(tmp_path / "d.sqlite3")
    w = watch("contact_tag_added")
    first = SqliteDedupeStore(path)
    first.record("s", ChangeBatch(w, [contact("c1", T0 - 5, ["vip"])]), T0, answered=True)
    # A REST hook's poll puts the change in the backlog; then the process restarts.
    assert first.record("s", ChangeBatch(w, [contact("c1", T0 + 5, ["vip", "gold"])]), T0 + 10) == 1
    first.close()
    second = SqliteDedupeStore(path)
    assert [i["id"] for i in second.pending("s", 10)] == ["c1:1:+gold"]
    assert store_ids(second.answer("s", ChangeBatch(w, [contact("c1", T0 + 5, ["vip", "gold"])]), T0 + 20,
                                   100, 0, 0)) == ["c1:1:+gold"]
    # A poll that dies after comparing, before committing, leaves the baseline as it was.
    changed = [contact("c1", T0 + 30, ["vip", "gold", "red"])]

    def crash(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(SqliteDedupeStore, "_record", crash)
    with pytest.raises(sqlite3.OperationalError):
        second.answer("s", ChangeBatch(w, changed), T0 + 40, 100, 0, 0)
    monkeypatch.undo()
    third = SqliteDedupeStore(path)
    assert store_ids(third.answer("s", ChangeBatch(w, changed), T0 + 50, 100, 0, 0)) == ["c1:2:+red"]


def store_ids(items):
    return [item["id"] for item in items]


def test_a_record_whose_baseline_was_pruned_never_gets_an_identity_it_had_before(store):
    w = watch("contact_tag_added")
    day = 86400
    fired(store, "s", w, [contact("c1", T0 - 5), contact("c2", T0 - 5)], T0)
    assert [i["id"] for i in fired(store, "s", w, [contact("c1", T0 + 5, ["vip"])], T0 + 10)] == ["c1:1:+vip"]
    # Only c2 is listed for 31 days: c1's baseline is pruned.
    fired(store, "s", w, [contact("c2", T0 - 5)], T0 + 31 * day)
    store.prune(T0 + 31 * day, 30 * day)
    assert set(store.baselines("s", ["c1", "c2"])) == {"c2"}
    # c1 shows up again: recorded silently (nothing says what changed), then its next change
    # counts on from the scope's count, not from 0: "c1:1:..." would be dropped by Zapier.
    assert fired(store, "s", w, [contact("c1", T0 + 32 * day, ["gold"])], T0 + 32 * day) == []
    items = fired(store, "s", w, [contact("c1", T0 + 33 * day, ["gold", "vip"])], T0 + 33 * day)
    assert [i["id"] for i in items] == ["c1:2:+vip"]


def test_forget_scope_and_prune_drop_baselines(store):
    w = watch("contact_tag_added")
    fired(store, "s", w, [contact("c1", T0 - 5, ["vip"]), contact("c2", T0 - 5)], T0)
    fired(store, "t", w, [contact("c1", T0 - 5)], T0)
    # c1 is listed again 20 days later; c2 is not.
    fired(store, "s", w, [contact("c1", T0 - 5, ["vip"])], T0 + 20 * 86400)
    store.prune(T0 + 31 * 86400, 30 * 86400)
    assert set(store.baselines("s", ["c1", "c2"])) == {"c1"}
    assert store.watch_scope("t") is None and store.baselines("t", ["c1"]) == {}
    store.forget_scope("s")
    assert store.watch_scope("s") is None and store.baselines("s", ["c1"]) == {}
    # A scope made afresh starts over: its first poll fires nothing.
    assert fired(store, "s", w, [contact("c1", T0 + 40 * 86400, ["vip", "new"])], T0 + 40 * 86400) == []


def _file_bytes(path):
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages, size = conn.execute("PRAGMA page_count").fetchone()[0], conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    return pages * size


def test_storage_per_baseline_row_stays_small(tmp_path):
    """A contact with 10 tags, as real GHL ids and timestamps make it: the baseline row of the
    tag triggers, and of Contact Updated with its default fields, measured on disk (table and
    index pages over 20,000 rows), against the item the seen table would keep."""
    tags = ["customer", "newsletter", "vip", "webinar-2024", "facebook-lead", "spring-promo", "warm",
            "follow-up", "referral", "trial"]
    measured = {}
    for key in ("contact_tag_added", "contact_updated"):
        path = str(tmp_path / f"{key}.sqlite3")
        store = SqliteDedupeStore(path)
        fired(store, "s" * 64, watch(key), [], T0)
        empty = _file_bytes(path)
        rows = 20_000
        items = [contact(f"{n:020d}", T0 - n, tags, firstNameLowerCase="ada", lastNameLowerCase="lovelace",
                         email=f"ada.{n}@example.com", phone="+15550100001", city="Exampleville",
                         country="US", source="website form", type="lead", dnd=False,
                         customFields=[{"id": "MgobCB14YMVKuE4Ka8p1", "value": "Gold"}])
                 for n in range(rows)]
        for start in range(0, rows, 1000):
            store.record("s" * 64, ChangeBatch(watch(key), items[start:start + 1000]), T0 + 1)
        measured[key] = (_file_bytes(path) - empty) / rows
        item_json = len(changes._canonical(items[0]))
        store.close()
    print(f"\nbytes per baseline row, contact with 10 tags: tag triggers {measured['contact_tag_added']:.0f}, "
          f"Contact Updated (default fields) {measured['contact_updated']:.0f}; the item itself is {item_json} bytes "
          "of JSON")
    assert measured["contact_tag_added"] < 260
    assert measured["contact_updated"] < 520


# -- reading GHL's pages --------------------------------------------------------------------------

class FakeGhl:
    """A GHL list answering ``pages`` of a cursor- or page-paged endpoint, recording requests."""

    def __init__(self, records, page_size):
        self.records = records  # as GHL sorts them
        self.page_size = page_size
        self.requests = []

    def request(self, method, path, token, version=None, query=None, body=None, scopes=()):
        place = body if method == "POST" else query
        self.requests.append(dict(place))
        if "startAfterId" in place:
            ids = [r["id"] for r in self.records]
            start = ids.index(place["startAfterId"]) + 1
        else:
            start = (int(place.get("page", 1)) - 1) * self.page_size
        chosen = self.records[start:start + self.page_size]
        meta = {"startAfter": 1, "startAfterId": chosen[-1]["id"]} if chosen else {}

        class Answer:
            body = {"contacts": chosen, "opportunities": chosen, "meta": meta}
        return Answer()


LIMITS = PollLimits(catch_up_pages=3)


def test_an_ordered_trigger_reads_one_page_first_then_on_while_a_page_holds_a_change(store):
    record = CATALOG.get("contact_tag_added")
    w = watch_of(record, {"locationId": "l"})
    contacts = [contact(f"c{n:03d}", T0 - n) for n in range(250)]
    ghl = FakeGhl(contacts, 100)
    batch = fetch_changes(ghl, store, record, w, {"locationId": "l"}, "t", "s", LIMITS)
    assert len(ghl.requests) == 1 and ghl.requests[0]["sort"] == [{"field": "dateUpdated", "direction": "desc"}]
    answer(store, "s", batch, T0)
    # Nothing changed: page one is settled, so one request.
    ghl.requests.clear()
    answer(store, "s", fetch_changes(ghl, store, record, w, {"locationId": "l"}, "t", "s", LIMITS), T0 + 10)
    assert [r["page"] for r in ghl.requests] == [1]
    # A change on page one: page two (never read, so unsettled) and three are read, up to the cap.
    ghl.records[0] = contact("c000", T0 + 20, ["vip"])
    ghl.requests.clear()
    answered = answer(store, "s", fetch_changes(ghl, store, record, w, {"locationId": "l"}, "t", "s", LIMITS), T0 + 30)
    assert [r["page"] for r in ghl.requests] == [1, 2, 3] and [i["id"] for i in answered] == ["c000:1:+vip"]
    ghl.requests.clear()
    answer(store, "s", fetch_changes(ghl, store, record, w, {"locationId": "l"}, "t", "s", LIMITS), T0 + 40)
    assert [r["page"] for r in ghl.requests] == [1]


def test_a_page_out_of_the_declared_order_makes_the_trigger_scan_the_whole_list_in_turn(store, caplog):
    record = CATALOG.get("contact_tag_added")
    w = watch_of(record, {"locationId": "l"})
    oldest_first = [contact(f"c{n:03d}", T0 - 1000 + n) for n in range(450)]
    ghl = FakeGhl(oldest_first, 100)

    def poll(now):
        ghl.requests.clear()
        found = answer(store, "s", fetch_changes(ghl, store, record, w, {"locationId": "l"}, "t", "s", LIMITS), now,
                       window=0)
        return [r["page"] for r in ghl.requests], [i["id"] for i in found]

    assert poll(T0) == ([1, 2, 3], [])
    assert "not newest first by dateUpdated" in caplog.text
    # A contact created at the end of the oldest-first list is still seen: the next poll reads
    # page one, then goes on where the last one stopped.
    ghl.records.append(contact("new", T0 + 10, ["vip"], created=T0 + 10))
    assert poll(T0 + 60) == ([1, 4, 5], ["new:1:+vip"])
    assert poll(T0 + 120) == ([1, 2, 3], [])


def test_a_scanning_trigger_goes_round_the_list_a_capful_of_pages_per_poll(store):
    record = CATALOG.get("opportunity_status_changed")
    inputs = {"location_id": "l"}
    w = watch_of(record, inputs)
    opportunities = [{"id": f"o{n:03d}", "status": "open", "pipelineId": "p", "createdAt": iso(T0 - 86400 - n),
                      "updatedAt": iso(T0 - 86400)} for n in range(450)]
    ghl = FakeGhl(opportunities, 100)

    def poll(now):
        ghl.requests.clear()
        found = answer(store, "s", fetch_changes(ghl, store, record, w, inputs, "t", "s", LIMITS), now, window=0)
        return [r.get("startAfterId") for r in ghl.requests], [i["id"] for i in found]

    assert poll(T0) == ([None, "o099", "o199"], [])  # first poll: the cap, 300 baselines
    assert ghl.requests[0]["order"] == "added_desc" and ghl.requests[0]["status"] == "all"
    assert store.watch_scope("s").scan_from == {"startAfter": 1, "startAfterId": "o299"}
    # The last opportunity (oldest, at the end of the list) is won before the scan reaches it.
    ghl.records[449] = {**ghl.records[449], "status": "won", "updatedAt": iso(T0 + 10)}
    # Pages 4 and 5 (the end: baselined silently, first seen), then round to page one.
    assert poll(T0 + 60) == (["o299", "o399", None], [])
    ghl.records[449] = {**ghl.records[449], "status": "lost", "updatedAt": iso(T0 + 70)}
    ghl.records[0] = {**ghl.records[0], "status": "won", "updatedAt": iso(T0 + 70)}
    assert poll(T0 + 120) == (["o099", "o199", "o299"], [])
    requested, found = poll(T0 + 180)
    assert requested == ["o399", None, "o099"] and sorted(found) == ["o000:1", "o449:1"]


def test_sample_mode_answers_the_newest_records_as_if_new_and_records_nothing(store):
    record = CATALOG.get("contact_tag_added")
    ghl = FakeGhl([contact("c1", T0, ["vip", "lead"]), contact("c2", T0 - 1, ["lead"])], 100)
    items = poll_once(ghl, store, record, {"locationId": "l", "tag": "lead"}, "t", "s", LIMITS, mode="sample")
    assert [(i["id"], i["tag"]) for i in items] == [("c1:0:+lead", "lead"), ("c2:0:+lead", "lead")]
    assert store.watch_scope("s") is None


# -- the record vocabulary ---------------------------------------------------------------------------

WATCH_TRIGGERS = ("new_contact", "contact_updated", "contact_tag_added", "contact_tag_removed", "new_opportunity",
                  "opportunity_stage_changed", "opportunity_status_changed")


def test_the_change_triggers_are_in_the_catalog_and_their_samples_are_answered_as_is():
    from zapier_app.definition import answered_sample
    for key in WATCH_TRIGGERS:
        record = CATALOG.get(key)
        assert record and record["response"]["watch"], key
        sample = answered_sample(record)
        # As is, plus what ghl.enrichment adds to contacts and opportunities (names, links).
        assert {k: sample[k] for k in record["sample"]} == record["sample"] and sample["ghl_id"], key


def _broken(key, change):
    record = copy.deepcopy(next(r for r in load_records() if r["key"] == key))
    change(record)
    return record


@pytest.mark.parametrize("key, change, message", [
    ("contact_tag_added", lambda r: r["response"]["watch"].update(event="moved"), "event must be one of"),
    ("contact_tag_added", lambda r: r["response"]["watch"].update(fields=["tags", "email"]), "exactly one"),
    ("contact_tag_added", lambda r: r["response"]["watch"].pop("element"), "needs response.watch.element"),
    ("contact_tag_added", lambda r: r["response"]["watch"].update(colour="red"), "unknown field(s) colour"),
    ("contact_tag_added", lambda r: r["response"].update(dedupe="changes"), "dedupes by 'new'"),
    ("contact_tag_added", lambda r: r["response"]["watch"]["filters"].append({"input": "nope", "field": "tags"}),
     "is not an input"),
    ("contact_tag_added", lambda r: r["response"]["watch"].pop("created_field"), "created_field"),
    ("contact_updated", lambda r: r["response"]["watch"].update(fields_input="locationId"), "list input"),
    ("contact_updated", lambda r: r["response"].update(version_field=None), "version_field"),
    ("new_contact", lambda r: r["response"]["watch"].update(fields=["tags"]), "watches no fields"),
    ("new_contact", lambda r: r["response"]["watch"].update(request={"locationId": "x"}), "which an input also sets"),
    ("opportunity_status_changed", lambda r: r["response"]["watch"]["filters"].append(
        {"input": "location_id", "field": "locationId"}), "cannot be a watch filter"),
])
def test_the_registry_refuses_a_broken_watch_block(key, change, message):
    with pytest.raises(CatalogError) as caught:
        check_record(_broken(key, change))
    assert message in str(caught.value)


def test_every_watch_request_parameter_is_a_spec_parameter_of_its_place():
    from tests import ghl_spec
    for key in WATCH_TRIGGERS:
        record = CATALOG.get(key)
        operation = ghl_spec.spec_operation(record["spec"]["app"], record["method"], record["path"])
        for name in record["response"]["watch"]["request"]:
            if record["method"] == "GET":
                assert name in ghl_spec.parameters_of(operation, "query"), (key, name)
            else:
                assert ghl_spec.body_schema_of(record["spec"]["app"], operation) is not None, key

