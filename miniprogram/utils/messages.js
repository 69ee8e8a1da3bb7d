// Every server error code as a plain sentence, and the one next step that helps:
// "rescan" (the code on the screen is spent: refresh it and scan again), "retry" (try again
// with a fresh wx.login), or "contact" (the site must fix something).
const TABLE = {
  scene_not_found: ["rescan", "这个二维码已失效，请在电脑上刷新后重新扫码。", "This code is no longer valid. Refresh it on the computer and scan again."],
  scene_expired: ["rescan", "二维码已过期，请在电脑上刷新后重新扫码。", "This code has expired. Refresh it on the computer and scan again."],
  scene_closed: ["rescan", "这次登录已经结束，请在电脑上刷新后重新扫码。", "This login is over. Refresh the code on the computer and scan again."],
  scene_already_claimed: ["rescan", "已有其他人扫描了这个二维码。如果不是你，请不要确认，并在电脑上刷新二维码。", "Someone else already scanned this code. If that was not you, refresh the code on the computer."],
  scene_already_confirmed: ["rescan", "这次登录已经确认过了。", "This login was already confirmed."],
  scene_denied: ["rescan", "这次登录已被拒绝，请在电脑上刷新后重新扫码。", "This login was declined. Refresh the code on the computer to try again."],
  scene_not_scanned: ["retry", "请先扫码，再拒绝。", "Scan the code first, then decline."],
  code_rejected: ["retry", "微信登录凭证无效，请重试。", "WeChat did not accept the login. Please try again."],
  code_already_used: ["retry", "登录凭证已被使用，请重试。", "That login was already used. Please try again."],
  code_reused: ["retry", "登录凭证已被使用，请重试。", "That login was already used. Please try again."],
  invalid_encrypted_data: ["retry", "用户信息校验失败，请重试。", "Your profile could not be verified. Please try again."],
  invalid_avatar: ["retry", "头像图片无法使用，请换一张。", "That picture cannot be used as an avatar. Please choose another."],
  body_too_large: ["retry", "图片太大，请换一张较小的。", "That picture is too large. Please choose a smaller one."],
  wechat_busy: ["retry", "微信繁忙，请稍后重试。", "WeChat is busy. Please try again in a moment."],
  wechat_unreachable: ["retry", "连接微信超时，请重试。", "WeChat did not answer in time. Please try again."],
  database_unavailable: ["retry", "服务暂时不可用，请稍后重试。", "The service is briefly unavailable. Please try again shortly."],
  login_busy: ["retry", "登录人数过多，请稍后重试。", "Too many people are logging in. Please try again in a moment."],
  rate_limited: ["retry", "操作太频繁，请稍后重试。", "Too many attempts. Please wait a moment and try again."],
  network: ["retry", "网络连接失败，请检查网络后重试。", "No connection. Check your network and try again."],
  login_failed: ["retry", "微信登录失败，请重试。", "WeChat login failed. Please try again."],
  wechat_error: ["contact", "网站的微信配置有问题，请联系网站管理员。", "The site's WeChat setup has a problem. Please contact the site."],
  bad_request: ["contact", "请求有误，请联系网站管理员。", "The request was not valid. Please contact the site."],
  forbidden_origin: ["contact", "请求被拒绝，请联系网站管理员。", "The request was refused. Please contact the site."],
  phone_required: ["retry", "这个网站需要你的手机号才能登录，请点击“手机号快捷登录”。", "This site needs your phone number to log in. Tap the phone number button."],
  phone_code_rejected: ["retry", "手机号授权已失效，请重新点击手机号按钮。", "The phone number permission expired. Tap the phone number button again."],
  approval_pending: ["contact", "你的账号正在等待网站管理员批准，批准后再扫码即可登录。", "Your account is waiting for the site owner's approval. Once they approve it, scan again to log in."],
  not_invited: ["contact", "这个网站只接受受邀用户，请向网站管理员索取邀请链接。", "This site lets people in by invitation only. Ask its owner for an invitation link."],
  user_disabled: ["contact", "你在这个网站的账号已被停用，请联系网站管理员。", "Your account on this site is disabled. Please contact the site's owner."],
  internal_error: ["contact", "网站出错了，请联系网站管理员。", "The site had an error. Please contact the site."],
};
const DEFAULT = ["contact", "出错了，请联系网站管理员。", "Something went wrong. Please contact the site."];

function describe(error, lang) {
  const row = TABLE[error && error.code] || DEFAULT;
  return { action: row[0], text: lang === "en" ? row[2] : row[1] };
}

module.exports = { describe, TABLE };
