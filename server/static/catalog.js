// Catalog page filters: narrow the server-rendered list as the user types.
// Plain JavaScript, no dependencies. The page is complete without this file;
// it only hides and shows what the server rendered.
(function () {
  "use strict";

  var form = document.getElementById("filters");
  var search = document.getElementById("search");
  var kindFilter = document.getElementById("kind-filter");
  var categoryFilter = document.getElementById("category-filter");
  var shownCount = document.getElementById("shown-count");
  var noMatch = document.getElementById("no-match");
  var clearButton = document.getElementById("clear-filters");
  if (!search || !kindFilter || !categoryFilter || !shownCount) {
    return;
  }

  function text(root, selector) {
    var element = root.querySelector(selector);
    return element ? element.textContent.trim() : "";
  }

  // What the search matches, as GET /catalog?q= does: name, summary and path.
  var operations = Array.prototype.map.call(document.querySelectorAll(".operation"), function (element) {
    return {
      element: element,
      kind: element.getAttribute("data-kind"),
      category: element.getAttribute("data-category"),
      haystack: [text(element, ".op-name"), text(element, ".op-summary"), text(element, ".path")]
        .map(function (value) { return value.toLowerCase(); })
    };
  });

  var sections = Array.prototype.map.call(document.querySelectorAll(".category"), function (element) {
    var count = element.querySelector(".category-count");
    return {
      element: element,
      category: element.getAttribute("data-category"),
      count: count,
      total: count ? Number(count.getAttribute("data-total")) : 0
    };
  });

  function hasOption(select, value) {
    return Array.prototype.some.call(select.options, function (option) { return option.value === value; });
  }

  function matches(operation, needle, kind, category) {
    if (kind && operation.kind !== kind) {
      return false;
    }
    if (category && operation.category !== category) {
      return false;
    }
    if (!needle) {
      return true;
    }
    return operation.haystack.some(function (value) { return value.indexOf(needle) !== -1; });
  }

  function apply() {
    var needle = search.value.trim().toLowerCase();
    var kind = kindFilter.value;
    var category = categoryFilter.value;
    var filtering = Boolean(needle || kind || category);
    var perCategory = {};
    var shown = 0;

    operations.forEach(function (operation) {
      var visible = matches(operation, needle, kind, category);
      operation.element.hidden = !visible;
      if (visible) {
        shown += 1;
        perCategory[operation.category] = (perCategory[operation.category] || 0) + 1;
      }
    });

    sections.forEach(function (section) {
      var count = perCategory[section.category] || 0;
      section.element.hidden = count === 0;
      if (section.count) {
        section.count.textContent = filtering && count !== section.total ? count + " of " + section.total : String(section.total);
      }
    });

    shownCount.textContent = shown + (shown === 1 ? " operation shown" : " operations shown");
    shownCount.setAttribute("data-shown", String(shown));
    if (noMatch) {
      noMatch.hidden = shown !== 0;
    }
    if (clearButton) {
      clearButton.disabled = !filtering;
    }
    remember(needle ? search.value.trim() : "", kind, category);
  }

  // Keep the filters in the address, so a filtered view can be shared or reloaded.
  function remember(q, kind, category) {
    if (!window.history || !window.history.replaceState || !window.URLSearchParams) {
      return;
    }
    var params = new URLSearchParams();
    if (q) { params.set("q", q); }
    if (kind) { params.set("kind", kind); }
    if (category) { params.set("category", category); }
    var query = params.toString();
    var url = window.location.pathname + (query ? "?" + query : "") + window.location.hash;
    if (url !== window.location.pathname + window.location.search + window.location.hash) {
      window.history.replaceState(null, "", url);
    }
  }

  function restore() {
    if (!window.URLSearchParams) {
      return;
    }
    var params = new URLSearchParams(window.location.search);
    search.value = params.get("q") || "";
    var kind = params.get("kind") || "";
    kindFilter.value = hasOption(kindFilter, kind) ? kind : "";
    var category = params.get("category") || "";
    categoryFilter.value = hasOption(categoryFilter, category) ? category : "";
  }

  function clear() {
    search.value = "";
    kindFilter.value = "";
    categoryFilter.value = "";
    apply();
    search.focus();
  }

  search.addEventListener("input", apply);
  search.addEventListener("search", apply);
  kindFilter.addEventListener("change", apply);
  categoryFilter.addEventListener("change", apply);
  if (form) {
    form.addEventListener("submit", function (event) { event.preventDefault(); apply(); });
  }
  if (clearButton) {
    clearButton.addEventListener("click", clear);
  }
  search.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && search.value) {
      event.preventDefault();
      search.value = "";
      apply();
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

  restore();
  apply();
}());
