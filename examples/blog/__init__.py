"""A tiny aiohttp blog whose comments need a WeChat login (see README.md beside this file)."""
