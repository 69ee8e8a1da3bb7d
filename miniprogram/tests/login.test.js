// The login page rendered by miniprogram-simulate: each state, the taps, the exact requests.
const path = require("path");
const simulate = require("miniprogram-simulate");

const PAGE = path.join(__dirname, "../pages/login/login");
const BASE = "https://login.example.com";
const CONTEXT = { site: "example.com", browser: "Chrome", os: "Windows", place: "Hangzhou", created_seconds_ago: 7 };

let requests, uploads, codes, answers;

function answer(path, statusCode, data) { answers[path] = { statusCode, data }; }

beforeEach(() => {
  jest.resetModules();  // loading the same component twice otherwise renders nothing
  requests = []; uploads = []; codes = 0; answers = {};
  wx.login = jest.fn(({ success }) => success({ code: "code-" + ++codes }));
  wx.request = jest.fn((options) => {
    requests.push({ url: options.url, method: options.method, data: options.data, header: options.header });
    const reply = answers[options.url.replace(BASE, "")] || { statusCode: 200, data: {} };
    if (reply.statusCode === 0) options.fail({ errMsg: "request:fail timeout" });
    else options.success(reply);
  });
  wx.uploadFile = jest.fn((options) => {
    uploads.push({ url: options.url, filePath: options.filePath, name: options.name, formData: options.formData });
    options.success({ statusCode: 200, data: JSON.stringify({ avatar_url: BASE + "/api/avatars/x.jpg" }) });
  });
  wx.getAppBaseInfo = () => ({ language: "zh_CN" });
  wx.compressImage = jest.fn(({ src, success }) => success({ tempFilePath: src }));
  wx.getEnterOptionsSync = () => ({ query: {} });
});

function render() {
  const page = simulate.render(simulate.load(PAGE));
  page.attach(document.createElement("parent-wrapper"));
  return page;
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));
async function settle() { for (let i = 0; i < 10; i++) await flush(); }
const text = (page, selector) => { const node = page.querySelector(selector); return node ? node.dom.textContent.trim() : null; };

test("the scene is decoded, scanned with a fresh code, and the context is shown", async () => {
  answer("/api/scenes/Abc123/scan", 200, { status: "scanned", context: CONTEXT });
  const page = render();
  page.instance.onLoad({ scene: encodeURIComponent("Abc123") });
  expect(text(page, "#status")).toBe("正在确认扫码……");
  await settle();
  expect(requests).toEqual([{ url: BASE + "/api/scenes/Abc123/scan", method: "POST", data: { code: "code-1" }, header: { "content-type": "application/json" } }]);
  expect(text(page, "#ctx-site")).toBe("example.com");
  expect(text(page, "#ctx-browser")).toBe("Chrome");
  expect(text(page, "#ctx-os")).toBe("Windows");
  expect(text(page, "#ctx-place")).toBe("Hangzhou");
  expect(text(page, "#ctx-when")).toBe("7 秒前");
  expect(text(page, "#confirm")).toBe("确认登录");
  expect(text(page, "#decline")).toBe("拒绝");
  const confirm = page.querySelector("#confirm").dom, decline = page.querySelector("#decline").dom;
  expect(confirm.className).toBe(decline.className);
  expect(confirm.getAttribute("type")).toBe(decline.getAttribute("type"));
});

test("Confirm sends a new code with the nickname read on submit, then says done", async () => {
  answer("/api/scenes/S1/scan", 200, { status: "scanned", context: CONTEXT });
  answer("/api/pushCode", 200, { ok: true, user: { id: "1" } });
  const page = render();
  page.instance.onLoad({ scene: "S1" });
  await settle();
  page.querySelector("#form").dispatchEvent("submit", { detail: { value: { nickname: " 小明 " } } });
  await settle();
  expect(requests.map((r) => [r.url.replace(BASE, ""), r.data])).toEqual([
    ["/api/scenes/S1/scan", { code: "code-1" }],
    ["/api/pushCode", { scene: "S1", code: "code-2", nickName: "小明" }],
  ]);
  expect(text(page, "#status")).toBe("已登录，请回到电脑上继续。");
});

