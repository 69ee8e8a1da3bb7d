// wxlogin.js: "Log in with WeChat" for any page on the same site as the login server.
// <div data-wxlogin></div> <script src="/static/wxlogin.js" defer></script>
// Renders in a shadow root (its styles and the page's do not touch), opens the code in a dialog,
// long-polls, then shows the visitor with a logout link. The API is found beside the script
// (…/static/wxlogin.js), so a server mounted under a path works without configuration. Fires `wxlogin:login` (detail: the user)
// and `wxlogin:logout` on the element; they bubble to `document`. No dependencies.
(function () {
  "use strict";
  var script = document.currentScript && document.currentScript.src;
  var found = script && script.match(/^(.*)\/static\/wxlogin\.js(?:[?#].*)?$/);
  var BASE = found ? found[1] : "";
  var WORDS = {
    zh: { login: "微信登录", logout: "退出", scan: "请用微信扫码登录", scanned: "已扫码，请在手机上确认",
      expired: "二维码已过期", denied: "已取消登录", again: "刷新二维码", offline: "网络中断，正在重试……",
      failed: "暂时无法登录，请稍后重试", close: "关闭", alt: "微信小程序码",
      open: "打开微信登录", save: "保存二维码", saveHint: "或者保存二维码，在微信扫一扫里从相册选取",
      press: "长按二维码，选择“识别图中的小程序码”",
      approval_pending: "账号等待网站管理员批准，批准后再扫码", not_invited: "这个网站仅限受邀用户登录",
      user_disabled: "这个账号已被停用" },
    en: { login: "Log in with WeChat", logout: "Log out", scan: "Scan with WeChat to log in",
      scanned: "Scanned. Confirm on your phone", expired: "This code has expired",
      denied: "The login was declined", again: "New code", offline: "Connection lost. Retrying…",
      failed: "Cannot log in right now. Try again later", close: "Close", alt: "WeChat mini-program code",
      open: "Open WeChat to log in", save: "Save the code",
      saveHint: "Or save the code and scan it from your album in WeChat",
      press: "Long-press the code and choose “识别图中的小程序码”",
      approval_pending: "Your account waits for the owner's approval; scan again once approved",
      not_invited: "This site lets people in by invitation only",
      user_disabled: "This account is disabled" }
  };
  var CSS = ":host{all:initial;font:14px/1.4 system-ui,sans-serif;color:#1d1d1f}" +
    "button,a{font:inherit;cursor:pointer}.go{background:#1a7f37;color:#fff;border:0;border-radius:6px;padding:8px 14px}" +
    ".who{display:inline-flex;align-items:center;gap:8px}.who img{width:28px;height:28px;border-radius:50%}" +
    "a{color:#1a7f37}dialog{border:0;border-radius:12px;padding:20px;text-align:center;box-shadow:0 8px 30px #0003}" +
    "dialog img{width:220px;height:auto;display:block;margin:8px auto}.x{background:none;border:0;float:right;font-size:18px}" +
    ".open{display:block;margin:8px 0;text-decoration:none}.hint{color:#636366;font-size:13px}[hidden]{display:none!important}";
  // A phone cannot scan its own screen (see login.js): a link first, the code to save or press.
  var AGENT = navigator.userAgent;
  var IN_WECHAT = /MicroMessenger/i.test(AGENT);
  var ON_PHONE = /Android|iPhone|iPad|iPod|Mobile|HarmonyOS/i.test(AGENT);
  var ANDROID = /Android/i.test(AGENT);

  function sleep(ms) { return new Promise(function (done) { setTimeout(done, ms); }); }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var key in attrs || {}) node.setAttribute(key, attrs[key]);
    if (text) node.textContent = text;
    return node;
  }
  function api(path, method) {
    return fetch(BASE + path, { method: method || "GET", credentials: "same-origin" });
  }

  function mount(host) {
    var tag = (host.getAttribute("data-lang") || document.documentElement.lang || navigator.language || "zh");
    var t = WORDS[tag.toLowerCase().indexOf("en") === 0 ? "en" : "zh"];
    var root = host.attachShadow({ mode: "open" });
    var style = el("style"); style.textContent = CSS;
    var slot = el("span", { part: "widget" });
    root.append(style, slot);
    var generation = 0;

    function emit(name, user) {
      host.dispatchEvent(new CustomEvent(name, { bubbles: true, composed: true, detail: { user: user } }));
    }

    function showButton() {
      var button = el("button", { type: "button", class: "go", part: "button" }, t.login);
      button.addEventListener("click", open);
      slot.replaceChildren(button);
    }

    function showUser(user) {
      var who = el("span", { class: "who", part: "user" });
      if (user.avatar_url) who.append(el("img", { src: user.avatar_url, alt: "" }));
      var out = el("a", { href: "#", role: "button", part: "logout" }, t.logout);
      out.addEventListener("click", async function (event) {
        event.preventDefault();
        if ((await api("/api/logout", "POST")).ok) { showButton(); emit("wxlogin:logout", user); }
      });
      who.append(el("span", { class: "name" }, user.nickname || "—"), out);
      slot.replaceChildren(who);
    }

    async function refresh() {
      var response = await api("/api/me");
      if (!response.ok) return showButton();
      var user = (await response.json()).user;
      showUser(user);
      return user;
    }

    function open() {
      var dialog = el("dialog", { part: "dialog", "aria-label": t.login });
      var close = el("button", { type: "button", class: "x", "aria-label": t.close }, "×");
      var img = el("img", { alt: t.alt, hidden: "" });
      var status = el("p", { role: "status", "aria-live": "polite" }, "…");
      var again = el("button", { type: "button", class: "go", hidden: "" }, t.again);
      var link = el("a", { class: "go open", part: "open", hidden: "" }, t.open);
      var hint = el("p", { class: "hint", hidden: "" }, IN_WECHAT ? t.press : t.saveHint);
      var save = el("a", { part: "save", download: "wechat-login-code.png", hidden: "" }, t.save);
      link.addEventListener("click", function (event) {
        if (ANDROID && link.href.indexOf("weixin:") === 0) { event.preventDefault(); window.location.href = link.href; }
      });
      dialog.append(close, link, img, hint, save, status, again);
      root.append(dialog);
      close.addEventListener("click", function () { dialog.close(); });
      dialog.addEventListener("close", function () { generation++; dialog.remove(); });
      var parts = { link: link, hint: hint, save: save };
      again.addEventListener("click", function () { attempt(img, status, again, dialog, parts); });
      dialog.showModal();
      attempt(img, status, again, dialog, parts);
    }

    async function attempt(img, status, again, dialog, parts) {
      var mine = ++generation;
      again.hidden = true;
      parts.link.hidden = parts.hint.hidden = parts.save.hidden = true;
      function say(text, offerAgain) { status.textContent = text; again.hidden = !offerAgain; }
      try {
        var made = await api("/api/scenes", "POST");
        if (!made.ok) return say(t.failed, true);
        var scene = (await made.json()).scene;
        var code = await api("/api/scenes/" + scene + "/code");
        if (!code.ok) return say(t.failed, true);
        img.src = URL.createObjectURL(await code.blob());
        img.hidden = false;
        say(t.scan);
        if (IN_WECHAT) parts.hint.hidden = false;
        if (ON_PHONE && !IN_WECHAT) {
          parts.hint.hidden = false;
          parts.save.href = img.src; parts.save.hidden = false;
        }
      } catch (e) { return say(t.failed, true); }
      if (ON_PHONE && !IN_WECHAT) {
        try {  // no link (an individual mini program, a lost connection): the code still works
          var made = await api("/api/scenes/" + scene + "/link");
          if (made.ok && mine === generation) {
            parts.link.href = (await made.json()).url; parts.link.hidden = false;
          }
        } catch (e) { /* the saved code and the long-press remain */ }
      }
      if (mine !== generation) return;
      var since = "pending", delay = 1000, wait = 50, abort = null, woken = false;
      function wake() { if (document.visibilityState === "visible" && abort) { woken = true; abort.abort(); } }
      document.addEventListener("visibilitychange", wake);
      window.addEventListener("pageshow", wake);
      dialog.addEventListener("close", function () {
        document.removeEventListener("visibilitychange", wake); window.removeEventListener("pageshow", wake);
      });
      while (mine === generation) {
        var body;
        abort = new AbortController(); woken = false;
        try {
          var answer = await fetch(BASE + "/api/scenes/" + scene + "?wait=" + wait + "&since=" + since,
                                   { credentials: "same-origin", signal: abort.signal });
          wait = 50;
          if (answer.status >= 500) throw new Error("busy");
          if (!answer.ok) return say(t.expired, true);
          body = await answer.json();
          delay = 1000;
        } catch (e) {
          if (woken) { woken = false; wait = 0; continue; }  // back from WeChat: look at once
          say(t.offline); await sleep(delay); delay = Math.min(delay * 2, 15000); continue;
        }
        if (mine !== generation) return;
        since = body.status;
        if (since === "confirmed") {
          parts.link.hidden = parts.hint.hidden = parts.save.hidden = true;
          dialog.close();
          emit("wxlogin:login", await refresh());
          return;
        }
        if (since === "expired") return say(t.expired, true);
        if (since === "denied") return say(t[body.reason] || t.denied, true);
        say(since === "scanned" ? t.scanned : t.scan);
      }
    }

    refresh().then(function (user) { if (user) emit("wxlogin:login", user); }, showButton);
  }

  function start() { document.querySelectorAll("[data-wxlogin]").forEach(function (host) { if (!host.shadowRoot) mount(host); }); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
