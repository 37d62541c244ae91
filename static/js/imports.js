// The upload form's drop zone: drop a file anywhere on it to choose it for the file input.
// No inline scripts (the CSP forbids them); the file input keeps working without this.
(function () {
  "use strict";

  function zoneOf(target) {
    return target && target.closest ? target.closest("[data-drop-zone]") : null;
  }

  function sizeText(bytes) {
    if (bytes < 1024) return bytes + " bytes";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  function showChosen(zone) {
    var input = zone.querySelector('input[type="file"]');
    var name = zone.querySelector("[data-drop-name]");
    if (!input || !name) return;
    var file = input.files && input.files[0];
    name.textContent = file ? "Chosen: " + file.name + " (" + sizeText(file.size) + ")" : "";
    zone.classList.toggle("has-file", !!file);
  }

  function hasFiles(event) {
    var types = event.dataTransfer ? event.dataTransfer.types : null;
    return !!types && Array.prototype.indexOf.call(types, "Files") !== -1;
  }

  document.addEventListener("dragover", function (event) {
    if (!hasFiles(event) || !document.querySelector("[data-drop-zone]")) return;
    // a file dropped beside the zone must not make the browser leave the page to open it
    event.preventDefault();
    var zone = zoneOf(event.target);
    event.dataTransfer.dropEffect = zone ? "copy" : "none";
    document.querySelectorAll("[data-drop-zone]").forEach(function (z) {
      z.classList.toggle("dragging", z === zone);
    });
  });

  document.addEventListener("dragleave", function (event) {
    var zone = zoneOf(event.target);
    if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
  });

  document.addEventListener("drop", function (event) {
    if (!hasFiles(event) || !document.querySelector("[data-drop-zone]")) return;
    event.preventDefault();
    var zone = zoneOf(event.target);
    document.querySelectorAll("[data-drop-zone]").forEach(function (z) { z.classList.remove("dragging"); });
    if (!zone) return;
    var input = zone.querySelector('input[type="file"]');
    var files = event.dataTransfer.files;
    if (!input || !files || !files.length) return;
    // one file per upload: keep the first
    var chosen = new DataTransfer();
    chosen.items.add(files[0]);
    input.files = chosen.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });

  document.addEventListener("change", function (event) {
    var zone = zoneOf(event.target);
    if (zone && event.target.matches('input[type="file"]')) showChosen(zone);
  });
})();
