// The hosted login page: make a scene, show its code, long-poll until confirmed, then go to
// `next`. Every state is shown and announced (#wxlogin-status is an aria-live region).
(function () {
  "use strict";
  var box = document.getElementById("wxlogin");
  if (!box) return;
  var data = JSON.parse(document.getElementById("wxlogin-data").textContent);
  var t = data.strings, base = data.base || "";  // the path the server is mounted under
  var img = document.getElementById("wxlogin-code");
  var codeBox = box.querySelector(".code-box");
  var statusLine = document.getElementById("wxlogin-status");
  var countdown = document.getElementById("wxlogin-countdown");
  var refresh = document.getElementById("wxlogin-refresh");
  var phoneLink = document.getElementById("phone-link");
  var next = box.getAttribute("data-next") || "/";
  var openLink = document.getElementById("wxlogin-open");
  var saveLink = document.getElementById("wxlogin-save");
  var saveHint = document.getElementById("wxlogin-save-hint");
  var pressHint = document.getElementById("wxlogin-press-hint");
  // A phone cannot scan its own screen: outside WeChat, a link that opens the mini program
  // comes first and the code can be saved for the album; inside WeChat's browser, a long-press
  // on the code's <img> opens it.
  var agent = navigator.userAgent;
  var inWeChat = /MicroMessenger/i.test(agent);
  var onPhone = /Android|iPhone|iPad|iPod|Mobile|HarmonyOS/i.test(agent);
  var android = /Android/i.test(agent);
  box.setAttribute("data-device", inWeChat ? "wechat" : onPhone ? "phone" : "desktop");
  var instruction = box.querySelector(".instruction");
  if (instruction && inWeChat) instruction.textContent = t.instruction_wechat;
  else if (instruction && onPhone) instruction.textContent = t.instruction_phone;
  var pollAbort = null, woken = false;
  // With an official account, its QR is offered too (the mini program's code first).
  var kind = data.kind === "oa" && data.oa ? "oa" : "wxacode";  // the server's default first
  var kindButton = document.getElementById("wxlogin-kind");
  box.setAttribute("data-kind", kind);
  if (kindButton && data.oa) {
    kindButton.hidden = false;
    kindButton.textContent = kind === "oa" ? t.use_wxacode : t.use_oa;
    kindButton.addEventListener("click", function () {
      kind = kind === "oa" ? "wxacode" : "oa";
      kindButton.textContent = kind === "oa" ? t.use_wxacode : t.use_oa;
      box.setAttribute("data-kind", kind);
      start();
    });
  }
  var generation = 0, scene = null, status = null, expiresAt = 0, retryAction = null;
  // Finished states; the last three are a refusal by the owner's rules (the poll's `reason`).
  var FINISHED = { expired: true, denied: true, error: true, approval_pending: true,
                   not_invited: true, user_disabled: true };

  function sleep(ms) { return new Promise(function (done) { setTimeout(done, ms); }); }
  function backoff(delay) { return Math.min(delay * 2, 15000); }

  function show(state, detail) {
    box.setAttribute("data-state", state);
    var text = t["state_" + state] || t.state_pending;
    // The server's explanations are in English; a Chinese page keeps to its own words.
    if (detail && data.lang === "en") text += " (" + detail + ")";
    if (statusLine.textContent !== text) statusLine.textContent = text;  // announced once
    var finished = FINISHED[state] === true;
    refresh.hidden = !(finished || state === "unavailable");
    refresh.textContent = state === "unavailable" ? t.retry : t.refresh;
    if (finished || state === "confirmed") countdown.textContent = "";
    if (phoneLink && (finished || state === "confirmed")) phoneLink.hidden = true;
    if (finished || state === "confirmed") {
      [openLink, saveLink, saveHint, pressHint].forEach(function (e) { if (e) e.hidden = true; });
    }
    img.alt = finished ? text : t.alt;  // a dead code is not described as scannable
    tick();
  }

  async function errorText(response) {
    try { return (await response.json()).message; } catch (e) { return "HTTP " + response.status; }
  }

  async function start() {
    var mine = ++generation;
    scene = null; status = null; img.hidden = true;
    codeBox.setAttribute("aria-busy", "true");
    if (phoneLink) phoneLink.hidden = true;
    [openLink, saveLink, saveHint, pressHint].forEach(function (e) { if (e) e.hidden = true; });
    show("loading");
    var response;
    for (var delay = 1000; ; delay = backoff(delay)) {
      var ask = { method: "POST", credentials: "same-origin" };
      if (data.oa) { ask.headers = { "Content-Type": "application/json" }; ask.body = JSON.stringify({ kind: kind }); }
      try { response = await fetch(base + "/api/scenes", ask); break; }
      catch (e) { show("offline"); await sleep(delay); if (mine !== generation) return; }
    }
    if (!response.ok) {
      retryAction = start;
      var after = Number(response.headers.get("Retry-After"));
      if ((response.status === 429 || response.status === 503) && after > 0 && after <= 120) {
        show("unavailable", await errorText(response));  // busy: try again by itself
        await sleep(after * 1000);
        if (mine === generation) start();
        return;
      }
      show("error", await errorText(response));
      return;
    }
    var body = await response.json();
    scene = body.scene; status = body.status; expiresAt = Date.now() + body.expires_in * 1000;
    if (await loadCode(mine, body.code_url)) poll(mine);
  }

  async function loadCode(mine, url) {
    var response;
    for (var delay = 1000; ; delay = backoff(delay)) {  // a lost connection: retry by itself
      try { response = await fetch(url, { credentials: "same-origin" }); break; }
      catch (e) { show("offline"); await sleep(delay); if (mine !== generation) return false; }
    }
    if (mine !== generation) return false;
    if (!response.ok) {
      if (response.status >= 500) {  // WeChat trouble: the same scene may draw next time
        retryAction = function () { return retryCode(url); };
        show("unavailable", await errorText(response));
      } else {  // expired or gone: only a new scene helps
        retryAction = start;
        show(response.status === 410 ? "expired" : "error", await errorText(response));
      }
      return false;
    }
    var blob = await response.blob();
    if (img.src) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(blob);
    img.hidden = false;
    codeBox.setAttribute("aria-busy", "false");
    if (phoneLink) {
      phoneLink.href = base + (kind === "oa" ? "/sandbox/oa?scene=" : "/sandbox/phone?scene=") + encodeURIComponent(scene);
      phoneLink.hidden = false;
    }
    show(status);
    if (inWeChat && pressHint) pressHint.hidden = false;
    if (onPhone && !inWeChat && kind === "wxacode") {
      if (saveLink) { saveLink.href = img.src; saveLink.hidden = false; }
      if (saveHint) saveHint.hidden = false;
      mobileLink(mine);
    }
    return true;
  }

  async function mobileLink(mine) {
    if (!openLink) return;
    var response;
    try { response = await fetch(base + "/api/scenes/" + scene + "/link", { credentials: "same-origin" }); }
    catch (e) { return; }  // no link: the saved code still works
    if (mine !== generation || !response.ok) return;
    var url = (await response.json()).url;
    openLink.href = url;
    openLink.hidden = false;
    if (phoneLink) phoneLink.hidden = true;  // the link does what the sandbox's helper did
  }

  if (openLink) {
    openLink.addEventListener("click", function (event) {
      // Android's browsers follow a weixin:// scheme only when the page sets location.href.
      if (android && openLink.href.indexOf("weixin:") === 0) {
        event.preventDefault();
        window.location.href = openLink.href;
      }
    });
  }

  function wake() {  // back from WeChat: learn the state at once
    if (document.visibilityState === "visible" && pollAbort) { woken = true; pollAbort.abort(); }
  }
  document.addEventListener("visibilitychange", wake);
  window.addEventListener("pageshow", wake);

  async function retryCode(url) {
    var mine = generation;
    show("loading");
    if (await loadCode(mine, url)) poll(mine);
  }

  async function poll(mine) {
    var delay = 1000, wait = 50;  // the most the server holds: one request a browser-minute or so
    while (mine === generation) {
      var response, body = null;
      pollAbort = new AbortController(); woken = false;
      try {
        response = await fetch(base + "/api/scenes/" + scene + "?wait=" + wait + "&since=" + status,
                               { credentials: "same-origin", signal: pollAbort.signal });
        if (response.ok) body = await response.json();  // a wake may abort the body's read too
      } catch (e) {
        if (woken) { woken = false; wait = 0; continue; }
        show("offline"); await sleep(delay); delay = backoff(delay);
        wait = 0;  // back online: learn the state at once, then wait again
        continue;
      }
      if (mine !== generation) return;
      if (response.status >= 500 || response.status === 429) {
        show("offline"); await sleep(delay); delay = backoff(delay); wait = 0; continue;
      }
      if (!response.ok) {
        retryAction = start;
        show(response.status === 404 ? "expired" : "error", await errorText(response));
        return;
      }
      delay = 1000; wait = 50;
      status = body.status;
      if (status === "confirmed") { show("confirmed"); window.location.assign(next); return; }
      if (status === "expired" || status === "denied") {
        retryAction = start;
        show(status === "denied" && t["state_" + body.reason] ? body.reason : status);
        return;
      }
      expiresAt = Date.now() + body.expires_in * 1000;
      show(status === "scanned" ? "scanned" : "pending");  // unknown statuses: still waiting
    }
  }

  function tick() {
    var state = box.getAttribute("data-state");
    if (scene && (state === "pending" || state === "scanned" || state === "offline")) {
      var left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
      var text = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
      countdown.textContent = t.expires_in.replace("{time}", text);
    }
  }

  refresh.addEventListener("click", function () {
    statusLine.focus();  // the button hides itself; keep keyboard users in place
    (retryAction || start)();
  });
  setInterval(tick, 1000);
  start();
})();
