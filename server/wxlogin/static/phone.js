// Sandbox only: plays the companion mini program's login page for one scene, with the real
// mini program's steps: wx.login -> /scan -> show who asks -> Confirm (a fresh wx.login,
// encrypted profile, /pushCode) or Decline (a fresh wx.login, /deny). "wx.login" and
// "wx.getUserInfo" are answered by the sandbox's WeChat stand-in.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("wxlogin-data").textContent);
  var t = data.strings, scene = data.scene, base = data.base || "", entry = data.entry;
  var share = document.getElementById("phone-share");
  var phoneMode = "off";
  // Came by a link from the phone's own browser (URL Link, scheme): the login ends there.
  var fromLink = entry === 1194 || entry === 1065 || entry === 1286;
  var who = document.getElementById("phone-who");
  var pick = document.getElementById("phone-user");
  var typed = document.getElementById("phone-nickname");
  var unionid = document.getElementById("phone-unionid");
  var context = document.getElementById("phone-context");
  var statusLine = document.getElementById("phone-status");
  var user = null;

  async function post(url, body) {
    var response = await fetch(url, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    });
    var answer = await response.json();
    if (!response.ok) throw new Error(answer.message || answer.error || ("HTTP " + response.status));
    return answer;
  }
  function wxLogin() { return post(base + "/sandbox/wechat/_phone/login", user).then(function (a) { return a.code; }); }
  function fail(error) { statusLine.textContent = t.phone_failed + " " + error.message; }
  var buttons = [document.getElementById("phone-continue"), document.getElementById("phone-confirm"),
                 document.getElementById("phone-decline"), share];
  async function once(work) {  // one step at a time: a double tap must not send two
    if (buttons[0].disabled) return;
    buttons.forEach(function (b) { b.disabled = true; });
    try { return await work(); }
    catch (error) { fail(error); return false; }
    finally { buttons.forEach(function (b) { b.disabled = false; }); }
  }

  pick.users = [];
  fetch(base + "/sandbox/wechat/_phone/users").then(function (r) { return r.json(); }).then(function (answer) {
    answer.users.forEach(function (u, i) {
      var option = document.createElement("option");
      option.value = String(i);
      option.textContent = u.nickname + (u.unionid ? " (unionId)" : "");
      pick.appendChild(option);
    });
    pick.users = answer.users;
  }).catch(fail);

  who.addEventListener("submit", function (event) {
    event.preventDefault();
    var nickname = typed.value.trim();
    user = nickname ? { nickname: nickname, unionid: unionid.checked } : pick.users[Number(pick.value)];
    if (!user) { typed.focus(); return; }
    once(async function () {
      var answer = await post(base + "/api/scenes/" + encodeURIComponent(scene) + "/scan",
                              { code: await wxLogin(), entry: entry });
      var c = answer.context;
      phoneMode = c.phone || "off";
      // required: Log in is the phone button; optional: a second button beside it.
      share.hidden = phoneMode !== "optional";
      if (phoneMode === "required") document.getElementById("phone-confirm").textContent = t.phone_confirm_phone;
      document.getElementById("ctx-site").textContent = c.site;
      document.getElementById("ctx-browser").textContent = c.browser;
      document.getElementById("ctx-os").textContent = c.os;
      document.getElementById("ctx-when").textContent = t.phone_seconds_ago.replace("{n}", c.created_seconds_ago);
      who.hidden = true;
      context.hidden = false;
      statusLine.textContent = "";
      document.getElementById("phone-confirm").focus();
    });
  });

  function confirm(withPhone) {
    once(async function () {
      var code = await wxLogin();  // a fresh code for this step, then the profile after it
      var info = await post(base + "/sandbox/wechat/_phone/userinfo", { code: code });
      var body = { code: code, scene: scene, iv: info.iv, encryptedData: info.encryptedData };
      if (withPhone) body.phoneCode = (await post(base + "/sandbox/wechat/_phone/phonecode", { code: code })).code;
      await post(base + "/api/pushCode", body);
      context.hidden = true;
      statusLine.textContent = fromLink ? t.phone_done_return : t.phone_done;
    });
  }
  document.getElementById("phone-confirm").addEventListener("click", function () { confirm(phoneMode === "required"); });
  share.addEventListener("click", function () { confirm(true); });

  document.getElementById("phone-decline").addEventListener("click", function () {
    once(async function () {
      await post(base + "/api/scenes/" + encodeURIComponent(scene) + "/deny", { code: await wxLogin() });
      context.hidden = true;
      statusLine.textContent = t.phone_declined;
    });
  });
})();
