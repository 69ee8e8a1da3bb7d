// The login page, written with Component() so it can be tested: read the scene (on every entry,
// cold or warm: an old cached scene is never confirmed), tell the server who scanned (/scan),
// show who asks, then Confirm (a fresh wx.login, optional avatar and nickname, /pushCode) or
// Decline (a fresh wx.login, /deny). Every step takes its own fresh code.
const api = require("../../utils/api");
const messages = require("../../utils/messages");

const WORDS = {
  zh: {
    loading: "正在确认扫码……", noscene: "请用微信扫描网站上的登录二维码。", request: "以下网站请求使用你的微信登录：",
    site: "网站", browser: "浏览器", os: "系统", place: "位置", when: "发起于", secondsAgo: "{n} 秒前",
    profile: "可选：设置头像和昵称", avatar: "选择头像", nickname: "昵称", confirm: "确认登录",
    decline: "拒绝", done: "已登录，请回到电脑上继续。", declined: "已拒绝本次登录。", retry: "重试",
    rescan: "重新扫码", warning: "如果不是你本人在电脑上发起的登录，请点击拒绝。",
    confirmPhone: "手机号快捷登录", sharePhone: "登录并提供手机号",
    doneReturn: "已登录，请回到你的浏览器继续。",
    phoneNeeded: "这个网站需要你的手机号才能登录。", phoneOptional: "未提供手机号，仍可直接登录。",
    phoneQuota: "网站本月的手机号验证次数已用完。", phoneBroken: "网站暂时无法获取手机号，请联系网站管理员。",
  },
  en: {
    loading: "Checking the code…", noscene: "Scan the login code shown on the website with WeChat.",
    request: "This website asks to log you in with WeChat:", site: "Site", browser: "Browser",
    os: "System", place: "Place", when: "Asked", secondsAgo: "{n} seconds ago",
    profile: "Optional: set an avatar and a nickname", avatar: "Choose avatar", nickname: "Nickname",
    confirm: "Log in", decline: "Decline", done: "Logged in. Carry on on your computer.",
    declined: "You declined this login.", retry: "Try again", rescan: "Scan again",
    warning: "If you did not start this login on a computer yourself, decline it.",
    confirmPhone: "Log in with my phone number", sharePhone: "Log in and share my phone number",
    doneReturn: "Logged in. Go back to your browser to continue.",
    phoneNeeded: "This site needs your phone number to log in.",
    phoneOptional: "No phone number shared: you can still log in.",
    phoneQuota: "The site's phone number checks are used up for now.",
    phoneBroken: "The site cannot ask for phone numbers right now; please tell the site.",
  },
};

function language() {
  const info = wx.getAppBaseInfo ? wx.getAppBaseInfo() : wx.getSystemInfoSync();
  return String((info && info.language) || "zh").toLowerCase().indexOf("en") === 0 ? "en" : "zh";
}

// Entry scene values of a link opened from a phone's own browser (WECHAT.md 10): the login
// then ends in that browser, not on a computer.
const FROM_LINK = [1065, 1167, 1194, 1286];
// getPhoneNumber's errno: the quota is used up; no permission or no privacy guide (the site's
// to fix, reported to its server log).
const QUOTA = 1400001;
const SITE_PROBLEMS = [102, 104];

function entryScene() {
  const entered = wx.getEnterOptionsSync ? wx.getEnterOptionsSync() : null;
  return entered && typeof entered.scene === "number" ? entered.scene : undefined;
}

// A code carries the scene as `scene`; a link from a phone's browser as `s`.
function sceneFrom(options) {
  return sceneOf(options && (options.scene || options.s));
}

function sceneOf(value) {
  if (!value) return "";
  try { return decodeURIComponent(value); } catch (e) { return ""; }
}

// Uploads are limited to 64 KiB: let WeChat shrink the picture first (it can only recompress
// JPEG on iOS; a picture still too large comes back as body_too_large and is dropped).
function shrink(filePath) {
  return new Promise((resolve) => {
    if (!wx.compressImage) { resolve(filePath); return; }
    wx.compressImage({
      src: filePath, quality: 60, compressedWidth: 256,
      success: (res) => resolve(res.tempFilePath || filePath),
      fail: () => resolve(filePath),
    });
  });
}

