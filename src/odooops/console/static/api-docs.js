// The API's docs page: Swagger UI on the schema its element names. A file, not
// an inline script, as the page's Content-Security-Policy allows only this site's.
"use strict";

(() => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.url,
    domNode: root,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,  // else the schema's address goes to validator.swagger.io for a badge
  });
})();
