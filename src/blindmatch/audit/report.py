"""Self-contained HTML report of one audit log, for reviewers.

The report is a single file with inline CSS and inline SVG charts generated
here: no JavaScript, no external resources (a Content-Security-Policy forbids
them), so it can be archived, mailed and opened offline without leaking that
it was opened. Verification status comes first because nothing below it means
anything if the log does not verify. Every string from the log is escaped.
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from blindmatch import __version__
from blindmatch.audit.cosignature import WitnessKey
from blindmatch.audit.reconcile import reconcile
from blindmatch.audit.requests import check_entry
from blindmatch.audit.verify import VerifyResult, load_entries, verify_log
from blindmatch.audit.witness_check import SourcedNote
from blindmatch.policy.officials import Policy

COLOR_COMPLETED = "#2563eb"
COLOR_REFUSED = "#dc2626"
COLOR_RECORDS = "#16a34a"
COLOR_DAY = "#d97706"
COLOR_MONTH = "#7c3aed"
COLOR_LIMIT = "#e5e7eb"

_CHART_WIDTH = 560
_MAX_DAYS = 60

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#111827;background:#fff}
h1{font-size:22px;margin:0 0 12px} h2{font-size:16px;margin:0 0 8px}
.status{padding:12px 16px;border-radius:6px;margin-bottom:20px;font-weight:600}
.ok{background:#dcfce7;border:1px solid #16a34a} .bad{background:#fee2e2;border:1px solid #dc2626}
.warn{font-weight:400}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:20px;margin-bottom:20px}
.card{border:1px solid #e5e7eb;border-radius:6px;padding:12px}
table{border-collapse:collapse;width:100%;font-size:12px} td,th{border-bottom:1px solid #e5e7eb;
padding:3px 6px;text-align:left} code{font-size:12px} .legend span{display:inline-block;width:10px;
height:10px;margin:0 4px 0 12px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _svg(name: str, title: str, height: int, body: Iterable[str]) -> str:
    return (
        f'<svg class="chart" data-chart="{name}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{_CHART_WIDTH}" height="{height}" viewBox="0 0 {_CHART_WIDTH} {height}" '
        f'role="img"><title>{_e(title)}</title>{"".join(body)}</svg>'
    )


def _no_data(name: str, title: str) -> str:
    return _svg(name, title, 40, ['<text x="8" y="24" fill="#6b7280">No data</text>'])


def _count(value: Any) -> int:
    """A count from the log as a plain int: the report is drawn even from a log that failed
    verification, so nothing read from it reaches the HTML unchecked."""
    return value if type(value) is int and value >= 0 else 0


def bar_chart(name: str, title: str, rows: Sequence[tuple[str, int]], color: str) -> str:
    """Horizontal bars, one per (label, value), largest first."""
    if not rows:
        return _no_data(name, title)
    rows = sorted(((label, _count(value)) for label, value in rows), key=lambda r: (-r[1], r[0]))
    top = max(v for _, v in rows) or 1
    label_w, bar_w, row_h = 180, _CHART_WIDTH - 240, 22
    parts = []
    for i, (label, value) in enumerate(rows):
        y = i * row_h + 4
        width = max(1, round(bar_w * value / top))
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12">{_e(label)}</text>'
            f'<rect class="bar" x="{label_w}" y="{y}" width="{width}" height="{row_h - 6}" fill="{color}">'
            f"<title>{_e(label)}: {value}</title></rect>"
            f'<text x="{label_w + width + 4}" y="{y + 14}" font-size="12">{value}</text>'
        )
    return _svg(name, title, len(rows) * row_h + 8, parts)


def stacked_columns(
    name: str, title: str, labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[int]]]
) -> str:
    """Vertical stacked columns over ``labels`` (time buckets); series = (name, colour, values)."""
    if not labels:
        return _no_data(name, title)
    totals = [sum(s[2][i] for s in series) for i in range(len(labels))]
    top = max(totals) or 1
    plot_h, base, left = 160, 180, 30
    step = (_CHART_WIDTH - left - 10) / len(labels)
    width = max(2, step * 0.7)
    parts = [
        f'<line x1="{left}" y1="{base}" x2="{_CHART_WIDTH - 5}" y2="{base}" stroke="#9ca3af"/>',
        f'<text x="{left - 4}" y="{base - plot_h + 4}" text-anchor="end" font-size="11">{top}</text>',
    ]
    for i, label in enumerate(labels):
        x = left + i * step + (step - width) / 2
        y: float = base
        for series_name, color, values in series:
            h = plot_h * values[i] / top
            if values[i]:
                y -= h
                parts.append(
                    f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}" '
                    f'fill="{color}"><title>{_e(label)} {_e(series_name)}: {values[i]}</title></rect>'
                )
        if len(labels) <= 12 or i % (len(labels) // 12 + 1) == 0:
            parts.append(
                f'<text x="{x + width / 2:.1f}" y="{base + 14}" text-anchor="middle" font-size="10">'
                f"{_e(label[5:] if len(label) == 10 else label)}</text>"
            )
    return _svg(name, title, base + 22, parts)


def budget_chart(rows: Sequence[dict[str, Any]]) -> str:
    """Per (organisation, official): latest day and month use drawn against the limit."""
    title = "Budget use against limits"
    if not rows:
        return _no_data("budget", title)
    label_w, bar_w, row_h = 180, _CHART_WIDTH - 260, 20
    parts = []
    y = 4
    for row in rows:
        label = f"{row.get('organisation')} / {row.get('official')}"
        parts.append(f'<text x="4" y="{y + 12}" font-size="12" font-weight="600">{_e(label)}</text>')
        y += row_h
        for period, color in (("day", COLOR_DAY), ("month", COLOR_MONTH)):
            used, limit = _count(row.get(f"{period}_used")), _count(row.get(f"{period}_limit"))
            fraction = min(1.0, used / limit) if limit else 1.0
            width = max(1, round(bar_w * fraction))
            parts.append(
                f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end" font-size="11">{period}</text>'
                f'<rect x="{label_w}" y="{y}" width="{bar_w}" height="{row_h - 6}" fill="{COLOR_LIMIT}"/>'
                f'<rect class="bar" x="{label_w}" y="{y}" width="{width}" height="{row_h - 6}" fill="{color}">'
                f"<title>{period}: {used} of {limit}</title></rect>"
                f'<text x="{label_w + bar_w + 4}" y="{y + 12}" font-size="11">{used} / {limit}</text>'
            )
            y += row_h
        y += 6
    return _svg("budget", title, y + 4, parts)


def _time_buckets(entries: list[dict[str, Any]]) -> tuple[list[str], list[int], list[int]]:
    """Completed and refused sessions per day (per month when there are too many days)."""
    outcomes = [
        (str(e.get("time", "")), e["event"])
        for e in entries
        if e.get("event") in ("session_closed", "session_refused")
    ]
    width = 10 if len({t[:10] for t, _ in outcomes}) <= _MAX_DAYS else 7
    counts = Counter((t[:width], event) for t, event in outcomes)
    buckets = sorted({t[:width] for t, _ in outcomes})
    return (
        buckets,
        [counts[(b, "session_closed")] for b in buckets],
        [counts[(b, "session_refused")] for b in buckets],
    )


def _group(entries: Iterable[dict[str, Any]], key: str, value: str | None) -> list[tuple[str, int]]:
    totals: Counter[str] = Counter()
    for entry in entries:
        totals[str(entry.get(key) or "(none)")] += _count(entry.get(value)) if value else 1
    return list(totals.items())


def _status_html(result: VerifyResult) -> str:
    if not result.ok:
        return (
            f'<div class="status bad" id="status">Verification FAILED: {_e(result.error)}'
            f"<br><span class=warn>{result.size} entries verified before the failure; "
            "the figures below are not trustworthy.</span></div>"
        )
    latest = result.latest
    signed = (
        f"latest checkpoint at {_e(latest.time)} covers {latest.size} entries"
        if latest
        else "no signed checkpoint yet"
    )
    tail = (
        f'<br><span class="warn">{result.unsigned_tail} entries after the latest checkpoint '
        "are signed individually but not yet covered by a checkpoint.</span>"
        if result.unsigned_tail
        else ""
    )
    root = result.root.hex() if result.root else ""
    return (
        f'<div class="status ok" id="status">Verified: {result.size} entries, '
        f"{result.checkpoints} signed checkpoints, consistent; {signed}.<br>"
        f'<span class="warn">Root <code>{root}</code></span>{tail}</div>'
    )


def _witness_refusals(ledgers: Sequence[Path], origin: str | None) -> list[dict[str, Any]]:
    """Refusals of this log recorded in witnesses' ledgers (``events.jsonl``)."""
    refusals = []
    for ledger in ledgers:
        for line in Path(ledger).read_bytes().split(b"\n"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a torn last line
            if isinstance(entry, dict) and entry.get("event") == "refused" and entry.get("origin") == origin:
                refusals.append({**entry, "ledger": Path(ledger).name})
    return refusals


def _witness_html(result: VerifyResult, asked: int, refusals: list[dict[str, Any]]) -> str:
    """Witness status: last cosigned size and time per witness, and refusals they recorded."""
    if not asked and not refusals:
        return ""
    rows = "".join(
        f"<tr><td>{_e(s.witness)}</td><td>{s.size}</td><td>{_e(s.time)}</td><td><code>{s.root.hex()[:16]}</code></td></tr>"
        for s in result.witnesses
    )
    if asked and not result.witnesses:
        rows = '<tr><td colspan="4">No witness status: verification failed (see above).</td></tr>'
    table = (
        "<table><tr><th>Witness</th><th>Last cosigned size</th><th>Cosigned at</th><th>Root</th></tr>"
        f"{rows}</table>"
    ) if asked else ""
    refused = "".join(
        "<tr>" + "".join(f"<td>{_e(r.get(k, ''))}</td>" for k in ("time", "reason", "latest_size", "detail")) + "</tr>"
        for r in refusals
    )
    refused_table = (
        "<h2>Checkpoints refused by witnesses</h2><table><tr><th>Time</th><th>Reason</th>"
        f"<th>Witness's size</th><th>Detail</th></tr>{refused}</table>"
    ) if refusals else ""
    notes = "".join(f'<p class="warn">{_e(w)}</p>' for w in result.warnings)
    return f'<div class="card" id="witnesses"><h2>Witnesses</h2>{table}{refused_table}{notes}</div>'


def _approved_by(opened: dict[str, Any], policies: Sequence[Policy]) -> str:
    """Who approved the session: the officials' names when the holder's policy is given
    (their keys and mandates checked), the signer keys' fingerprints otherwise; each
    kept request is re-verified here, so a forged or altered approval shows as such."""
    keys = str(opened.get("signer_keys", ""))
    if not keys:
        return ""
    approval, problems = check_entry(opened, policies)
    if problems or approval is None:
        return "NOT VERIFIED: " + "; ".join(problems or ["the kept request cannot be checked"])
    if approval.signers:
        return ", ".join(approval.signers) + " (verified)"
    prints = [base64.b64encode(key).decode()[:12] for key in approval.signer_keys]
    label = "1 key" if len(prints) == 1 else f"{len(prints)} keys"
    return f"{label}: " + ", ".join(prints) + " (verified; names with --policy)"


# The sessions table lists the latest sessions only: the charts above aggregate all of them, and
# ``blindmatch audit show`` lists every entry; a table of 100,000 rows is neither readable nor small.
SESSION_ROWS = 500


def _sessions_table(entries: list[dict[str, Any]], policies: Sequence[Policy] = ()) -> str:
    sessions: dict[str, dict[str, Any]] = defaultdict(dict)
    for entry in entries:
        if entry.get("event") in ("session_opened", "session_refused", "session_closed"):
            sessions[str(entry.get("session_id"))][entry["event"]] = entry
    ordered = sorted(sessions.items(), key=lambda kv: min(str(e.get("time", "")) for e in kv[1].values()))
    hidden = max(0, len(ordered) - SESSION_ROWS)
    rows = []
    for sid, ev in ordered[hidden:]:
        first = ev.get("session_opened") or ev.get("session_refused") or ev["session_closed"]
        opened = ev.get("session_opened", {})
        if "session_refused" in ev:
            outcome = f"refused: {ev['session_refused'].get('reason')}"
        elif "session_closed" in ev:
            outcome = f"closed, {ev['session_closed'].get('elements')} elements"
        else:
            outcome = "open / aborted"
        cells = (
            first.get("time", ""),
            sid[:16],
            first.get("peer", ""),
            first.get("official", ""),
            _approved_by(opened, policies),
            opened.get("mode", ""),
            opened.get("records", ""),
            outcome,
        )
        rows.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("Time", "Session", "Peer", "Official", "Approved by", "Mode", "Records", "Outcome"))
    note = (f"<p>The latest {SESSION_ROWS} of {len(ordered)} sessions; the charts count all of them, and "
            "<code>blindmatch audit show</code> lists every entry.</p>") if hidden else ""
    return f"{note}<table><tr>{head}</tr>{''.join(rows)}</table>"


