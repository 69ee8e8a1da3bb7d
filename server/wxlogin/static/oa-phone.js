// Sandbox only: plays WeChat when a test user scans the official account's QR. The stand-in
// sends the event, signed and encrypted, to the server's real callback; the passive reply comes
// back and shows as a chat bubble, its link opening the real confirm page.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("wxlogin-data").textContent);
  var t = data.strings, base = data.base || "";
  var who = document.getElementById("oa-who");
  var pick = document.getElementById("phone-user");
  var typed = document.getElementById("phone-nickname");
  var unionid = document.getElementById("phone-unionid");
  var follows = document.getElementById("oa-follows");
  var statusLine = document.getElementById("phone-status");
  var users = [];

  fetch(base + "/sandbox/wechat/_phone/users").then(function (r) { return r.json(); }).then(function (answer) {
    users = answer.users;
    users.forEach(function (u, i) {
      var option = document.createElement("option");
      option.value = String(i);
      option.textContent = u.nickname + (u.unionid ? " (unionId)" : "");
      pick.appendChild(option);
    });
  });

  who.addEventListener("submit", async function (event) {
    event.preventDefault();
    var nickname = typed.value.trim();
    var user = nickname ? { nickname: nickname, unionid: unionid.checked } : users[Number(pick.value)];
    if (!user) { typed.focus(); return; }
    var response = await fetch(base + "/sandbox/wechat/_oa/deliver", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ nickname: user.nickname, unionid: user.unionid, scene: data.scene,
                             event: follows.checked ? "SCAN" : "subscribe" })
    });
    var answer = await response.json();
    if (!response.ok || !answer.reply) { statusLine.textContent = t.phone_failed + " " + (answer.message || response.status); return; }
    // The reply is text with one <a href>: shown as text, the link as a link of its own.
    var link = /<a href="([^"]+)">([^<]*)<\/a>/.exec(answer.reply);
    document.getElementById("oa-reply").textContent = answer.reply.replace(/<a [^>]*>[^<]*<\/a>/, "").trim();
    var anchor = document.getElementById("oa-reply-link");
    var href = link ? link[1].replace(/&amp;/g, "&") : "";
    // Only the server's own confirm page is followed: anything else in a reply stays text.
    if (href.indexOf(window.location.origin + base + "/oa/confirm/") === 0) {
      anchor.href = href; anchor.textContent = link[2]; anchor.hidden = false;
    } else { anchor.hidden = true; }
    who.hidden = true;
    document.getElementById("oa-chat").hidden = false;
  });
})();
