// Bulk actions on the inventory: "Select all on this page", and showing only the value field
// the chosen action needs. The page works without this (every value field shows, rows are
// ticked one by one). No inline scripts: the CSP forbids them.
(function () {
  "use strict";
  if (window.inventoryBulk) return; // loaded again by an htmx swap of the results
  window.inventoryBulk = true;

  function rows(form) {
    return document.querySelectorAll('input[type="checkbox"][name="ids"][form="' + form + '"]');
  }

  function showValueField(root) {
    (root || document).querySelectorAll("[data-bulk-action]").forEach(function (select) {
      var form = select.form || document;
      form.querySelectorAll("[data-bulk-for]").forEach(function (wrapper) {
        var wanted = wrapper.getAttribute("data-bulk-for").split(" ");
        wrapper.hidden = wanted.indexOf(select.value) === -1;
      });
    });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("[data-select-page]")) {
      var form = target.form ? target.form.id : "bulk-form";
      rows(form).forEach(function (box) { box.checked = target.checked; });
      var selected = document.querySelector('#' + form + ' input[name="scope"][value="ids"]');
      if (selected) selected.checked = true;
    } else if (target.matches('input[type="checkbox"][name="ids"][form]')) {
      var all = document.querySelector("#" + target.getAttribute("form") + " [data-select-page]");
      if (all && !target.checked) all.checked = false;
    } else if (target.matches("[data-bulk-action]")) {
      showValueField(target.form);
    }
  });

  document.addEventListener("htmx:load", function (event) { showValueField(event.target); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { showValueField(); });
  } else {
    showValueField();
  }
})();
