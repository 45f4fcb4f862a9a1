"""Run the app on a free local port in a background thread (browser tests, screenshots).

>>> with LiveServer(create_app({"INSTANCE_PATH": tmp})) as server:
...     page.goto(server.url + "/main")
"""

from __future__ import annotations

import threading

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # no access log in tests
        pass


class LiveServer:
    """A threaded werkzeug server for ``app`` on ``host`` and a free port."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", *, quiet: bool = True):
        handler = _QuietHandler if quiet else WSGIRequestHandler
        self.server = make_server(host, 0, app, threaded=True, request_handler=handler)
        self.url = f"http://{host}:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="melascan-live", daemon=True)

    def __enter__(self) -> "LiveServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self._thread.join(timeout=10)
        self.server.server_close()
