"""An issuer made the way an operator would: issuer.toml, ``issuer keygen``'s files, ORDERS.csv."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

from blindmatch.issuer.config import IssuerConfig, load_issuer_config
from blindmatch.issuer.keys import create_seed, create_signing_key


def make_issuer(root: Path, holders: dict[str, int], cap: int = 3) -> IssuerConfig:
    root.mkdir(parents=True, exist_ok=True)
    tables = "".join(
        f'\n[[issuer.holder]]\norganisation = "{org}"\nrecords = {records}\nmargin = 0.0\n'
        for org, records in holders.items()
    )
    (root / "issuer.toml").write_text(textwrap.dedent(f"""\
        [issuer]
        name = "court.example"
        seed_file = "issuer.seed"
        signing_key = "issuer.key"
        state_dir = "state"
        max_addresses_per_person = {cap}
        """) + tables)
    config = load_issuer_config(root / "issuer.toml")
    create_seed(config.seed_file)
    create_signing_key(config.signing_key)
    return config


def write_orders(path: Path, rows: list[dict[str, str]]) -> None:
    """ORDERS.csv: the requester's records with the issuer's order status (``final`` by default).

    Columns beyond the four (``case_ref``) are written when a row has them."""
    extra = sorted({name for row in rows for name in row} - {"name", "address", "order_date", "order_status"})
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["name", "address", "order_date", "order_status", *extra])
        writer.writeheader()
        writer.writerows({"order_status": "final", **row} for row in rows)
