/* Sends the session's CSRF token with every same-origin state-changing fetch (Dash callbacks are
   POSTs to /_dash-update-component), and sends the browser to the sign-in page when a callback
   is refused because the session has ended. The token comes from the readable `cmh_csrf` cookie
   set by dashboard/auth/guard.py. Vendored: no third-party code. */
(function () {
  "use strict";
  if (!window.fetch || window.__cmhCsrfInstalled) { return; }
  window.__cmhCsrfInstalled = true;
  var SAFE = { GET: true, HEAD: true, OPTIONS: true };
  var nativeFetch = window.fetch.bind(window);

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)cmh_csrf=([^;]*)/);
    return match ? decodeURIComponent(match[1]) : null;
  }

  function sameOrigin(url) {
    try { return new URL(url, window.location.href).origin === window.location.origin; }
    catch (e) { return false; }
  }

  window.fetch = function (input, init) {
    var url = typeof input === "string" ? input : (input && input.url) || String(input);
    var method = ((init && init.method) || (input && input.method) || "GET").toUpperCase();
    var token = csrfToken();
    if (!SAFE[method] && token && sameOrigin(url)) {
      init = Object.assign({}, init || {});
      var headers = new Headers((init.headers) || (input && input.headers) || {});
      headers.set("X-CSRFToken", token);
      init.headers = headers;
    }
    return nativeFetch(input, init).then(function (response) {
      if (response.status === 401 && sameOrigin(url) && /\/_dash-/.test(url)) {
        var here = window.location.pathname + window.location.search;
        window.location.assign("/login?next=" + encodeURIComponent(here));
      }
      return response;
    });
  };
}());