test.each([
  ["approval_pending", "等待网站管理员批准"],
  ["not_invited", "只接受受邀用户"],
  ["user_disabled", "账号已被停用"],
])("a confirmation the owner's rules refuse (%s) says why, and offers no retry", async (code, words) => {
  answer("/api/scenes/S9/scan", 200, { status: "scanned", context: CONTEXT });
  answer("/api/pushCode", 403, { error: code, message: "server words" });
  const page = render();
  page.instance.onLoad({ scene: "S9" });
  await settle();
  page.querySelector("#form").dispatchEvent("submit", { detail: { value: { nickname: "" } } });
  await settle();
  expect(text(page, "#status")).toContain(words);
  for (const id of ["#retry", "#rescan"]) expect(Boolean(page.querySelector(id))).toBe(false);
});

test("a chosen avatar is uploaded with its own fresh code before pushCode", async () => {
  answer("/api/scenes/S2/scan", 200, { status: "scanned", context: CONTEXT });
  const page = render();
  page.instance.onLoad({ scene: "S2" });
  await settle();
  page.querySelector("#avatar").dispatchEvent("chooseavatar", { detail: { avatarUrl: "wxfile://tmp_1.jpg" } });
  await settle();
  page.querySelector("#form").dispatchEvent("submit", { detail: { value: { nickname: "" } } });
  await settle();
  expect(uploads).toEqual([{ url: BASE + "/api/avatar", filePath: "wxfile://tmp_1.jpg", name: "avatar", formData: { scene: "S2", code: "code-2" } }]);
  expect(requests[1].data).toEqual({ scene: "S2", code: "code-3" });
  expect(JSON.stringify(requests)).not.toContain("wxfile://");
});

test("Decline sends /deny with a fresh code", async () => {
  answer("/api/scenes/S3/scan", 200, { status: "scanned", context: CONTEXT });
  answer("/api/scenes/S3/deny", 200, { status: "denied" });
  const page = render();
  page.instance.onLoad({ scene: "S3" });
  await settle();
  page.querySelector("#decline").dispatchEvent("tap");
  await settle();
  expect(requests[1]).toMatchObject({ url: BASE + "/api/scenes/S3/deny", data: { code: "code-2" } });
  expect(text(page, "#status")).toBe("已拒绝本次登录。");
});

test.each([
  [404, "scene_not_found", "#rescan", "这个二维码已失效"],
  [410, "scene_expired", "#rescan", "二维码已过期"],
  [409, "scene_already_claimed", "#rescan", "已有其他人扫描了这个二维码"],
  [400, "code_rejected", "#retry", "微信登录凭证无效"],
  [503, "wechat_busy", "#retry", "微信繁忙"],
  [502, "wechat_error", null, "联系网站管理员"],
  [0, "network", "#retry", "网络连接失败"],
])("HTTP %i %s shows a plain message and the right next step", async (status, code, button, words) => {
  answer("/api/scenes/S4/scan", status, { error: code, message: "server words" });
  const page = render();
  page.instance.onLoad({ scene: "S4" });
  await settle();
  expect(text(page, "#status")).toContain(words);
  for (const id of ["#retry", "#rescan"]) expect(Boolean(page.querySelector(id))).toBe(id === button);
});

test("retry repeats the failed step with a new code", async () => {
  answer("/api/scenes/S5/scan", 503, { error: "wechat_busy" });
  const page = render();
  page.instance.onLoad({ scene: "S5" });
  await settle();
  answer("/api/scenes/S5/scan", 200, { status: "scanned", context: CONTEXT });
  page.querySelector("#retry").dispatchEvent("tap");
  await settle();
  expect(requests.map((r) => r.data.code)).toEqual(["code-1", "code-2"]);
  expect(text(page, "#ctx-site")).toBe("example.com");
});

test("English when the phone speaks English", async () => {
  wx.getAppBaseInfo = () => ({ language: "en" });
  answer("/api/scenes/S6/scan", 410, { error: "scene_expired" });
  const page = render();
  page.instance.onLoad({ scene: "S6" });
  await settle();
  expect(text(page, "#status")).toBe("This code has expired. Refresh it on the computer and scan again.");
  expect(text(page, "#rescan")).toBe("Scan again");
});

