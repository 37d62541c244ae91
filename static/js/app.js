// Behaviour for every page. No inline scripts: the CSP forbids them.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Every htmx request carries the CSRF token as a header.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRFToken"] = csrfToken();
  });

  // Surface htmx transport errors instead of failing silently.
  document.addEventListener("htmx:responseError", function (event) {
    var box = document.getElementById("flashes");
    if (!box) return;
    var div = document.createElement("div");
    div.className = "flash flash-error";
    div.setAttribute("role", "alert");
    var status = event.detail.xhr ? event.detail.xhr.status : "";
    div.textContent = "The request failed (" + status + "). Reload the page and try again.";
    box.appendChild(div);
  });

  // The header search: the down arrow moves from the box into the results, up and down move
  // between them, Escape closes them and returns to the box. Enter on a result opens it.
  function quickLinks() {
    var box = document.getElementById("quick-results");
    return box ? Array.prototype.slice.call(box.querySelectorAll("a[href]")) : [];
  }
  function closeQuick(focusBox) {
    var box = document.getElementById("quick-results");
    if (box) box.innerHTML = "";
    if (focusBox) {
      var input = document.getElementById("header-q");
      if (input) input.focus();
    }
  }
  document.addEventListener("keydown", function (event) {
    var input = document.getElementById("header-q");
    if (!input) return;
    var links = quickLinks();
    var inBox = event.target === input;
    var at = links.indexOf(event.target);
    if (!inBox && at < 0) return;
    if (event.key === "Escape") {
      event.preventDefault();
      closeQuick(true);
    } else if (event.key === "ArrowDown" && links.length) {
      event.preventDefault();
      links[inBox ? 0 : Math.min(at + 1, links.length - 1)].focus();
    } else if (event.key === "ArrowUp" && at >= 0) {
      event.preventDefault();
      if (at === 0) input.focus(); else links[at - 1].focus();
    }
  });
  document.addEventListener("click", function (event) {
    var form = document.querySelector(".header-search");
    if (form && !form.contains(event.target)) closeQuick(false);
  });

  // Below 800 px the navigation folds into a Menu button.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".menu-toggle") : null;
    if (!button) return;
    var bar = button.closest(".topbar");
    var open = !bar.classList.contains("menu-open");
    bar.classList.toggle("menu-open", open);
    button.setAttribute("aria-expanded", open ? "true" : "false");
  });

  // A report's Print button (no inline script under the CSP).
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-print]")) window.print();
  });

  // "/" focuses the search box, as in most inventory tools.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT" || target.isContentEditable)) return;
    var search = document.querySelector('main input[type="search"]') || document.getElementById("header-q");
    if (search) {
      event.preventDefault();
      search.focus();
    }
  });
})();
