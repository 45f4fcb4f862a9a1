"""Validation ROC-AUC by source of trained runs, each and (with several) their ensemble.

    .venv/bin/python benchmarks/ensemble_validation.py --run runs/ms_lite0_224ft --run runs/ms_lite1_192ft \
        --tta 2 --out docs/external_validation/ensemble_validation.json

Scores the validation split of the first run's manifest (reads ../shared/data through it) with each
run's best checkpoint (``predict_logits``, its own image size and pre-processing, ``--tta`` views),
and, given two or more runs, the ensemble that averages their malignant-minus-benign logits; or,
with ``--ensemble NAME=RUN,RUN,...`` (repeatable; its runs are added to ``--run``), those ensembles.
Every run must have been validated on the same images (the same val rows of its manifest).
Validation only: the mean over sources of the per-source ROC-AUC is what the candidate rule of
docs/model.md compares. Where the manifest records diagnoses (HAM10000), the melanomas' ROC-AUC
against each benign diagnosis is reported too (a diagnostic, not part of the rule). Every model
is also compared with ``--baseline`` (default: the first run) by a paired DeLong test of the mean
over sources (``evaluation.paired.delong_test_by_group``): the difference, its 95 % CI and p, so
a table shows how large a gain this validation set can resolve.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.special import expit

from melascan.evaluation.metrics import benign_groups, per_source_roc_auc
from melascan.evaluation.paired import delong_test_by_group
from melascan.runfolder import RunFolder
from melascan.training.ensemble import validation_images
from melascan.training.runs import load_run, predict_logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], help="run folder (two or more: also the ensemble)")
    parser.add_argument("--ensemble", action="append", default=[], metavar="NAME=RUN,RUN,...",
                        help="a named mean-logit ensemble of these runs (instead of the one of all --run)")
    parser.add_argument("--baseline", help="run or ensemble name the others are compared with (default: the first run)")
    parser.add_argument("--tta", type=int, default=1, help="test-time views for every run (1, 2, 4, 8)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    ensembles = {}
    for item in args.ensemble:
        name, _, runs = item.partition("=")
        ensembles[name] = [r for r in runs.split(",") if r]
        if not name or len(ensembles[name]) < 2:
            raise SystemExit(f"--ensemble {item!r}: expected NAME=RUN,RUN[,...]")
    args.run = list(dict.fromkeys(args.run + [r for runs in ensembles.values() for r in runs]))
    if not args.run:
        raise SystemExit("give at least one --run or --ensemble")
    if not ensembles and len(args.run) > 1:
        ensembles["ensemble (mean logit)"] = args.run

    manifest = RunFolder(args.run[0]).manifest()
    records = manifest.subset("val")
    for run in args.run[1:]:
        if validation_images(run) != validation_images(args.run[0]):
            raise SystemExit(f"{run} was validated on other images than {args.run[0]}")
    y = np.array([r.label_id for r in records])
    sources = np.array([r.source for r in records])
    diagnoses = np.array([r.diagnosis for r in records])
    has_dx = diagnoses != ""
    files = [str(manifest.source_root / r.path) for r in records]

    margins = {}
    for run in args.run:
        model, cfg = load_run(run)
        z = predict_logits(model, cfg, files, tta=args.tta)
        margins[run] = z[:, 1] - z[:, 0]
    for name, runs in ensembles.items():
        margins[name] = np.mean([margins[r] for r in runs], axis=0)

    baseline = args.baseline or args.run[0]
    if baseline not in margins:
        raise SystemExit(f"--baseline {baseline!r} is neither a --run nor an --ensemble name")
    results = {}
    for name, m in margins.items():
        by_source = per_source_roc_auc(y, expit(m), sources)
        results[name] = {"mean": by_source.pop("mean"), "by_source": by_source}
        if has_dx.any():
            groups = benign_groups(y[has_dx], expit(m[has_dx]), diagnoses[has_dx], {})
            results[name]["roc_auc_vs_diagnosis"] = {g: round(v["roc_auc_vs_malignant"], 4) for g, v in groups.items()}
        if name != baseline:
            paired = delong_test_by_group(y, m, margins[baseline], sources)
            results[name]["vs_baseline"] = {"baseline": baseline, **{k: paired[k] for k in ("difference", "std_error", "ci95", "p_value")}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": args.run, "ensembles": ensembles, "baseline": baseline, "tta_views": args.tta, "split": "val", "n_images": len(y),
                                    "results": results}, indent=2) + "\n")
    names = sorted(set(sources))
    print("| model | " + " | ".join(names) + f" | mean | mean - {baseline} [95 % CI], p |")
    print("|---" * (len(names) + 3) + "|")
    for name, r in results.items():
        vs = r.get("vs_baseline")
        paired = f"{vs['difference']:+.4f} [{vs['ci95'][0]:+.4f}, {vs['ci95'][1]:+.4f}], p = {vs['p_value']:.2f}" if vs else ""
        print(f"| {name} | " + " | ".join(f"{r['by_source'][s]:.4f}" for s in names) + f" | {r['mean']:.4f} | {paired} |"
              + (f" melanoma vs: {r['roc_auc_vs_diagnosis']}" if "roc_auc_vs_diagnosis" in r else ""))


if __name__ == "__main__":
    main()