# Differences listed one by one; beyond this the section gives the count (the CLI lists all).
DIFFERENCE_ROWS = 200


def _role(entries: Iterable[dict[str, Any]]) -> str | None:
    """``holder`` or ``requester``, from the first entry naming this side's role."""
    return next((str(e["role"]) for e in entries if e.get("role") in ("holder", "requester")), None)


def _reconcile_html(directory: Path, role: str | None, peer: Path | None) -> str:
    """Reconciliation with the peer's log (SPEC.md 10.8), when the reviewer has it."""
    if peer is None:
        return ""
    if role is None:
        return "<h2>Reconciliation</h2><p class=\"bad\">This log names no role (holder or requester).</p>"
    holder, requester = (directory, peer) if role == "holder" else (peer, directory)
    result = reconcile(holder, requester)
    if result.ok:
        held, kept = result.peer_checkpoints
        return (f"<h2>Reconciliation with {_e(peer)}</h2><p class=\"ok\">OK: {result.sessions} sessions "
                f"recorded identically; {held + kept} exchanged checkpoints consistent with both logs.</p>")
    shown = "".join(f"<li>{_e(m)}</li>" for m in result.mismatches[:DIFFERENCE_ROWS])
    more = len(result.mismatches) - DIFFERENCE_ROWS
    tail = f"<p>and {more} more; <code>blindmatch audit reconcile</code> lists all.</p>" if more > 0 else ""
    return (f"<h2>Reconciliation with {_e(peer)}</h2><p class=\"bad\">{len(result.mismatches)} "
            f"difference(s) between the holder and requester logs:</p><ul>{shown}</ul>{tail}")


