// Starts Redoc on the REST API's reference page (templates/api/redoc.html): a static file,
// since the Content-Security-Policy allows no inline script.
(() => {
  const container = document.getElementById("redoc-container");
  if (container && window.Redoc) window.Redoc.init(container.dataset.specUrl, {}, container);
})();
