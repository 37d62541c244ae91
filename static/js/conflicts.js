// The review queue's keyboard shortcuts and bulk selection. No inline scripts (the CSP forbids
// them); every action is a link or a button that works without this file.
//   queue:  j / k move between rows (Enter opens), m / n / d press the bulk buttons
//   item:   j / k next / previous item, m Merge, n Create new, d Dismiss
(function () {
  "use strict";

  var KEYS = ["j", "k", "m", "n", "d"];

  function isTyping(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    if (el.tagName !== "INPUT") return false;
    var type = (el.getAttribute("type") || "text").toLowerCase();
    return ["checkbox", "radio", "button", "submit", "reset"].indexOf(type) === -1;
  }

  function selectedCount() {
    return document.querySelectorAll('#bulk input[name="ids"]:checked').length;
  }

  function moveInQueue(step) {
    var links = Array.prototype.slice.call(document.querySelectorAll("[data-queue-row] [data-row-link]"));
    if (!links.length) return false;
    var rows = links.map(function (a) { return a.closest("[data-queue-row]"); });
    var at = rows.indexOf(document.activeElement ? document.activeElement.closest("[data-queue-row]") : null);
    var next = at === -1 ? (step > 0 ? 0 : links.length - 1) : Math.min(links.length - 1, Math.max(0, at + step));
    rows.forEach(function (row, i) { row.classList.toggle("current", i === next); });
    links[next].focus();
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    if (KEYS.indexOf(event.key) === -1 || isTyping(event.target)) return;
    if ((event.key === "j" || event.key === "k") && moveInQueue(event.key === "j" ? 1 : -1)) {
      event.preventDefault();
      return;
    }
    var target = document.querySelector('[data-key="' + event.key + '"]');
    if (!target || target.disabled) return;
    if (target.hasAttribute("data-needs-selection") && !selectedCount()) return;
    event.preventDefault();
    target.click();
  });

  function refreshSelection() {
    var count = selectedCount();
    var label = document.querySelector("[data-selected-count]");
    if (label) label.textContent = count ? count + " selected" : "";
    document.querySelectorAll("[data-needs-selection]").forEach(function (button) {
      button.setAttribute("aria-disabled", count ? "false" : "true");
    });
    var all = document.querySelector("[data-select-all] input");
    var boxes = document.querySelectorAll('#bulk input[name="ids"]:not(:disabled)');
    if (all) all.checked = boxes.length > 0 && count === boxes.length;
  }

  function setUp() {
    var all = document.querySelector("[data-select-all]");
    if (all) all.hidden = false;  // only useful with this script
    refreshSelection();
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!target.closest) return;
    if (target.closest("[data-select-all]")) {
      document.querySelectorAll('#bulk input[name="ids"]:not(:disabled)').forEach(function (box) {
        box.checked = target.checked;
      });
    }
    if (target.closest("#bulk")) refreshSelection();
  });

  // a bulk button pressed with nothing selected says so instead of sending an empty request
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-needs-selection]") : null;
    if (!button || selectedCount()) return;
    event.preventDefault();
    var label = document.querySelector("[data-selected-count]");
    if (label) label.textContent = "Select at least one item first.";
  });

  document.addEventListener("DOMContentLoaded", setUp);
  document.addEventListener("htmx:afterSettle", setUp);
})();
