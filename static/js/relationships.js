// The Add relationship form on an asset's Relationships tab. No inline scripts (the CSP forbids
// them). `Find asset` is an htmx active search (its matches are buttons); this file turns a
// pick into the form's hidden target id, keeps Enter in the search box from sending the form,
// and writes the link being made as a sentence ("orders-db depends on billing-db").
(function () {
  "use strict";

  function form() {
    return document.getElementById("add-link");
  }

  function preview() {
    var f = form();
    if (!f) return;
    var out = f.querySelector("[data-link-preview]");
    var chosen = f.querySelector("[data-chosen-name]");
    var kind = f.elements.kind;
    var picked = f.elements.target_id.value && chosen ? chosen.textContent : "";
    if (!out || !kind) return;
    if (!picked) {
      out.textContent = "";
      return;
    }
    var direction = f.querySelector('input[name="direction"]:checked');
    var here = f.getAttribute("data-asset-name");
    var phrase = kind.options[kind.selectedIndex].text;
    var incoming = direction && direction.value === "incoming";
    out.textContent = "Adds: " + (incoming ? picked : here) + " " + phrase + " " + (incoming ? here : picked) + ".";
  }

  function pick(button) {
    var f = form();
    if (!f) return;
    f.elements.target_id.value = button.getAttribute("data-pick-id");
    var chosen = f.querySelector("[data-chosen-name]");
    if (chosen) chosen.textContent = button.getAttribute("data-pick-name");
    var results = document.getElementById("find-results");
    if (results) results.textContent = "";
    preview();
    var submit = f.querySelector('button[type="submit"]');
    if (submit) submit.focus();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("#find-results [data-pick-id]") : null;
    if (!button) return;
    event.preventDefault();
    pick(button);
  });

  // Enter in `Find asset` picks the only match, and never sends the form half filled
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !event.target || event.target.id !== "link-find") return;
    event.preventDefault();
    var matches = document.querySelectorAll("#find-results [data-pick-id]");
    if (matches.length === 1) pick(matches[0]);
  });

  document.addEventListener("change", function (event) {
    if (event.target && event.target.closest && event.target.closest("#add-link")) preview();
  });

  document.addEventListener("DOMContentLoaded", preview);
  document.addEventListener("htmx:afterSettle", preview);
})();
