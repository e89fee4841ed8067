// Starts Swagger UI on the page's #swagger-ui element, with the description its data-url names.
// Served as a file so that the page needs no inline script (Content-Security-Policy).
(function () {
  var element = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: element.dataset.url,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout",
    showExtensions: true,
    validatorUrl: null, // the default fetches a badge from another origin
  });
})();
