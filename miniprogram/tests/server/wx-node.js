// wx.request, wx.uploadFile and wx.login for Node, over real HTTP to a login server in sandbox
// mode: wx.login is answered by the sandbox's stand-in for WeChat, as the test user named in
// global.wxUser. Used by api.server.js and by phone.js.
const fs = require("fs");
const path = require("path");

// An 8×8 PNG, the kind of file chooseAvatar hands over.
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEklEQVR4nGP8z4AdMOEQH6QSAM1BAQ/oQeJvAAAAAElFTkSuQmCC", "base64");

function phone(server) {
  require("../../config").baseUrl = server;
  global.wx = {
    login({ success, fail }) {
      fetch(server + "/sandbox/wechat/_phone/login", {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ nickname: global.wxUser || "Phone", unionid: true }),
      }).then((r) => r.json()).then((body) => success({ code: body.code }), fail);
    },
    request({ url, method, data, header, success, fail }) {
      fetch(url, { method, headers: header, body: JSON.stringify(data) })
        .then(async (r) => success({ statusCode: r.status, data: await r.json() }), (e) => fail({ errMsg: String(e) }));
    },
    uploadFile({ url, filePath, name, formData, success, fail }) {
      const form = new FormData();
      for (const [key, value] of Object.entries(formData)) form.append(key, value);
      form.append(name, new Blob([fs.readFileSync(filePath)]), path.basename(filePath));
      fetch(url, { method: "POST", body: form })
        .then(async (r) => success({ statusCode: r.status, data: await r.text() }), (e) => fail({ errMsg: String(e) }));
    },
  };
}

module.exports = { PNG, phone };
