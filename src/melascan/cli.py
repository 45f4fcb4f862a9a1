"""The ``melascan`` command line: a thin dispatcher over the library.

Each command lives in its stage's ``commands.py`` as ``add_<name>(parser)`` and
``run_<name>(args) -> int``. Only the chosen command's module is imported, so
serving commands never import PyTorch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("melascan.data.commands", "build a deduplicated, stratified split (or a multi-source mix)"),
    "eda": ("melascan.data.commands", "figures and statistics of a prepared split"),
    "audit": ("melascan.data.commands", "shortcut audit: how well trivial cues predict label and source"),
    "train": ("melascan.training.commands", "train one timm model from a config"),
    "ensemble": ("melascan.training.commands", "average trained runs (mean logit) into one run folder"),
    "study": ("melascan.training.commands", "run the seed's grids: augment | models | strategies"),
    "evaluate": ("melascan.evaluation.commands", "metrics, calibration, figures and report of a run"),
    "export": ("melascan.export.commands", "export a trained run to ONNX with a model card"),
    "calibrate": ("melascan.export.commands", "copy a model with thresholds fitted on a site's own images"),
    "predict": ("melascan.inference.commands", "classify an image or a folder with the ONNX model"),
    "analyze": ("melascan.lesion.commands", "classification plus segmentation and ABCD features"),
    "serve": ("melascan.web.commands", "run the web app"),
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="melascan",
        description="MelaScan melanoma screening toolkit (not a medical device).",
        epilog="Commands:\n" + "\n".join(f"  {n:<9} {h}" for n, (_, h) in COMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", nargs="?", help="one of the commands below")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("MELASCAN_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    top = _top_parser()
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0
    if argv[0] == "--version":
        from melascan import __version__

        print(__version__)
        return 0
    name = argv[0]
    if name not in COMMANDS:
        top.print_usage(sys.stderr)
        print(f"melascan: error: unknown command {name!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="%(message)s")
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"melascan {name}", description=COMMANDS[name][1])
    getattr(module, f"add_{name}")(parser)
    args = parser.parse_args(argv[1:])
    from melascan.errors import MelascanError

    try:
        return int(getattr(module, f"run_{name}")(args) or 0)
    except MelascanError as exc:
        print(f"melascan {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: keep the message short unless --debug
        if debug:
            raise
        print(
            f"melascan {name}: unexpected error: {type(exc).__name__}: {exc}\n"
            "(rerun with --debug for the full traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
