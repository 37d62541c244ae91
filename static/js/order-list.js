// Ordered lists of text inputs (the precedence lists on /admin/settings): move an entry up or
// down, or remove it. The form posts the inputs in page order, so the order is what is saved.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-move]") : null;
    if (!button) return;
    var item = button.closest("li");
    if (!item) return;
    var move = button.getAttribute("data-move");
    if (move === "remove") {
      var next = item.nextElementSibling || item.previousElementSibling;
      item.remove();
      if (next) { var b = next.querySelector("button"); if (b) b.focus(); }
      return;
    }
    var other = move === "up" ? item.previousElementSibling : item.nextElementSibling;
    if (!other || other.querySelector("input[readonly]")) return;  // manual stays first
    if (move === "up") item.parentNode.insertBefore(item, other);
    else item.parentNode.insertBefore(other, item);
    button.focus();
  });
})();
