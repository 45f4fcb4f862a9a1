"""``melascan calibrate``: a copy of a model folder with decision thresholds fitted on a site's own
labelled images.

The network ranks lesions from a new dermatoscope about as well as at home, but its thresholds,
fitted on the training sources' validation images, do not carry (PH2: the shipped balanced
threshold calls 44 % of its nevi malignant; docs/model.md). A site with labelled images of its
own can fit the same two rules on them (``evaluation.calibration``: Youden's J, and the highest
threshold keeping 95 % sensitivity). The copy's card then says where the thresholds come from, and
the sensitivity and specificity it reports (and the app shows) are **out of fold**: thresholds
fitted on half of the site's images and applied to the other half, 2 folds x 200 splits
(``evaluation.selection.cross_validated_thresholds``), never the optimistic fit on all of them.
The card's numbers measured at the old thresholds on other sets are dropped. The network, its
temperature (so the probability shown) and the out-of-scope detector stay as they are.

Torch-free: the site's images are scored by the ONNX model as in ``melascan evaluate``.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path

from melascan.errors import DataError
from melascan.evaluation.bundle import SITE_MIN_PER_CLASS, evaluate_bundle, read_predictions
from melascan.evaluation.calibration import SCREENING_SENSITIVITY, balanced_threshold, screening_threshold
from melascan.export import runinfo
from melascan.inference import card as model_card
from melascan.inference.classifier import Classifier

#: Fewest images of each class a site needs; with 20 melanomas (PH2) a 95 % screening rule kept 90 % out of fold.
MIN_PER_CLASS = 30
#: Where the copy keeps the evaluation its thresholds were fitted on.
EVALUATION_FOLDER = "site_evaluation"


def calibrate_for_site(model_dir: str | Path, csv_file: str | Path, out_dir: str | Path, *, name: str,
                       min_per_class: int = MIN_PER_CLASS, command: str | None = None) -> dict:
    """Write ``out_dir``: ``model_dir``'s files, a card with thresholds fitted on the labelled CSV
    (see the module doc) and ``site_evaluation/`` (metrics.json, predictions.csv). Returns the card."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if min_per_class < SITE_MIN_PER_CLASS:
        raise DataError(f"--min-per-class must be at least {SITE_MIN_PER_CLASS}: with fewer images of a class the "
                        "thresholds' out-of-fold rates, which the card reports, are not measured")
    card = model_card.load_card(model_dir)
    if card.get("fusion"):
        raise DataError(f"{model_dir} fuses the network with the lesion measurements; its thresholds belong to "
                        "the fusion, which `melascan calibrate` does not refit: calibrate an unfused model")
    if out_dir.resolve() == model_dir.resolve():
        raise DataError("--out must be a new folder: the original model stays as it is")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise DataError(f"{out_dir} is not empty (or is a file): choose a new folder for the calibrated copy")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / "model"
        evaluation = evaluate_bundle(model_dir, work / EVALUATION_FOLDER, csv_file=csv_file, name=name)
        counts = {"malignant": evaluation["n_malignant"], "benign": evaluation["n_images"] - evaluation["n_malignant"]}
        if min(counts.values()) < min_per_class:
            raise DataError(f"{csv_file}: {counts['malignant']} malignant and {counts['benign']} benign readable "
                            f"images; thresholds need at least {min_per_class} of each (--min-per-class) to hold "
                            "on images they were not fitted on")
        leaked = (evaluation.get("leakage") or {}).get("n_leaked", 0)
        if leaked:
            raise DataError(f"{csv_file}: {leaked} images are also in the model's training or validation data "
                            f"(`melascan evaluate {model_dir} --csv {csv_file}` lists them under 'leakage' in its "
                            "metrics.json); remove them")
        pred = read_predictions(work / EVALUATION_FOLDER / "predictions.csv")
        y, p = pred["label"].astype(int), pred["probability"].astype(float)
        thresholds = {"balanced": balanced_threshold(y, p), "screening": screening_threshold(y, p)}
        for entry in card["files"].values():
            shutil.copyfile(model_dir / entry["name"], work / entry["name"])
        site_card = _site_card(card, evaluation, thresholds, name, Path(csv_file), command)
        model_card.write_card(site_card, work)
        Classifier(work)  # the copy must load as the app will load it
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(work, out_dir, dirs_exist_ok=True)
    return site_card


