"""``melascan serve``: the web app under gunicorn (production) or Flask's dev server."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def add_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker (default 2)")
    parser.add_argument("--timeout", type=int, default=120, help="seconds before a stuck worker is restarted")
    parser.add_argument("--instance", help="instance folder (database, secret key); default: Flask's")
    parser.add_argument("--model", help="model folder to serve (e.g. one `melascan calibrate` wrote); "
                                        "default: the embedded model or MELASCAN_MODEL_PATH")
    parser.add_argument("--dev", action="store_true", help="Flask's development server with reload and debugger")


def _config(args: argparse.Namespace) -> dict:
    config: dict = {"PRELOAD_MODEL": True}
    if args.instance:
        config["INSTANCE_PATH"] = args.instance
    if args.model:
        config["MODEL_PATH"] = args.model
    return config


def _open_model(model_path: str | None) -> None:
    """Open the model as a worker will (card, checksums, ONNX graph); ``ModelError`` if not."""
    from melascan.web.model import get_classifier

    get_classifier(model_path)


def check_model_opens(model_path: str | None) -> None:
    """Open the model once in a short-lived forked child, so that a model the workers
    cannot load (e.g. an ONNX file onnxruntime rejects, with a matching checksum) stops
    the server here with its message, while the master keeps no onnxruntime session."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        pool.submit(_open_model, model_path).result()  # re-raises the child's ModelError


def run_serve(args: argparse.Namespace) -> int:
    from melascan.web.app import create_app

    if args.dev:
        app = create_app(_config(args))
        # The interactive debugger runs code for whoever can reach it: loopback only.
        debug = args.host in ("127.0.0.1", "localhost", "::1")
        if not debug:
            log.warning("--dev on %s: debugger disabled (it is only enabled on 127.0.0.1)", args.host)
        print(f"MelaScan (development server) on http://{args.host}:{args.port}/")
        app.run(host=args.host, port=args.port, debug=debug, use_reloader=False)
        return 0

    from gunicorn.app.base import BaseApplication

    class MelaScanServer(BaseApplication):
        """gunicorn with the app factory called in each worker (one model per worker)."""

        def load_config(self) -> None:
            self.cfg.set("bind", f"{args.host}:{args.port}")
            self.cfg.set("workers", max(1, args.workers))
            self.cfg.set("threads", max(1, args.threads))
            self.cfg.set("worker_class", "gthread" if args.threads > 1 else "sync")
            self.cfg.set("timeout", args.timeout)
            self.cfg.set("accesslog", "-")
            self.cfg.set("preload_app", False)  # each worker builds its own app and model
            # Slow clients: gunicorn's threads block on a request being read; put nginx in
            # front (deploy/nginx-melascan.conf, docs/web.md) when the port is public.
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn >= 24 would open one ~/.gunicorn/gunicorn.ctl for every instance
                # on the machine: no runtime control socket.
                self.cfg.set("control_socket_disable", True)

        def load(self):
            return create_app(_config(args))

    # Fail fast, with a clear message, before gunicorn forks workers: build the app once
    # (creates the database and secret key) and check the model files, but do not open an
    # onnxruntime session here: each worker opens its own after the fork.
    from melascan.web.model import check_model

    app = create_app({**_config(args), "PRELOAD_MODEL": False})
    card = check_model(app.config["MODEL_PATH"])
    check_model_opens(app.config["MODEL_PATH"])
    if card.get("status") != "trained":
        log.warning("the model %s is %s: results carry no information", card.get("name"), card.get("status"))
    print(f"MelaScan on http://{args.host}:{args.port}/ ({args.workers} workers x {args.threads} threads)")
    MelaScanServer().run()
    return 0
