// Catalog page: builds the cards the server left out and filters them as the user types.
// Plain JavaScript, no dependencies.
//
// The server renders the first screens of matching operations (all of them with ?all=1), so the
// page paints at once and works without this file. This script fetches the card data of every
// record (/catalog/page-data.json) and, after the first frame, builds the missing cards a slice
// at a time, in catalog order. A card's detail view (inputs, what GHL's spec does not say) is
// read from /catalog/<key> the first time it is opened.
(function () {
  "use strict";

  var form = document.getElementById("filters");
  var search = document.getElementById("search");
  var shownCount = document.getElementById("shown-count");
  var noMatch = document.getElementById("no-match");
  var clearButton = document.getElementById("clear-filters");
  var main = document.getElementById("catalog");
  var more = document.getElementById("more");
  var selects = {
    kind: document.getElementById("kind-filter"),
    category: document.getElementById("category-filter"),
    service: document.getElementById("service-filter"),
    origin: document.getElementById("origin-filter")
  };
  var FILTERS = ["kind", "category", "service", "origin"];
  if (!search || !shownCount || !main || FILTERS.some(function (name) { return !selects[name]; })) {
    return;
  }
  var DATA_URL = "/catalog/page-data.json";
  var SLICE_MS = 8;          // build cards for at most this long before yielding to the browser

  var records = [];          // every record once the data is in; until then the server's cards
  var byKey = Object.create(null);
  var loaded = false;        // the data is in (or failed: then only the server's cards are known)
  var queue = [];            // records still without a card, in the order to build them
  var building = false;
  var started = false;       // the first frame has been painted: background building may run

  var sections = Object.create(null);
  Array.prototype.forEach.call(document.querySelectorAll("section.category"), function (element) {
    var count = element.querySelector(".category-count");
    sections[element.getAttribute("data-category")] = {
      element: element,
      list: element.querySelector(".operations"),
      count: count,
      total: count ? Number(count.getAttribute("data-total")) : 0
    };
  });

  function text(root, selector) {
    var element = root.querySelector(selector);
    return element ? element.textContent.trim() : "";
  }

  // What the search matches, as GET /catalog?q= does: name, summary and path.
  function haystack(name, summary, path) {
    return [name.toLowerCase(), summary.toLowerCase(), path.toLowerCase()];
  }

  // Until the data arrives, the records are the cards the server rendered.
  Array.prototype.forEach.call(main.querySelectorAll(".operation"), function (element) {
    var record = {
      key: element.getAttribute("data-key"),
      kind: element.getAttribute("data-kind"),
      category: element.getAttribute("data-category"),
      service: element.getAttribute("data-service"),
      origin: element.getAttribute("data-origin"),
      hay: haystack(text(element, ".op-name"), text(element, ".op-summary"), text(element, ".path")),
      element: element
    };
    records.push(record);
    byKey[record.key] = record;
  });

  // ------------------------------------------------------------ filtering

  function current() {
    var state = { q: search.value.trim().toLowerCase() };
    FILTERS.forEach(function (name) { state[name] = selects[name].value; });
    return state;
  }

  function matches(record, state) {
    for (var i = 0; i < FILTERS.length; i += 1) {
      var name = FILTERS[i];
      if (state[name] && record[name] !== state[name]) {
        return false;
      }
    }
    if (!state.q) {
      return true;
    }
    return record.hay.some(function (value) { return value.indexOf(state.q) !== -1; });
  }

  function filtering(state) {
    return Boolean(state.q || FILTERS.some(function (name) { return state[name]; }));
  }

  // Show the cards that match; ``now``: build the matching cards not built yet at once (the
  // user is waiting on them), else the background builder brings them in order.
  function apply(now) {
    var state = current();
    var perCategory = {};
    var builtPerCategory = {};
    var shown = 0;
    if (now) {
      var missing = records.filter(function (record) { return !record.element && matches(record, state); });
      if (missing.length) {
        buildCards(missing);
        missing.forEach(placeCard);
      }
    }
    records.forEach(function (record) {
      var visible = matches(record, state);
      if (record.element) {
        record.element.hidden = !visible;
      }
      if (visible) {
        shown += 1;
        perCategory[record.category] = (perCategory[record.category] || 0) + 1;
        if (record.element) {
          builtPerCategory[record.category] = true;
        }
      }
    });

    Object.keys(sections).forEach(function (category) {
      var section = sections[category];
      var count = perCategory[category] || 0;
      section.element.hidden = !builtPerCategory[category];
      if (section.count) {
        section.count.textContent = filtering(state) && count !== section.total ? count + " of " + section.total : String(section.total);
      }
    });

    if (loaded) {
      shownCount.textContent = shown + (shown === 1 ? " operation shown" : " operations shown");
      shownCount.setAttribute("data-shown", String(shown));
    }
    if (noMatch && loaded) {
      noMatch.hidden = shown !== 0;
    }
    if (clearButton) {
      clearButton.disabled = !filtering(state);
    }
    remember(state);
  }

  // Keep the filters in the address, so a filtered view can be shared or reloaded.
  function remember(state) {
    if (!window.history || !window.history.replaceState || !window.URLSearchParams) {
      return;
    }
    var params = new URLSearchParams();
    if (state.q) { params.set("q", search.value.trim()); }
    FILTERS.forEach(function (name) {
      if (state[name]) { params.set(name, state[name]); }
    });
    var query = params.toString();
    var url = window.location.pathname + (query ? "?" + query : "") + window.location.hash;
    if (url !== window.location.pathname + window.location.search + window.location.hash) {
      window.history.replaceState(null, "", url);
    }
  }

  function clear() {
    search.value = "";
    FILTERS.forEach(function (name) { selects[name].value = ""; });
    apply(true);
    search.focus();
  }

  // ------------------------------------------------------------ building cards
  // The same markup as the template's ``card`` macro (server/templates/catalog.html).

  function node(tag, attributes, children) {
    var element = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      element.setAttribute(name, attributes[name]);
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) {
        element.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
      }
    });
    return element;
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  // Text for HTML: every value from the data goes through here (cards are built as markup, in
  // batches: the browser's parser builds them several times faster than DOM calls one by one).
  var ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" };
  function esc(value) {
    return String(value).replace(/[&<>"']/g, function (c) { return ESCAPES[c]; });
  }

  function muted(value) {
    return " <span class=\"muted\">· " + esc(value) + "</span>";
  }

  function flags(record) {
    var access = record.access || [];
    var items = "";
    if (record.origin === "generated") {
      items += "<span class=\"flag flag-generated\" title=\"Generated from GHL&#39;s API specs\">generated</span>";
    }
    if (access.indexOf("agency") !== -1) {
      items += "<span class=\"flag flag-agency\" title=\"Needs an agency token\">agency only</span>";
    }
    if (access.indexOf("oauth") !== -1) {
      items += "<span class=\"flag flag-oauth\" title=\"Needs an OAuth token\">OAuth only</span>";
    }
    if (record.deprecated) {
      items += "<span class=\"flag flag-deprecated\" title=\"GHL marks this operation deprecated\">deprecated</span>";
    }
    return items ? "<p class=\"op-flags\">" + items + "</p>" : "";
  }

  function notes(record) {
    var access = record.access || [];
    var items = "";
    if (access.indexOf("agency") !== -1) {
      items += "<li class=\"note-agency\">Agency token only: GHL refuses a sub-account (location) token here.</li>";
    }
    if (access.indexOf("oauth") !== -1) {
      items += "<li class=\"note-oauth\">OAuth token only: GHL refuses a Private Integration Token here.</li>";
    }
    if (record.deprecated) {
      var replacement = record.deprecated.replacement;
      var target = replacement && byKey[replacement];
      items += "<li class=\"note-deprecated\">" + (replacement
        ? "Deprecated: use <a class=\"replacement\" href=\"/?all=1#op-" + esc(replacement) + "\" data-goto=\"" + esc(replacement) + "\">" +
          esc(target ? target.name : replacement) + "</a> instead."
        : "Deprecated by GHL, with no replacement named.") + "</li>";
    }
    return items ? "<ul class=\"op-notes\">" + items + "</ul>" : "";
  }

  // The card's markup: the same as the template's ``card`` macro.
  function cardHtml(record) {
    var scopes = record.scopes.length ? record.scopes.map(function (scope) {
      return "<code class=\"scope\">" + esc(scope) + "</code>";
    }).join("") : "<span class=\"none\">none</span>";
    var kind = esc(record.kind);
    return "<article class=\"operation kind-" + kind + (record.deprecated ? " is-deprecated" : "") + "\" id=\"op-" + esc(record.key) +
      "\" data-key=\"" + esc(record.key) + "\" data-kind=\"" + kind + "\" data-category=\"" + esc(record.category) +
      "\" data-service=\"" + esc(record.service) + "\" data-origin=\"" + esc(record.origin) + "\">" +
      "<div class=\"op-head\"><h3 class=\"op-name\">" + esc(record.name) + "</h3><span class=\"badge badge-" + kind + "\">" + kind + "</span></div>" +
      flags(record) +
      "<p class=\"op-summary\">" + esc(record.summary) + "</p>" +
      notes(record) +
      "<p class=\"op-request\"><span class=\"method method-" + esc(record.method.toLowerCase()) + "\">" + esc(record.method) +
      "</span><code class=\"path\">" + esc(record.path) + "</code></p>" +
      "<dl class=\"op-meta\"><div><dt>Version</dt><dd>" +
      (record.version ? "<code>" + esc(record.version) + "</code>" : "<span class=\"none\">no header</span>") +
      "</dd></div><div><dt>Scopes</dt><dd>" + scopes + "</dd></div><div><dt>Service</dt><dd><code class=\"service\">" +
      esc(record.service) + "</code></dd></div></dl>" +
      "<div class=\"op-foot\"><details class=\"op-inputs\"><summary>" + esc(plural(record.n_inputs, "input")) +
      (record.n_required ? muted(record.n_required + " required") : "") +
      (record.n_unknown ? muted(record.n_unknown + " unknown") : "") +
      "</summary><div class=\"op-detail\" data-lazy></div></details>" +
      "<a class=\"op-json\" href=\"/catalog/" + esc(encodeURIComponent(record.key)) + "\" title=\"This record as JSON\">JSON</a></div>" +
      "</article>";
  }

  var parser = document.createElement("template");

  // Build the cards of these records (one parse for the batch); each still needs placing.
  function buildCards(batch) {
    parser.innerHTML = batch.map(cardHtml).join("");
    var built = parser.content.children;
    for (var i = 0; i < batch.length; i += 1) {
      batch[i].element = built[i];
    }
  }

  // Put the record's card in its section, before the next built card of that category.
  function insertCard(record) {
    if (!record.element) {
      buildCards([record]);
    }
    placeCard(record);
  }

  function placeCard(record) {
    var section = sections[record.category];
    if (!section) {
      return;
    }
    var before = null;
    for (var i = record.index + 1; i < records.length && records[i].category === record.category; i += 1) {
      if (records[i].element && records[i].element.parentNode === section.list) {
        before = records[i].element;
        break;
      }
    }
    section.list.insertBefore(record.element, before);
  }

  var BATCH = 24;           // cards per parse while building in the background

  function buildSlice() {
    var state = current();
    var until = performance.now() + SLICE_MS;
    while (queue.length && performance.now() < until) {
      var batch = queue.splice(0, BATCH).filter(function (record) { return !record.element; });
      buildCards(batch);
      batch.forEach(function (record) {
        var visible = matches(record, state);
        record.element.hidden = !visible;
        placeCard(record);
        if (visible) {
          sections[record.category].element.hidden = false;
        }
      });
    }
    if (queue.length) {
      setTimeout(buildSlice, 0);
      return;
    }
    building = false;
    finish();
  }

  function startBuilding() {
    if (!started || !loaded || building) {
      return;
    }
    var state = current();
    var missing = records.filter(function (record) { return !record.element; });
    // The cards the user is looking at first, then the others (hidden until the filters change).
    queue = missing.filter(function (record) { return matches(record, state); })
      .concat(missing.filter(function (record) { return !matches(record, state); }));
    if (!queue.length) {
      finish();
      return;
    }
    building = true;
    setTimeout(buildSlice, 0);
  }

  function finish() {
    if (more) {
      more.hidden = true;
    }
    main.removeAttribute("aria-busy");
    shownCount.setAttribute("data-complete", "true");
    shownCount.setAttribute("data-complete-at", String(Math.round(performance.now())));
    apply(false);
  }

  function useData(data) {
    var known = byKey;
    records = [];
    byKey = Object.create(null);
    data.operations.forEach(function (record, index) {
      record.index = index;
      record.hay = haystack(record.name, record.summary, record.path);
      record.element = known[record.key] ? known[record.key].element : null;
      records.push(record);
      byKey[record.key] = record;
    });
    // A deprecated card the server rendered names its replacement already; nothing to redo.
    loaded = true;
    apply(false);
    revealHash();
    startBuilding();
  }

  function dataFailed() {
    // Keep filtering the server's cards; the "show all" link stays for the rest.
    records.forEach(function (record, index) { record.index = index; });
    loaded = true;
    main.removeAttribute("aria-busy");
    shownCount.setAttribute("data-complete", "true");
    apply(false);
  }

  // ------------------------------------------------------------ detail view

  function fillDetail(detail, record) {
    detail.textContent = "";
    if (record.inputs.length) {
      var head = node("thead", null, [node("tr", null, [
        node("th", { scope: "col" }, ["Key"]), node("th", { scope: "col" }, ["Type"]), node("th", { scope: "col" }, ["In"]),
        node("th", { scope: "col" }, [node("span", { "class": "visually-hidden" }, ["Required"])])
      ])]);
      var body = node("tbody", null, record.inputs.map(function (field) {
        return node("tr", field.required ? { "class": "required" } : null, [
          node("td", null, [node("code", { title: field.label }, [field.key])]),
          node("td", null, [field.type + (field.list ? "[]" : "")]),
          node("td", null, [field["in"] === "custom_fields" ? "custom field" : field["in"]]),
          node("td", null, [field.required ? node("span", { "class": "req" }, ["required"]) : null])
        ]);
      }));
      detail.appendChild(node("table", null, [head, body]));
    } else {
      detail.appendChild(node("p", { "class": "none" }, ["This operation takes no input."]));
    }
    if (record.generated) {
      detail.appendChild(node("p", { "class": "op-source" }, ["Generated from ", node("code", null, [record.generated.from])]));
      var unknown = record.generated.unknown || [];
      if (unknown.length) {
        detail.appendChild(node("div", { "class": "op-unknown" }, [
          node("p", null, ["What GHL's spec does not say:"]),
          node("ul", null, unknown.map(function (item) { return node("li", null, [item]); }))
        ]));
      }
    }
    detail.removeAttribute("data-lazy");
    detail.removeAttribute("aria-busy");
  }

  function loadDetail(details) {
    var detail = details.querySelector(".op-detail[data-lazy]");
    var card = details.closest(".operation");
    if (!detail || !card || detail.getAttribute("aria-busy")) {
      return;
    }
    detail.setAttribute("aria-busy", "true");
    detail.textContent = "Loading…";
    fetch("/catalog/" + encodeURIComponent(card.getAttribute("data-key")), { headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (record) { fillDetail(detail, record); })
      .catch(function () {
        detail.removeAttribute("aria-busy");
        detail.textContent = "The details could not be loaded; the JSON link has the whole record.";
      });
  }

  // ------------------------------------------------------------ links to a card

  // Show the card for ``key``: build it, clear the filters if they hide it, scroll and focus it.
  function reveal(key) {
    var record = byKey[key];
    if (!record) {
      return false;
    }
    if (!matches(record, current())) {
      search.value = "";
      FILTERS.forEach(function (name) { selects[name].value = ""; });
    }
    if (!record.element) {
      insertCard(record);
    }
    apply(false);
    record.element.hidden = false;
    sections[record.category].element.hidden = false;
    record.element.setAttribute("tabindex", "-1");
    if (window.location.hash !== "#op-" + key) {
      window.history.pushState(null, "", window.location.pathname + window.location.search + "#op-" + key);
    }
    record.element.scrollIntoView({ block: "start" });
    record.element.focus({ preventScroll: true });
    return true;
  }

  // A link to a card the server did not render (or the filters hide): the browser cannot scroll
  // to it by itself.
  function revealHash() {
    var hash = window.location.hash;
    if (hash.indexOf("#op-") !== 0) {
      return;
    }
    var key;
    try {
      key = decodeURIComponent(hash.slice(4));
    } catch (error) {
      return;
    }
    if (byKey[key] && (!byKey[key].element || byKey[key].element.hidden)) {
      reveal(key);
    }
  }

  // ------------------------------------------------------------ events

  search.addEventListener("input", function () { apply(true); });
  search.addEventListener("search", function () { apply(true); });
  FILTERS.forEach(function (name) {
    selects[name].addEventListener("change", function () { apply(true); });
  });
  if (form) {
    form.addEventListener("submit", function (event) { event.preventDefault(); apply(true); });
  }
  if (clearButton) {
    clearButton.addEventListener("click", clear);
  }
  search.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && search.value) {
      event.preventDefault();
      search.value = "";
      apply(true);
    }
  });
  // "/" jumps to the search box, as on many catalog pages.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var typing = target && (target.tagName === "INPUT" || target.tagName === "SELECT" || target.tagName === "TEXTAREA");
    if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      search.focus();
    }
  });
  // ``toggle`` does not bubble: listen in the capture phase.
  main.addEventListener("toggle", function (event) {
    var details = event.target;
    if (details.open && details.classList && details.classList.contains("op-inputs")) {
      loadDetail(details);
    }
  }, true);
  main.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[data-goto]") : null;
    if (link && !event.ctrlKey && !event.metaKey && !event.shiftKey && event.button === 0 && reveal(link.getAttribute("data-goto"))) {
      event.preventDefault();
    }
  });
  window.addEventListener("hashchange", revealHash);

  // ------------------------------------------------------------ start

  main.setAttribute("aria-busy", "true");
  shownCount.setAttribute("data-complete", "false");
  shownCount.setAttribute("data-first-cards", String(records.length));
  apply(false);

  if (window.fetch) {
    fetch(DATA_URL, { headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(useData, dataFailed);
  } else {
    dataFailed();
  }

  // Build the rest only once the first screen is on its way: the first frame comes first.
  function afterFirstFrame() {
    if (started) {
      return;
    }
    started = true;
    shownCount.setAttribute("data-cards-at-first-frame", String(main.querySelectorAll(".operation").length));
    startBuilding();
  }
  if (document.visibilityState === "hidden" || !window.requestAnimationFrame) {
    afterFirstFrame();
  } else {
    window.requestAnimationFrame(function () { setTimeout(afterFirstFrame, 0); });
  }
}());
