// The whole app is one page; see pages/login.
App({});
