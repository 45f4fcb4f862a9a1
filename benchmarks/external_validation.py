"""In-distribution and out-of-source numbers of model folders, side by side (reads ../shared/data).

    .venv/bin/python benchmarks/external_validation.py --model shipped=src/melascan/assets/model \
        --model seed_model=OLD_DIR --out docs/external_validation

For each model folder, ``melascan.evaluation.bundle.evaluate_bundle`` scores (torch-free, the card's
own thresholds, leakage-guarded against the model's training manifest):

* ``seed_test``: the seed split's 900 test images (the split of ``--seed-manifest``);
* ``official_test``: melanoma-10k's own test folder, reported without the images the model
  trained or selected on (``without_leaked``);
* ``ham_test``: every HAM10000 image of the mix's test lesions (``data/mix/eval/ham_test.csv``);
* ``ph2``: the PH2 images in ``../shared/data/ph2`` (melanoma vs common and atypical nevi).

Writes ``<out>/<model>/<set>/metrics.json`` and ``<out>/summary.md`` (one row per model and set:
ROC-AUC [95 % CI], sensitivity/specificity/F1 at 0.5, balanced and screening, out-of-scope rate
(``summary.json`` also has each set's share of in-scope images above the card's familiar cut);
then, for the HAM10000 test lesions, each benign diagnosis: ROC-AUC of the melanomas against it
and the share called malignant at each threshold). ``--write-card NAME`` stores NAME's results in
its card, the by-diagnosis breakdown included (the web app lists it as benign look-alikes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def sets(seed_csv: Path, ham_csv: Path) -> dict[str, dict]:
    """Set name -> evaluate_bundle target (a labelled CSV or a labelled folder)."""
    return {
        "seed_test": {"csv_file": seed_csv},
        "official_test": {"folder": SHARED / "melanoma-10k" / "test"},
        "ham_test": {"csv_file": ham_csv},
        "ph2": {"csv_file": SHARED / "ph2" / "labels.csv"},
    }


def _seed_csv(manifest: Path, out: Path) -> Path:
    """The seed manifest's test split as a path,label CSV (so every model sees the same 900 images)."""
    from melascan.data.manifest import read_manifest

    m = read_manifest(manifest)
    rows = [f"{m.source_root / r.path},{r.label}" for r in m.subset("test")]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("path,label\n" + "\n".join(rows) + "\n")
    return out


def row(model: str, name: str, m: dict) -> str:
    block = m.get("without_leaked") if name == "official_test" and "without_leaked" in m else m["shipped"]
    n = block["ranking"]["n"] if "ranking" in block else m["n_images"]
    r = block["ranking"]
    ci = r.get("roc_auc_ci") or [float("nan")] * 2
    cells = [f"{r['roc_auc']:.3f} [{ci[0]:.3f}-{ci[1]:.3f}]"]
    for op in ("0.5", "balanced", "screening"):
        t = block["thresholds"][op]
        cells.append(f"{t['sensitivity']:.3f} / {t['specificity']:.3f} / {t['f1']:.3f}")
    scope = m.get("scope", {}).get("rejected_rate")
    cells.append("—" if scope is None else f"{100 * scope:.1f} %")
    return f"| {model} | {name} | {n} ({r['n_malignant']} mal.) | " + " | ".join(cells) + " |"


def diagnosis_groups(predictions: Path, ham_csv: Path, m: dict) -> dict[str, dict]:
    """``metrics.benign_groups`` of one model's HAM10000 test predictions, at its shipped thresholds."""
    import csv

    from external_selection import read_predictions  # a sibling script in benchmarks/
    from melascan.evaluation.metrics import benign_groups

    with open(ham_csv, newline="") as fh:
        dx = {r["path"]: r["dx"] for r in csv.DictReader(fh)}
    scored = {path: v for path, v in read_predictions(predictions).items() if path in dx}
    thresholds = {op: t["threshold"] for op, t in m["shipped"]["thresholds"].items()}
    return benign_groups([label for label, _ in scored.values()], [p for _, p in scored.values()],
                         [dx[path] for path in scored], thresholds)


