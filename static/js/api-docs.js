// Starts the vendored Swagger UI on /api/v1/docs and /api-docs (no inline script: the CSP
// forbids it). The OpenAPI document comes embedded in the page's data-spec attribute.
window.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    spec: JSON.parse(root.getAttribute("data-spec")),
    domNode: root,
    deepLinking: true,
    validatorUrl: null,
    tryItOutEnabled: false
  });
});
