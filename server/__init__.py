"""wxacode-login: scan-with-WeChat login for any website."""

__version__ = "0.1.0"
