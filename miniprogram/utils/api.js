// The login server's phone-side API. wx.request calls `success` for every HTTP status, so
// the status code decides; every failure becomes an ApiError carrying the server's `error`.
const config = require("../config");

class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.status = status;
    this.code = code;
  }
}

function withAppid(data) {
  return config.appid ? Object.assign({ appid: config.appid }, data) : data;
}

function settle(res, resolve, reject) {
  let body = res.data;
  if (typeof body === "string") {  // wx.uploadFile hands back text
    try { body = JSON.parse(body); } catch (e) { body = {}; }
  }
  if (res.statusCode >= 200 && res.statusCode < 300) resolve(body);
  else reject(new ApiError(res.statusCode, (body && body.error) || "http_" + res.statusCode,
                           body && body.message));
}

function post(path, data) {
  return new Promise((resolve, reject) => {
    wx.request({
      url: config.baseUrl + path,
      method: "POST",
      data: withAppid(data),
      header: { "content-type": "application/json" },
      timeout: 20000,
      success: (res) => settle(res, resolve, reject),
      fail: (err) => reject(new ApiError(0, "network", err && err.errMsg)),
    });
  });
}

function code() {
  return new Promise((resolve, reject) => {
    wx.login({
      success: (res) => (res.code ? resolve(res.code) : reject(new ApiError(0, "login_failed"))),
      fail: (err) => reject(new ApiError(0, "login_failed", err && err.errMsg)),
    });
  });
}

const scenePath = (scene) => "/api/scenes/" + encodeURIComponent(scene);

module.exports = {
  ApiError,
  code,
  // `entry`: how the person came in (WeChat's scene value), for the site's statistics.
  scan: (scene, loginCode, entry) => post(scenePath(scene) + "/scan",
    typeof entry === "number" ? { code: loginCode, entry: entry } : { code: loginCode }),
  deny: (scene, loginCode) => post(scenePath(scene) + "/deny", { code: loginCode }),
  pushCode: (scene, loginCode, profile) =>
    post("/api/pushCode", Object.assign({ scene: scene, code: loginCode }, profile || {})),
  uploadAvatar: (scene, loginCode, filePath) => new Promise((resolve, reject) => {
    wx.uploadFile({
      url: config.baseUrl + "/api/avatar",
      filePath: filePath,
      name: "avatar",
      formData: withAppid({ scene: scene, code: loginCode }),
      success: (res) => settle(res, resolve, reject),
      fail: (err) => reject(new ApiError(0, "network", err && err.errMsg)),
    });
  }),
};