test("a warm start with a new scene is a new login; the same scene is left alone", async () => {
  answer("/api/scenes/OLD/scan", 200, { status: "scanned", context: CONTEXT });
  answer("/api/scenes/NEW/scan", 200, { status: "scanned", context: Object.assign({}, CONTEXT, { site: "new.example" }) });
  const page = render();
  page.instance.onLoad({ scene: "OLD" });
  await settle();
  wx.getEnterOptionsSync = () => ({ query: { scene: "OLD" } });
  page.instance.onShow();
  await settle();
  expect(requests).toHaveLength(1);
  wx.getEnterOptionsSync = () => ({ query: { scene: encodeURIComponent("NEW") } });
  page.instance.onShow();
  await settle();
  expect(requests.map((r) => r.url.replace(BASE, ""))).toEqual(["/api/scenes/OLD/scan", "/api/scenes/NEW/scan"]);
  expect(text(page, "#ctx-site")).toBe("new.example");
});

test("no scene: say what to do, ask nothing", async () => {
  const page = render();
  page.instance.onLoad({});
  await settle();
  expect(text(page, "#status")).toBe("请用微信扫描网站上的登录二维码。");
  expect(requests).toHaveLength(0);
  expect(wx.login).not.toHaveBeenCalled();
});

test("every server error code has a message in both languages", () => {
  const { TABLE } = require("../utils/messages");
  for (const [code, [action, zh, en]] of Object.entries(TABLE)) {
    expect(["rescan", "retry", "contact"]).toContain(action);
    expect(zh.length && en.length).toBeTruthy();
    expect(code).toMatch(/^[a-z_]+$/);
  }
});

test("a picture the server will not take sends the person back to the form, without it", async () => {
  answer("/api/scenes/S7/scan", 200, { status: "scanned", context: CONTEXT });
  answer("/api/pushCode", 200, { ok: true, user: { id: "1" } });
  wx.compressImage = jest.fn(({ src, success }) => success({ tempFilePath: src + ".small" }));
  wx.uploadFile = jest.fn((options) => {
    uploads.push(options.filePath);
    options.success({ statusCode: 413, data: JSON.stringify({ error: "body_too_large" }) });
  });
  const page = render();
  page.instance.onLoad({ scene: "S7" });
  await settle();
  page.querySelector("#avatar").dispatchEvent("chooseavatar", { detail: { avatarUrl: "wxfile://big.jpg" } });
  page.querySelector("#form").dispatchEvent("submit", { detail: { value: { nickname: "Lu" } } });
  await settle();
  expect(uploads).toEqual(["wxfile://big.jpg.small"]);  // shrunk first
  expect(text(page, "#form-message")).toContain("图片太大");
  expect(page.querySelector("#confirm")).toBeTruthy();
  page.querySelector("#form").dispatchEvent("submit", { detail: { value: { nickname: "Lu" } } });
  await settle();
  expect(uploads).toHaveLength(1);  // not again: the picture was dropped
  expect(requests.at(-1)).toMatchObject({ url: BASE + "/api/pushCode", data: { scene: "S7", nickName: "Lu" } });
  expect(text(page, "#status")).toBe("已登录，请回到电脑上继续。");
});

test("a retried confirmation keeps the nickname typed before", async () => {
  answer("/api/scenes/S8/scan", 200, { status: "scanned", context: CONTEXT });
  answer("/api/pushCode", 503, { error: "wechat_busy" });
  const page = render();
  page.instance.onLoad({ scene: "S8" });
  await settle();
  page.querySelector("#form").dispatchEvent("submit", { detail: { value: { nickname: "Mo" } } });
  await settle();
  answer("/api/pushCode", 200, { ok: true, user: { id: "1" } });
  page.querySelector("#retry").dispatchEvent("tap");
  await settle();
  expect(requests.slice(1).map((r) => r.data)).toEqual([
    { scene: "S8", code: "code-2", nickName: "Mo" }, { scene: "S8", code: "code-3", nickName: "Mo" },
  ]);
});