def _site_card(card: dict, evaluation: dict, thresholds: dict, name: str, csv_file: Path, command: str | None) -> dict:
    site = evaluation["site_thresholds"]
    old = card["calibration"]
    out = copy.deepcopy(card)
    out["calibration"] = {
        **old,
        "thresholds": thresholds,
        "source": f"site calibration: {name}",
        "fitted_on": {"set": name, "csv": str(csv_file.resolve()), "n": evaluation["n_images"],
                      "n_malignant": evaluation["n_malignant"]},
        "rules": {**(old.get("rules") or {}),
                  "balanced": "maximises Youden's J = sensitivity + specificity - 1 on the site's images",
                  "screening": f"highest threshold with sensitivity >= {SCREENING_SENSITIVITY:.0%} on the site's images"},
        "command": command,
        "replaced": {k: old.get(k) for k in ("thresholds", "fitted_on", "source")},
    }
    summary = runinfo.summarize_metrics(evaluation, source=f"{EVALUATION_FOLDER}/metrics.json", variant="shipped")
    ranking = {k: summary[k] for k in ("n_images", "n_malignant", "roc_auc", "roc_auc_ci", "pr_auc") if k in summary}
    out_of_fold = {f"{metric}_{op}": site[op]["site"][metric]["mean"]
                   for op in ("balanced", "screening") for metric in ("sensitivity", "specificity")}
    scope = {"out_of_scope_rate": evaluation["scope"]["rejected_rate"]} if "scope" in evaluation else {}
    out["metrics"] = {name: {**ranking, **out_of_fold, **scope, "command": command, "source": summary.get("source"),
                             "thresholds": "fitted on this set; sensitivity and specificity out of fold (fitted on "
                                           "one half, scored on the other, 2 folds x 200 splits)"}}
    out.pop("external_validation", None)
    out["warnings"] = [*card.get("warnings", []), (
        f"Decision thresholds refitted on {name} ({evaluation['n_images']} images, {evaluation['n_malignant']} "
        f"malignant) by `melascan calibrate`: balanced {thresholds['balanced']:.3f}, screening "
        f"{thresholds['screening']:.3f} (were {old['thresholds']['balanced']:.3f} and "
        f"{old['thresholds']['screening']:.3f}). Their sensitivity and specificity here are out-of-fold estimates "
        "on that set; the original card's numbers on other sets were measured at other thresholds and are not "
        "reported. The probability shown is the network's, unchanged.")]
    return out


def site_summary(card: dict) -> list[str]:
    """Lines for the terminal: the new thresholds and what they did out of fold."""
    cal = card["calibration"]
    (m,) = card["metrics"].values()
    lines = [f"thresholds fitted on {cal['fitted_on']['n']} images ({cal['fitted_on']['n_malignant']} malignant) "
             f"of {cal['fitted_on']['set']}; ROC-AUC {m.get('roc_auc', float('nan')):.3f}"]
    if "out_of_scope_rate" in m:
        lines.append(f"  out of scope (the app asks for a retake): {m['out_of_scope_rate']:.1%} of the site's images")
    for op in ("balanced", "screening"):
        was = cal["replaced"]["thresholds"][op]
        lines.append(f"  {op}: {cal['thresholds'][op]:.4f} (was {was:.4f}); out of fold: sensitivity "
                     f"{m[f'sensitivity_{op}']:.3f}, specificity {m[f'specificity_{op}']:.3f}")
    return lines

