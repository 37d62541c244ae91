// Key/value rows of a form (an asset's metadata): add a blank row, remove one. The form posts
// the rows' inputs in page order.
(function () {
  "use strict";
  var counter = 1000;
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-row]") : null;
    if (!button) return;
    var box = button.closest("fieldset");
    if (!box) return;
    if (button.getAttribute("data-row") === "remove") {
      var row = button.closest("tr");
      var next = row.nextElementSibling;
      row.remove();
      if (next) { var input = next.querySelector("input"); if (input) input.focus(); }
      return;
    }
    var rows = box.querySelectorAll("tr.metadata-row");
    var last = rows[rows.length - 1];
    var copy = last.cloneNode(true);
    counter += 1;
    copy.querySelectorAll("input, label").forEach(function (el) {
      if (el.tagName === "LABEL") {
        el.setAttribute("for", el.getAttribute("for").replace(/\d+$/, counter));
        el.textContent = el.textContent.replace(/\d+$/, rows.length + 1);
      } else {
        if (el.id) el.id = el.id.replace(/\d+$/, counter);
        if (el.type === "hidden") el.value = "text"; else el.value = "";
        el.classList.remove("mono");
      }
    });
    last.parentNode.appendChild(copy);
    copy.querySelector("input").focus();
  });
})();