Component({
  data: {
    state: "loading", scene: "", context: null, when: "", message: "", action: "",
    avatarPath: "", lang: "zh", t: WORDS.zh, phone: "off", fromLink: false,
  },
  methods: {
    onLoad(options) {
      const lang = language();
      this.setData({ lang: lang, t: WORDS[lang] });
      this.enteredScene = sceneFrom(options);
      this.enter(this.enteredScene, entryScene());
    },
    onShow() {
      // A mini program still running may be shown again by a new scan without a new onLoad.
      // Only a scene WeChat entered with that we have not seen counts: after an in-app
      // rescan the enter options still name the old one.
      const entered = wx.getEnterOptionsSync ? wx.getEnterOptionsSync() : null;
      const scene = sceneFrom(entered && entered.query);
      if (scene && scene !== this.enteredScene) {
        this.enteredScene = scene;
        this.enter(scene, entryScene());
      }
    },
    async enter(scene, entry) {
      this.lastStep = "scan";
      this.entry = entry;  // how WeChat opened us for this scene; none for an in-app rescan
      this.note = "";
      this.setData({ scene: scene, context: null, avatarPath: "", message: "",
                     state: scene ? "loading" : "noscene" });
      if (!scene) return;
      try {
        const answer = await api.scan(scene, await api.code(), this.entry);
        if (scene !== this.data.scene) return;  // a newer scan took over meanwhile
        const context = answer.context || {};
        this.setData({
          state: "confirm", context: context, phone: context.phone || "off",
          when: this.data.t.secondsAgo.replace("{n}", context.created_seconds_ago || 0),
        });
      } catch (error) { if (scene === this.data.scene) this.fail(error); }
    },
    onNickname(event) {
      this.nickname = ((event && event.detail && event.detail.value) || "").trim();
    },
    // WeChat's phone button: a one-time code for the number, or an errno, or the person's no.
    onPhone(event) {
      if (this.data.state === "working") return;
      const detail = (event && event.detail) || {};
      const required = this.data.phone === "required";
      if (detail.code) { this.confirm(null, { phoneCode: detail.code }); return; }
      if (detail.errno === QUOTA || SITE_PROBLEMS.indexOf(detail.errno) >= 0) {
        const report = { phoneError: detail.errno };
        if (required) {  // the server logs it for the owner and answers phone_required
          this.setData({ message: detail.errno === QUOTA ? this.data.t.phoneQuota : this.data.t.phoneBroken });
          api.code().then((c) => api.pushCode(this.data.scene, c, report)).catch(() => {});
          return;
        }
        // optional: in without a number (and a used-up quota is said on the done screen)
        this.note = detail.errno === QUOTA ? this.data.t.phoneQuota : "";
        this.confirm(null, report);
        return;
      }
      // The person said no.
      this.setData({ message: required ? this.data.t.phoneNeeded : this.data.t.phoneOptional });
    },
    onChooseAvatar(event) {
      // A temporary local file: it is uploaded, never its wxfile:// path stored.
      this.setData({ avatarPath: event.detail.avatarUrl });
    },
    async confirm(event, phone) {
      if (this.data.state === "working") return;
      if (!phone && this.data.phone === "required") {  // Log in is the phone button
        this.setData({ message: this.data.t.phoneNeeded });
        return;
      }
      this.phone = phone || (event ? null : this.phone);  // a retry keeps its phone fields
      this.lastStep = "confirm";
      // The nickname input is content-checked and may be cleared on blur: read it on submit
      // (and keep it for a retry, which has no form event).
      if (event && event.detail && event.detail.value) {
        this.nickname = (event.detail.value.nickname || "").trim();
      }
      const nickname = this.nickname || "";
      this.setData({ state: "working", message: "" });
      const scene = this.data.scene;
      if (this.data.avatarPath) {
        try {
          await api.uploadAvatar(scene, await api.code(), await shrink(this.data.avatarPath));
        } catch (error) {
          if (error.code === "body_too_large" || error.code === "invalid_avatar") {
            // The picture is the problem, not the login: back to the form without it.
            const described = messages.describe(error, this.data.lang);
            this.setData({ state: "confirm", avatarPath: "", message: described.text });
            return;
          }
          this.fail(error);
          return;
        }
      }
      try {
        const extra = Object.assign(nickname ? { nickName: nickname } : {}, this.phone || {});
        await api.pushCode(scene, await api.code(), extra);
        this.setData({ state: "done", fromLink: FROM_LINK.indexOf(this.entry) >= 0,
                       message: this.note || "" });
      } catch (error) {
        // A phone code is single-use (and WeChat may have spent it): never sent twice. Back to
        // the buttons, where a tap on the phone button makes a fresh one.
        if (this.phone && this.phone.phoneCode && messages.describe(error, this.data.lang).action === "retry") {
          this.phone = null;
          this.setData({ state: "confirm", message: messages.describe(error, this.data.lang).text });
          return;
        }
        this.fail(error);
      }
    },
    async decline() {
      if (this.data.state === "working") return;
      this.lastStep = "decline";
      this.setData({ state: "working" });
      try {
        await api.deny(this.data.scene, await api.code());
        this.setData({ state: "declined" });
      } catch (error) { this.fail(error); }
    },
    fail(error) {
      const described = messages.describe(error, this.data.lang);
      this.setData({ state: "error", message: described.text, action: described.action });
    },
    retry() {
      if (this.lastStep === "confirm") this.confirm(null, this.phone);
      else if (this.lastStep === "decline") this.decline();
      else this.enter(this.data.scene, this.entry);
    },
    rescan() {
      wx.scanCode({
        onlyFromCamera: true,
        success: (res) => {
          const match = /[?&]scene=([^&]*)/.exec(res.path || "");
          this.enter(sceneOf(match && match[1]));
        },
      });
    },
  },
});
