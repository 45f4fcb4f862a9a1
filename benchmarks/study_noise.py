"""Seed-to-seed spread of study variants trained with several seeds (reads study results only).

    .venv/bin/python benchmarks/study_noise.py 42=docs/studies/augment.csv \
        43=docs/studies/augment_seed43.csv 44=docs/studies/augment_seed44.csv \
        --out docs/studies/noise.md

Each ``SEED=CSV`` is a ``results.csv`` of ``melascan study`` (the same grid and settings, another
``--set seed=N``). For every variant found under two or more seeds the table gives, per metric
(test F1 and ROC-AUC, val ROC-AUC, each out-of-source ROC-AUC and benign false-positive rate), the
mean, the sample standard deviation and the range across seeds.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from melascan.training.study_tables import seed_spread, spread_markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", metavar="SEED=CSV")
    parser.add_argument("--out", type=Path, help="write the Markdown table here")
    args = parser.parse_args()
    rows_by_seed = {}
    for item in args.results:
        seed, _, path = item.partition("=")
        with open(path, newline="", encoding="utf-8") as fh:
            rows_by_seed[int(seed)] = list(csv.DictReader(fh))
    table = spread_markdown(seed_spread(rows_by_seed))
    sources = ", ".join(f"seed {item.partition('=')[0]}: `{item.partition('=')[2]}`" for item in args.results)
    text = (f"# Seed-to-seed spread\n\nFrom {sources}. Command: `python benchmarks/study_noise.py "
            f"{' '.join(args.results)}{f' --out {args.out}' if args.out else ''}`\n\n{table}\n")
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
