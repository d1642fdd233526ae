"""The HTML report: self-contained, escaped, and rendering real charts in Chromium."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest
from helpers.audit_pairs import HOLDER_ORIGIN, write_pair

from blindmatch.audit import AuditLog, write_report
from blindmatch.audit.report import (
    COLOR_COMPLETED,
    COLOR_DAY,
    COLOR_MONTH,
    COLOR_RECORDS,
    COLOR_REFUSED,
)

CHARTS = (
    "sessions-over-time",
    "budget",
    "records-by-official",
    "records-by-organisation",
    "refusals-by-official",
    "refusals-by-organisation",
    "refusals-by-reason",
)
SCREENSHOT_ENV = "BLINDMATCH_AUDIT_SCREENSHOT"  # where to keep the screenshot (docs/audit-report.png)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    holder_dir, _ = write_pair(root)
    out = root / "report.html"
    write_report(holder_dir, out)
    return out


def test_report_is_self_contained_with_status_first(report: Path) -> None:
    text = report.read_text()
    assert "Verified: 32 entries" in text
    assert text.index('id="status"') < text.index("<svg")
    for chart in CHARTS:
        assert f'data-chart="{chart}"' in text
    assert "<script" not in text and "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text and "<link" not in text
    assert "default-src 'none'" in text


def test_report_shows_failed_verification_and_escapes(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path, HOLDER_ORIGIN)
    log.append(
        "session_opened", session_id="ab" * 16, peer="Org", official="o@x", mode="membership",
        records=3, held_back=0, legal_basis="<script>alert(1)</script>", request_sha256="cd" * 32,
        request_signature="ef" * 64, role="holder",
    )
    log.close()
    log_file = tmp_path / "audit" / "log.jsonl"
    log_file.write_bytes(log_file.read_bytes().replace(b'"records":3', b'"records":4'))
    out = tmp_path / "r.html"
    write_report(tmp_path, out)
    text = out.read_text()
    assert "Verification FAILED" in text and "line 1" in text
    assert "<script>" not in text


def test_report_of_tampered_budget_counts_injects_no_markup(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path, HOLDER_ORIGIN)
    log.append("budget_debited", session_id="ab" * 16, organisation="Org", official="o@x", records=3,
               day_used=3, day_limit=10, month_used=3, month_limit=100)
    log.close()
    log_file = tmp_path / "audit" / "log.jsonl"
    log_file.write_bytes(log_file.read_bytes().replace(b'"day_limit":10', b'"day_limit":"<a href=x>"'))
    out = tmp_path / "r.html"
    write_report(tmp_path, out)
    text = out.read_text()
    assert "Verification FAILED" in text and "<a href" not in text


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode a non-interlaced 8-bit RGB/RGBA PNG into rows of RGB(A) bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pred) & 0xFF
        rows.append(bytes(line) if bpp == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3))
        prev = line
    return width, height, rows


def _colour_counts(rows: list[bytes]) -> Counter[bytes]:
    counts: Counter[bytes] = Counter()
    for row in rows:
        counts.update(row[i:i + 3] for i in range(0, len(row), 3))
    return counts


def _chromium() -> str | None:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if found is None and os.environ.get("CI") != "true":
        pytest.skip("chromium is not installed (CI installs it; there this test fails instead)")
    assert found, "chromium is required under CI=true"
    return found


def _run_chromium(chromium: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--force-color-profile=srgb", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1280,1600", *args,
        ],
        capture_output=True, text=True, timeout=120, check=True,
    )


@pytest.mark.e2e
@pytest.mark.slow
def test_report_renders_charts_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    chromium = _chromium()
    assert chromium
    dom = _run_chromium(chromium, tmp_path, "--dump-dom", report.as_uri()).stdout
    for chart in CHARTS:
        svg = re.search(rf'<svg class="chart" data-chart="{chart}".*?</svg>', dom, re.S)
        assert svg and 'class="bar"' in svg.group(0), chart

    png = tmp_path / "report.png"
    _run_chromium(chromium, tmp_path, f"--screenshot={png}", report.as_uri())
    width, height, rows = _png_pixels(png.read_bytes())
    assert (width, height) == (1280, 1600)
    counts = _colour_counts(rows)
    for colour in (COLOR_COMPLETED, COLOR_REFUSED, COLOR_RECORDS, COLOR_DAY, COLOR_MONTH):
        assert counts[bytes.fromhex(colour[1:])] > 500, f"chart colour {colour} not rendered"
    keep = os.environ.get(SCREENSHOT_ENV)
    if keep:
        shutil.copyfile(png, keep)


@pytest.mark.slow
def test_a_report_of_100k_sessions_stays_small_and_quick(tmp_path: Path) -> None:
    """Charts aggregate every session; the table shows the latest ones only (issue 14, item 7)."""
    import json
    import time

    from blindmatch.audit.report import SESSION_ROWS, render_report

    audit = tmp_path / "audit"
    AuditLog.open(tmp_path, "holder/big").close()
    lines = []
    for n in range(100_000):
        day = f"2024-{1 + n // 9000 % 12:02d}-{1 + n % 28:02d}T09:00:00.000000Z"
        event = {"event": "session_refused" if n % 10 == 0 else "session_opened", "index": n, "time": day,
                 "session_id": f"{n:032x}", "peer": "Court", "official": f"official{n % 7}", "mode": "membership",
                 "records": 10, "reason": "over_budget"}
        lines.append(json.dumps(event))
    (audit / "log.jsonl").write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    html_text = render_report(tmp_path)
    assert time.monotonic() - started < 60
    assert len(html_text) < 1_000_000
    assert f"The latest {SESSION_ROWS} of 100000 sessions" in html_text
    assert html_text.count("<tr>") <= SESSION_ROWS + 50
