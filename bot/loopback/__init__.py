"""Platform servers on 127.0.0.1 for the tests and the benchmarks: a small Telegram Bot API
server, and a real Synapse homeserver started from PyPI."""
