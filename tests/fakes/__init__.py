"""Fake shop APIs on 127.0.0.1 for the API source tests."""
