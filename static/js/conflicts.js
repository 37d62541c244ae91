// The review queue's keyboard shortcuts and bulk selection. No inline scripts (the CSP forbids
// them); every action is a link, a checkbox or a button that works without this file.
//   queue:  j / k move between rows (Enter opens), x selects the focused row, Shift+x selects
//           from the last selected row to it, m / n / d press the bulk buttons (the server asks
//           to confirm more than one item), ? shows or hides the help
//   item:   j / k next / previous item, m Merge, n Create new, d Dismiss, ? help
(function () {
  "use strict";

  var KEYS = ["j", "k", "x", "X", "m", "n", "d", "?"];
  var anchor = null;  // the row last selected (by x or a click): where Shift+x starts

  function isTyping(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    if (el.tagName !== "INPUT") return false;
    var type = (el.getAttribute("type") || "text").toLowerCase();
    return ["checkbox", "radio", "button", "submit", "reset"].indexOf(type) === -1;
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-queue-row]"));
  }

  function selectedCount() {
    return document.querySelectorAll('#bulk input[name="ids"]:checked').length;
  }

  function currentIndex(all) {
    var focused = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest("[data-queue-row]") : null;
    var at = all.indexOf(focused);
    if (at !== -1) return at;
    return all.indexOf(document.querySelector("[data-queue-row].current"));
  }

  function focusRow(all, index) {
    all.forEach(function (row, i) { row.classList.toggle("current", i === index); });
    var link = all[index].querySelector("[data-row-link]");
    if (link) link.focus();
  }

  function moveInQueue(step) {
    var all = rows();
    if (!all.length) return false;
    var at = currentIndex(all);
    var next = at === -1 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, at + step));
    focusRow(all, next);
    return true;
  }

  function box(row) {
    return row ? row.querySelector('input[name="ids"]:not(:disabled)') : null;
  }

  function selectRange(all, from, to) {
    var low = Math.min(from, to), high = Math.max(from, to);
    for (var i = low; i <= high; i++) {
      var b = box(all[i]);
      if (b) b.checked = true;
    }
  }

  // x: toggle the focused row; Shift+x: select from the last selected row to the focused one
  function select(range) {
    var all = rows();
    var at = currentIndex(all);
    if (at === -1) return false;
    var b = box(all[at]);
    if (!b) return false;
    var from = all.indexOf(anchor);
    if (range && from !== -1) {
      selectRange(all, from, at);
    } else {
      b.checked = !b.checked;
    }
    anchor = all[at];
    focusRow(all, at);
    refreshSelection();
    return true;
  }

  function toggleHelp() {
    var help = document.getElementById("shortcuts");
    if (!help) return false;
    help.open = !help.open;
    if (help.open) help.querySelector("summary").focus();
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    if (KEYS.indexOf(event.key) === -1 || isTyping(event.target)) return;
    var done = false;
    if (event.key === "?") done = toggleHelp();
    else if (event.key === "j" || event.key === "k") done = moveInQueue(event.key === "j" ? 1 : -1);
    else if (event.key === "x" || event.key === "X") done = select(event.key === "X" || event.shiftKey);
    if (done) {
      event.preventDefault();
      return;
    }
    var target = document.querySelector('[data-key="' + event.key + '"]');
    if (!target || target.disabled) return;
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
    rows().forEach(function (row) {
      var b = box(row);
      row.classList.toggle("selected", !!(b && b.checked));
    });
    var all = document.querySelector("[data-select-all] input");
    var boxes = document.querySelectorAll('#bulk input[name="ids"]:not(:disabled)');
    if (all) all.checked = boxes.length > 0 && count === boxes.length;
  }

  function setUp() {
    var all = document.querySelector("[data-select-all]");
    if (all) all.hidden = false;  // only useful with this script
    anchor = null;
    refreshSelection();
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!target.closest) return;
    if (target.closest("[data-select-all]")) {
      document.querySelectorAll('#bulk input[name="ids"]:not(:disabled)').forEach(function (b) {
        b.checked = target.checked;
      });
    }
    if (target.closest("#bulk")) refreshSelection();
  });

  document.addEventListener("click", function (event) {
    if (!event.target.closest) return;
    // Shift+click on a checkbox selects the range, as Shift+x does
    var picked = event.target.closest('[data-queue-row] input[name="ids"]');
    if (picked) {
      var all = rows();
      var row = picked.closest("[data-queue-row]");
      if (event.shiftKey && anchor && picked.checked) selectRange(all, all.indexOf(anchor), all.indexOf(row));
      if (picked.checked) anchor = row;
      all.forEach(function (r) { r.classList.toggle("current", r === row); });
      refreshSelection();
      return;
    }
    // a bulk button pressed with nothing selected says so instead of sending an empty request
    var button = event.target.closest("[data-needs-selection]");
    if (!button || selectedCount()) return;
    event.preventDefault();
    var label = document.querySelector("[data-selected-count]");
    if (label) label.textContent = "Select at least one item first.";
  });

  // the help starts folded on a narrow screen (it would push the queue down); open elsewhere
  function foldHelp() {
    var help = document.getElementById("shortcuts");
    if (help && window.matchMedia && window.matchMedia("(max-width: 1000px)").matches) help.open = false;
  }

  document.addEventListener("DOMContentLoaded", function () { foldHelp(); setUp(); });
  document.addEventListener("htmx:afterSettle", setUp);
})();