test("after an in-app rescan, showing the page again keeps the new scene", async () => {
  answer("/api/scenes/A1/scan", 200, { status: "scanned", context: CONTEXT });
  answer("/api/scenes/B2/scan", 200, { status: "scanned", context: Object.assign({}, CONTEXT, { site: "b.example" }) });
  wx.getEnterOptionsSync = () => ({ query: { scene: "A1" } });
  wx.scanCode = jest.fn(({ success }) => success({ path: "pages/login/login?scene=B2" }));
  const page = render();
  page.instance.onLoad({ scene: "A1" });
  await settle();
  page.instance.rescan();
  page.instance.onShow();  // WeChat shows the page again after the camera
  await settle();
  expect(requests.map((r) => r.url.replace(BASE, ""))).toEqual(["/api/scenes/A1/scan", "/api/scenes/B2/scan"]);
  expect(text(page, "#ctx-site")).toBe("b.example");
});


describe("phones", () => {
  test("both phone buttons are WeChat's getPhoneNumber buttons", () => {
    const wxml = require("fs").readFileSync(PAGE + ".wxml", "utf8");
    for (const id of ["confirm-phone", "share-phone"]) {
      const tag = new RegExp('<button[^>]*id="' + id + '"[^>]*>').exec(wxml)[0];
      expect(tag).toContain('open-type="getPhoneNumber"');
      expect(tag).toContain('bindgetphonenumber="onPhone"');
    }
  });

  test("a link from a phone's browser: the scene as `s`, how the person came told, and back to the browser", async () => {
    wx.getEnterOptionsSync = () => ({ scene: 1194, query: { s: "L1" } });
    answer("/api/scenes/L1/scan", 200, { status: "scanned", context: CONTEXT });
    answer("/api/pushCode", 200, { ok: true, user: { id: "1" } });
    const page = render();
    page.instance.onLoad({ s: "L1" });
    await settle();
    expect(requests[0].data).toEqual({ code: "code-1", entry: 1194 });
    page.querySelector("#form").dispatchEvent("submit", { detail: { value: { nickname: "" } } });
    await settle();
    expect(text(page, "#status")).toBe("已登录，请回到你的浏览器继续。");
  });

  test("required: Log in is the phone button, and its code rides on pushCode", async () => {
    answer("/api/scenes/P1/scan", 200, { status: "scanned", context: Object.assign({ phone: "required" }, CONTEXT) });
    answer("/api/pushCode", 200, { ok: true, user: { id: "1" } });
    const page = render();
    page.instance.onLoad({ scene: "P1" });
    await settle();
    expect(page.querySelector("#confirm")).toBeFalsy();
    expect(text(page, "#confirm-phone")).toBe("手机号快捷登录");
    page.querySelector("#confirm-phone").dispatchEvent("getphonenumber", { detail: { code: "phone-code-1" } });
    await settle();
    expect(requests[1].data).toEqual({ scene: "P1", code: "code-2", phoneCode: "phone-code-1" });
    expect(text(page, "#status")).toBe("已登录，请回到电脑上继续。");
  });

  test("required and the person says no: told why, nothing sent", async () => {
    answer("/api/scenes/P2/scan", 200, { status: "scanned", context: Object.assign({ phone: "required" }, CONTEXT) });
    const page = render();
    page.instance.onLoad({ scene: "P2" });
    await settle();
    page.querySelector("#confirm-phone").dispatchEvent("getphonenumber", { detail: { errMsg: "getPhoneNumber:fail user deny" } });
    await settle();
    expect(text(page, "#form-message")).toBe("这个网站需要你的手机号才能登录。");
    expect(requests).toHaveLength(1);
  });

  test("optional: Log in without, or the second button with the number", async () => {
    answer("/api/scenes/P3/scan", 200, { status: "scanned", context: Object.assign({ phone: "optional" }, CONTEXT) });
    answer("/api/pushCode", 200, { ok: true, user: { id: "1" } });
    const page = render();
    page.instance.onLoad({ scene: "P3" });
    await settle();
    expect(text(page, "#confirm")).toBe("确认登录");
    expect(text(page, "#share-phone")).toBe("登录并提供手机号");
    page.querySelector("#share-phone").dispatchEvent("getphonenumber", { detail: { code: "phone-code-2" } });
    await settle();
    expect(requests[1].data).toEqual({ scene: "P3", code: "code-2", phoneCode: "phone-code-2" });
  });

  test.each([
    [1400001, "quota", "网站本月的手机号验证次数已用完。"],
    [102, "no permission", null],
    [104, "no privacy guide", null],
  ])("optional and errno %i (%s): in without a number, the errno told to the server", async (errno, _, note) => {
    answer("/api/scenes/P4/scan", 200, { status: "scanned", context: Object.assign({ phone: "optional" }, CONTEXT) });
    answer("/api/pushCode", 200, { ok: true, user: { id: "1" } });
    const page = render();
    page.instance.onLoad({ scene: "P4" });
    await settle();
    page.querySelector("#share-phone").dispatchEvent("getphonenumber", { detail: { errno: errno, errMsg: "getPhoneNumber:fail" } });
    await settle();
    expect(requests[1].data).toEqual({ scene: "P4", code: "code-2", phoneError: errno });
    expect(text(page, "#status")).toBe("已登录，请回到电脑上继续。");
    expect(text(page, "#done-note")).toBe(note);  // a used-up quota is said
  });

  test("required and the quota is used up: says so, and reports it", async () => {
    answer("/api/scenes/P5/scan", 200, { status: "scanned", context: Object.assign({ phone: "required" }, CONTEXT) });
    answer("/api/pushCode", 400, { error: "phone_required" });
    const page = render();
    page.instance.onLoad({ scene: "P5" });
    await settle();
    page.querySelector("#confirm-phone").dispatchEvent("getphonenumber", { detail: { errno: 1400001 } });
    await settle();
    expect(text(page, "#form-message")).toBe("网站本月的手机号验证次数已用完。");
    expect(requests[1].data).toEqual({ scene: "P5", code: "code-2", phoneError: 1400001 });
  });
});