def render_report(
    directory: Path,
    *,
    witnesses: Sequence[WitnessKey] = (),
    witnessed: Sequence[SourcedNote] = (),
    ledgers: Sequence[Path] = (),
    peer: Path | None = None,
    policies: Sequence[Policy] = (),
) -> str:
    """The report as an HTML string; with ``peer`` (the other side's directory) it reconciles too,
    and with the holder's ``policies`` each session names the officials who approved it."""
    result = verify_log(directory, witnesses=witnesses, witnessed=witnessed)
    witness_section = _witness_html(result, len(witnesses), _witness_refusals(ledgers, result.origin))
    entries = load_entries(directory)
    opened = [e for e in entries if e.get("event") == "session_opened"]
    refused = [e for e in entries if e.get("event") == "session_refused"]
    budgets: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in entries:
        if entry.get("event") == "budget_debited":
            budgets[(str(entry.get("organisation")), str(entry.get("official")))] = entry
    days, completed, refusals = _time_buckets(entries)
    budget_rows = [budgets[k] for k in sorted(budgets)]
    legend = (
        f'<div class="legend"><span style="background:{COLOR_COMPLETED}"></span>completed'
        f'<span style="background:{COLOR_REFUSED}"></span>refused</div>'
    )
    charts = [
        (
            "Sessions over time",
            stacked_columns(
                "sessions-over-time",
                "Sessions per day",
                days,
                [("completed", COLOR_COMPLETED, completed), ("refused", COLOR_REFUSED, refusals)],
            )
            + legend,
        ),
        ("Budget use against limits (latest debit)", budget_chart(budget_rows)),
    ]
    for title, name, group_key, value_key, rows, color in (
        ("Records queried by official", "records-by-official", "official", "records", opened, COLOR_RECORDS),
        ("Records queried by peer organisation", "records-by-organisation", "peer", "records", opened, COLOR_RECORDS),
        ("Refusals by official", "refusals-by-official", "official", None, refused, COLOR_REFUSED),
        ("Refusals by peer organisation", "refusals-by-organisation", "peer", None, refused, COLOR_REFUSED),
        ("Refusals by reason", "refusals-by-reason", "reason", None, refused, COLOR_REFUSED),
    ):
        charts.append((title, bar_chart(name, title, _group(rows, group_key, value_key), color)))
    linkages = [e for e in entries if e.get("event") == "linkage_approved"]  # an issuer's log (SPEC 15.7.1)
    if linkages:
        charts += [
            (title, bar_chart(name, title, _group(linkages, "by", value_key), color))
            for title, name, value_key, color in (
                ("Linked addresses approved, by approver", "approved-by-approver", "approved", COLOR_RECORDS),
                ("Linkage rows rejected, by approver", "rejected-by-approver", "rejected", COLOR_REFUSED),
            )
        ]
    cards = "".join(f'<div class="card"><h2>{_e(t)}</h2>{svg}</div>' for t, svg in charts)
    origin = result.origin or str(directory)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>Audit report: {_e(origin)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Audit report: {_e(origin)}</h1>{_status_html(result)}{witness_section}"
        f"{_reconcile_html(Path(directory), _role(entries), peer)}"
        f'<div class="grid">{cards}</div>'
        f"<h2>Sessions</h2>{_sessions_table(entries, policies)}"
        f"<p><small>Generated by blindmatch {_e(__version__)} from {len(entries)} entries. "
        "The log holds no personal data: only counts, message hashes, identities and times.</small></p>"
        "</body></html>\n"
    )


def write_report(
    directory: Path,
    out: Path,
    *,
    witnesses: Sequence[WitnessKey] = (),
    witnessed: Sequence[SourcedNote] = (),
    ledgers: Sequence[Path] = (),
    peer: Path | None = None,
    policies: Sequence[Policy] = (),
) -> None:
    """Write the HTML report for the log under ``directory`` to ``out``."""
    html_text = render_report(Path(directory), witnesses=witnesses, witnessed=witnessed, ledgers=ledgers, peer=peer,
                              policies=policies)
    Path(out).write_text(html_text, encoding="utf-8")