def diagnosis_rows(model: str, groups: dict[str, dict]) -> list[str]:
    """Rows of the by-diagnosis table for one model."""
    return [f"| {model} | {g} | {v['n']} | {v['roc_auc_vs_malignant']:.3f} | "
            + " | ".join(f"{100 * v['called_malignant'][op]:.1f} %" for op in ("0.5", "balanced", "screening")) + " |"
            for g, v in groups.items()]


def main() -> None:
    from melascan.evaluation.bundle import evaluate_bundle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, metavar="NAME=DIR")
    parser.add_argument("--seed-manifest", type=Path, default=Path("data/seed/manifest.csv"))
    parser.add_argument("--ham-csv", type=Path, default=Path("data/mix/eval/ham_test.csv"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--only", nargs="*", default=None, help="evaluate only these sets")
    parser.add_argument("--write-card", metavar="NAME",
                        help="store NAME's results in its model card (external_validation) and rewrite model_card.md")
    args = parser.parse_args()
    seed_csv = _seed_csv(args.seed_manifest, args.out / "seed_test.csv")
    lines = ["| model | set | images | ROC-AUC [95 % CI] | 0.5: sens / spec / F1 | balanced: sens / spec / F1 | "
             "screening: sens / spec / F1 | out of scope |", "|---" * 8 + "|"]
    results, groups, by_dx = {}, {}, []
    for item in args.model:
        name, _, folder = item.partition("=")
        for set_name, spec in sets(seed_csv, args.ham_csv).items():
            if args.only and set_name not in args.only:
                continue
            m = evaluate_bundle(folder, args.out / name / set_name, csv_file=spec.get("csv_file"),
                                folder=spec.get("folder"), name=set_name, n_bootstrap=args.bootstrap, workers=2)
            results[(name, set_name)] = m
            lines.append(row(name, set_name, m))
            print(lines[-1], flush=True)
            if set_name == "ham_test":
                groups[name] = diagnosis_groups(args.out / name / set_name / "predictions.csv", args.ham_csv, m)
                by_dx += diagnosis_rows(name, groups[name])
    dx_table = []
    if by_dx:
        dx_table = ["", "HAM10000 benign test lesions by diagnosis: ROC-AUC of all melanomas against that diagnosis, "
                  "and the share called malignant at each threshold.", "",
                  "| model | diagnosis | images | ROC-AUC vs melanoma | called malignant at 0.5 | at balanced | "
                  "at screening |", "|---" * 7 + "|", *by_dx]
    (args.out / "summary.md").write_text("\n".join(lines + dx_table) + "\n")
    if args.write_card:
        from melascan.inference import card as model_card

        folder = dict(item.partition("=")[::2] for item in args.model)[args.write_card]
        card = model_card.load_card(folder)
        card["external_validation"] = {
            "command": "python benchmarks/external_validation.py " + " ".join(f"--model {m}" for m in args.model)
                       + f" --out {args.out} --write-card {args.write_card}",
            "table": [line for line in lines[2:] if line.startswith(f"| {args.write_card} |")],
            "sets": {k[1]: {"n": v["n_images"], "roc_auc": v["shipped"]["ranking"]["roc_auc"],
                            "roc_auc_ci": v["shipped"]["ranking"].get("roc_auc_ci"),
                            "thresholds": {op: {m: t[m] for m in ("threshold", "sensitivity", "specificity", "f1")}
                                           for op, t in v["shipped"]["thresholds"].items()},
                            "out_of_scope_rate": (v.get("scope") or {}).get("rejected_rate"),
                            "without_leaked_roc_auc": (v.get("without_leaked") or {}).get("ranking", {}).get("roc_auc")}
                     for k, v in results.items() if k[0] == args.write_card},
        }
        if args.write_card in groups:  # what the app lists as benign look-alikes (web.risk.look_alikes)
            card["external_validation"]["sets"]["ham_test"]["benign_diagnoses"] = groups[args.write_card]
        model_card.write_card(card, folder)
    (args.out / "summary.json").write_text(json.dumps({f"{k[0]}/{k[1]}": {
        "roc_auc": v["shipped"]["ranking"]["roc_auc"], "leakage": v.get("leakage"), "scope": v.get("scope")}
        for k, v in results.items()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
