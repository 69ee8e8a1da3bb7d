/**
 * @jest-environment node
 */
// utils/api.js against a running login server in sandbox mode (tests/test_miniprogram.py starts
// one and passes its address): wx.request, wx.uploadFile and wx.login are played over real HTTP,
// wx.login by the sandbox's stand-in for WeChat.
const fs = require("fs");
const os = require("os");
const path = require("path");

const SERVER = process.env.WXLOGIN_TEST_SERVER;
if (!SERVER) throw new Error("run through ./scripts/test (tests/test_miniprogram.py starts a server)");

const api = require("../../utils/api");

const { PNG, phone } = require("./wx-node");
phone(SERVER);
const setUser = (name) => { global.wxUser = name; };

async function browserScene() {
  const response = await fetch(SERVER + "/api/scenes", { method: "POST" });
  const cookie = response.headers.get("set-cookie").split(";")[0];
  return { scene: (await response.json()).scene, cookie };
}

async function poll(browser) {
  const response = await fetch(SERVER + "/api/scenes/" + browser.scene + "?wait=0", { headers: { cookie: browser.cookie } });
  return response.json();
}

test("scan, avatar, confirm: the browser is confirmed as the person who scanned", async () => {
  setUser("Jest 用户");
  const browser = await browserScene();
  const scanned = await api.scan(browser.scene, await api.code());
  expect(scanned.status).toBe("scanned");
  expect(scanned.context.site).toBe("127.0.0.1");
  expect((await poll(browser)).status).toBe("scanned");

  const folder = fs.mkdtempSync(path.join(os.tmpdir(), "avatar-"));
  const file = path.join(folder, "tmp_avatar.png");
  fs.writeFileSync(file, PNG);
  let uploaded;
  try {
    uploaded = await api.uploadAvatar(browser.scene, await api.code(), file);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
  expect(uploaded.avatar_url).toMatch(/\/api\/avatars\/[\w-]+\.jpg$/);

  const pushed = await api.pushCode(browser.scene, await api.code(), { nickName: "Jest 用户" });
  expect(pushed.user.nickname).toBe("Jest 用户");
  expect(pushed.user.avatar_url).toBe(uploaded.avatar_url);
  const answer = await poll(browser);
  expect(answer.status).toBe("confirmed");
  expect(answer.user.nickname).toBe("Jest 用户");
});

test("decline, and the server's errors arrive as ApiErrors with its codes", async () => {
  setUser("Declining");
  const browser = await browserScene();
  await api.scan(browser.scene, await api.code());
  await expect(api.pushCode(browser.scene, "not-a-code-from-wechat")).rejects.toMatchObject({ status: 400, code: "code_rejected" });
  expect((await api.deny(browser.scene, await api.code())).status).toBe("denied");
  expect((await poll(browser)).status).toBe("denied");
  await expect(api.scan(browser.scene, await api.code())).rejects.toMatchObject({ status: 409, code: "scene_denied" });
  await expect(api.scan("A".repeat(24), await api.code())).rejects.toMatchObject({ status: 404, code: "scene_not_found" });
});