test("a failed push with a phone code goes back to the buttons: the code is never sent twice", async () => {
  answer("/api/scenes/P6/scan", 200, { status: "scanned", context: Object.assign({ phone: "required" }, CONTEXT) });
  answer("/api/pushCode", 400, { error: "phone_code_rejected" });
  const page = render();
  page.instance.onLoad({ scene: "P6" });
  await settle();
  page.querySelector("#confirm-phone").dispatchEvent("getphonenumber", { detail: { code: "pc-1" } });
  await settle();
  expect(page.querySelector("#retry")).toBeFalsy();
  expect(text(page, "#form-message")).toContain("手机号授权已失效");
  answer("/api/pushCode", 200, { ok: true, user: { id: "1" } });
  page.querySelector("#confirm-phone").dispatchEvent("getphonenumber", { detail: { code: "pc-2" } });
  await settle();
  expect(requests.filter((r) => r.url.endsWith("/api/pushCode")).map((r) => r.data.phoneCode)).toEqual(["pc-1", "pc-2"]);
  expect(text(page, "#status")).toBe("已登录，请回到电脑上继续。");
});

test("an in-app rescan after a link is not counted as the link", async () => {
  wx.getEnterOptionsSync = () => ({ scene: 1194, query: { s: "L2" } });
  answer("/api/scenes/L2/scan", 200, { status: "scanned", context: CONTEXT });
  answer("/api/scenes/R2/scan", 200, { status: "scanned", context: CONTEXT });
  wx.scanCode = jest.fn(({ success }) => success({ path: "pages/login/login?scene=R2" }));
  const page = render();
  page.instance.onLoad({ s: "L2" });
  await settle();
  page.instance.rescan();
  await settle();
  expect(requests.map((r) => r.data)).toEqual([{ code: "code-1", entry: 1194 }, { code: "code-2" }]);
});
