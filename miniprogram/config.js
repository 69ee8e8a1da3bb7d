// The one place that names the login server. Its domain must be in the mini program's
// "request" and "uploadFile" domain whitelists (admin console: Development > Server domain).
module.exports = {
  baseUrl: "https://login.example.com",
  // Set when the server runs several mini programs (WXLOGIN_APPS) and this is not the primary.
  appid: null,
};
