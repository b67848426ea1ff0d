// dockyard dashboard: sign-in, the bearer token on every request, live updates from the API's watch streams,
// and build logs streamed as they are written. No inline script anywhere (CSP script-src 'self').
(function () {
  "use strict";
  var KEY = "dockyard.dashboard.token"; // sessionStorage: this tab only, gone when it closes
  var prefix = document.body.dataset.prefix;
  var stop = new AbortController();

  function token() { return sessionStorage.getItem(KEY); }
  function auth() { return { Authorization: "Bearer " + token() }; }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function $(id) { return document.getElementById(id); }

  // htmx requests (fragments and buttons) carry the token as a header, never as a cookie.
  document.body.addEventListener("htmx:configRequest", function (e) {
    if (token()) { e.detail.headers.Authorization = "Bearer " + token(); }
  });
  document.body.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail.xhr && e.detail.xhr.status === 401) { signOut("The token was refused (401 Unauthorized); sign in again."); }
  });

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    stop.abort();
    stop = new AbortController();
    $("content").hidden = true;
    $("who").hidden = true;
    var log = $("log-section");
    if (log) { log.hidden = true; }
    showSignIn(message || "");
  }

  function showSignIn(message) {
    $("sign-in").hidden = false;
    $("sign-in-error").textContent = message || "";
    $("token").focus();
  }

  // The signed-in user's name; throws an Error whose .status is the HTTP status of a refusal (none for a
  // request that got no answer: the API server out of reach).
  async function whoami(t) {
    var r = await fetch(prefix + "/f/whoami", { headers: { Authorization: "Bearer " + t } });
    if (!r.ok) {
      var err = new Error(r.status === 401 ? "That token is not known (401 Unauthorized)." : "Refused: HTTP " + r.status);
      err.status = r.status;
      throw err;
    }
    var doc = new DOMParser().parseFromString(await r.text(), "text/html");
    var el = doc.querySelector("[data-user]");
    return el ? el.dataset.user : "";
  }

  // One watch: GET PATH?watch=true, read the chunked JSON lines, signal a change, resume after a drop.
  async function watch(path, signal) {
    var delay = 1000;
    while (!signal.aborted) {
      try {
        var r = await fetch(path + (path.indexOf("?") < 0 ? "?" : "&") + "watch=true", { headers: auth(), signal: signal });
        if (r.status === 401) { signOut("The token was refused (401 Unauthorized); sign in again."); return; }
        if (r.ok && r.body) {
          delay = 1000;
          var reader = r.body.getReader();
          var decoder = new TextDecoder();
          var buf = "";
          for (;;) {
            var chunk = await reader.read();
            if (chunk.done) { break; }
            buf += decoder.decode(chunk.value, { stream: true });
            var changed = false;
            var i;
            while ((i = buf.indexOf("\n")) >= 0) {
              var line = buf.slice(0, i).trim();
              buf = buf.slice(i + 1);
              if (!line) { continue; }
              try { if (JSON.parse(line).type !== "BOOKMARK") { changed = true; } } catch (err) { changed = true; }
            }
            if (changed) { htmx.trigger(document.body, "dy-changed"); }
          }
        }
      } catch (err) {
        if (signal.aborted) { return; }
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 10000);
    }
  }

  function buildDone() {
    var el = $("build-phase");
    return el !== null && el.dataset.done === "true";
  }

  // The build log: follow=true while it runs; the API keeps it after the pod is gone.
  async function streamLog(pre, signal) {
    var state = $("log-state");
    var shown = 0;
    $("log-section").hidden = false;
    while (!signal.aborted) {
      var seen = 0;
      try {
        var r = await fetch(pre.dataset.log + "?follow=true", { headers: auth(), signal: signal });
        if (r.ok && r.body) {
          state.textContent = buildDone() ? "" : "(streaming)";
          var reader = r.body.getReader();
          var decoder = new TextDecoder();
          for (;;) {
            var chunk = await reader.read();
            if (chunk.done) { break; }
            var text = decoder.decode(chunk.value, { stream: true });
            var fresh = text.slice(Math.max(0, shown - seen));
            seen += text.length;
            if (fresh) {
              var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
              pre.appendChild(document.createTextNode(fresh));
              shown += fresh.length;
              if (atEnd) { pre.scrollTop = pre.scrollHeight; }
            }
          }
        } else {
          state.textContent = "(waiting for the build to start)";
        }
      } catch (err) {
        if (signal.aborted) { return; }
      }
      if (buildDone()) { state.textContent = "(complete)"; return; }
      await sleep(1000);
    }
  }

  function showApp(user) {
    $("sign-in").hidden = true;
    $("who").hidden = false;
    $("who-name").textContent = "Signed in as " + user;
    var content = $("content");
    content.hidden = false;
    htmx.trigger(document.body, "dy-ready");
    (content.dataset.watch || "").split(" ").filter(Boolean).forEach(function (path) { watch(path, stop.signal); });
    var pre = $("log");
    if (pre) { setTimeout(function () { streamLog(pre, stop.signal); }, 300); }
  }

  $("sign-in-form").addEventListener("submit", async function (e) {
    e.preventDefault();
    var t = $("token").value.trim();
    try {
      var user = await whoami(t);
      sessionStorage.setItem(KEY, t);
      $("token").value = "";
      showApp(user);
    } catch (err) {
      $("sign-in-error").textContent = err.message;
    }
  });
  $("sign-out").addEventListener("click", function () { signOut("Signed out."); });
  window.addEventListener("pagehide", function () { stop.abort(); });

  // A page load with this tab's token: a refusal (401, 403) signs out; no answer, 429 or a 5xx keeps the
  // token and tries again (0.5, 1, 2, 4, then every 8 s), as the watches do, saying so.
  (async function () {
    var t = token();
    if (!t) { showSignIn(""); return; }
    for (var delay = 500; ; delay = Math.min(delay * 2, 8000)) {
      try {
        var user = await whoami(t);
        $("flash").textContent = "";
        showApp(user);
        return;
      } catch (err) {
        var transient = err.status === undefined || err.status === 429 || err.status >= 500;
        if (!transient) { signOut(err.message); return; }
        $("flash").textContent = "Cannot reach the API server (" + err.message + "); trying again in " +
          (delay / 1000) + " s.";
        await sleep(delay);
      }
    }
  })();
})();
