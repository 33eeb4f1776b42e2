"""HTML for the posture page, rendered on the server: no script, no external resource, charts as inline SVG.

Every link and form is relative (``root`` leads from the page back to the Airflow UI root), so the page works
under any base URL and behind a proxy. Links to Airflow runs open in the top window (the page is shown in the
Airflow UI's frame).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from dynamoguard.findings import SEVERITIES
from dynamoguard.posture.aggregate import ACCESS_QUESTIONS, CELLS, _duration, size_text
from dynamoguard.timeutil import parse_time

CELL_TITLES = {"export": "Last verified export", "object_lock": "Object Lock", "replica": "Replica",
               "drill": "Last drill", "audit": "CloudTrail", "access": "Access"}
FILTERS = ("severity", "job", "table", "status")
FINDINGS_SHOWN = 300
MATRIX_SHOWN = 2000

_CSS = """
:root{--green:#1e7e34;--green-bg:#e6f4ea;--amber:#8a5300;--amber-bg:#fff4d6;--red:#b3261e;--red-bg:#fce8e6;
--line:#d8dde3;--muted:#5f6b77;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
body{margin:0;padding:16px 20px;color:#1f2328;background:#fff;font-size:14px;line-height:1.4}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}a{color:#0b57d0}
.muted{color:var(--muted)}.small{font-size:12px}
.totals span{display:inline-block;margin-right:12px}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid var(--line);padding:6px 8px;
text-align:left;vertical-align:top}th{font-size:12px;color:var(--muted);font-weight:600;white-space:nowrap}
td.cell{border-left:4px solid transparent;min-width:130px}
.green{background:var(--green-bg);border-left-color:var(--green)!important}
.amber{background:var(--amber-bg);border-left-color:var(--amber)!important}
.red{background:var(--red-bg);border-left-color:var(--red)!important}
.badge{display:inline-block;font-size:11px;font-weight:700;text-transform:uppercase;padding:0 6px;border-radius:8px;
color:#fff}.badge.green{background:var(--green)}.badge.amber{background:var(--amber)}.badge.red{background:var(--red)}
.sev{display:inline-block;min-width:58px;font-size:11px;font-weight:700;text-transform:uppercase}
.sev.critical,.sev.high{color:var(--red)}.sev.medium{color:var(--amber)}.sev.low,.sev.info{color:var(--muted)}
details.finding{border-bottom:1px solid var(--line);padding:4px 0}details.finding summary{cursor:pointer}
pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:320px;font-size:12px}
form.filters label{margin-right:10px}.charts{display:flex;flex-wrap:wrap;gap:16px}
.chart{border:1px solid var(--line);padding:8px}table.one{width:auto;max-width:1100px}table.one th{width:150px}
.who{margin:2px 0;font-size:12px}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_CSS}</style></head>'
            f"<body>{body}</body></html>")


def _run_link(url: str | None, root: str, text: str = "run") -> str:
    if not url:
        return ""
    return f' <a class="small" href="{_e(root + url)}" target="_top">{_e(text)} &rsaquo;</a>'


def _when(value: Any) -> str:
    try:
        return parse_time(value).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError):
        return "never"


def _short_principal(arn: str) -> str:
    return arn.split(":", 5)[-1] if arn.startswith("arn:") else arn


def _who_can(answers: Mapping[str, Sequence[Mapping[str, str]]]) -> str:
    lines = []
    for question, (text, _) in ACCESS_QUESTIONS.items():
        found = answers.get(question) or []
        names = ", ".join(_short_principal(p["principal"]) + ("*" if p["decision"] == "conditional" else "")
                          for p in found) or "nobody"
        lines.append(f'<div class="who"><b>Can {_e(text)}:</b> {_e(names)}</div>')
    return "".join(lines)


def _cell_html(name: str, cell: Mapping[str, Any], root: str) -> str:
    extra = _who_can(cell["details"]["who_can"]) if name == "access" and cell["details"].get("who_can") else ""
    return (f'<td class="cell {cell["status"]}" data-cell="{name}" data-status="{cell["status"]}">'
            f'<span class="badge {cell["status"]}">{cell["status"]}</span> {_e(cell["reason"])}'
            f"{_run_link(cell.get('link'), root)}{extra}</td>")


def posture_page(doc: Mapping[str, Any], filters: Mapping[str, str] | None = None) -> str:
    """The page at ``/dynamoguard/``: one row per table, the findings (filtered) and the access review."""
    root = "../"
    filters = {k: v for k, v in (filters or {}).items() if k in FILTERS and v}
    totals, counts = doc["totals"], doc["open_findings"]
    head = (f"<h1>Backup posture</h1><div class=\"muted\">Built {_e(_when(doc['generated_at']))} from the findings "
            f"store &middot; <a href=\"api/posture\">JSON</a></div>"
            f'<p class="totals"><span>{len(doc["tables"])} protected tables:</span>'
            f'<span>{totals["green"]} <span class="badge green">green</span></span>'
            f'<span>{totals["amber"]} <span class="badge amber">amber</span></span>'
            f'<span>{totals["red"]} <span class="badge red">red</span></span>'
            f"<span>Open findings: "
            + ", ".join(f'<a href="?{urlencode({"severity": s, "status": "open"})}#findings">{counts[s]} {s}</a>'
                        for s in SEVERITIES) + "</span></p>")
    header_cells = "".join(f"<th>{_e(CELL_TITLES[c])}</th>" for c in CELLS)
    rows = []
    for row in doc["tables"]:
        name = row["table"]
        cells = "".join(_cell_html(c, row["cells"][c], root) for c in CELLS)
        rows.append(f'<tr data-table="{_e(name)}" data-status="{row["status"]}"><th scope="row">'
                    f'<a href="table/{quote(name)}">{_e(name)}</a><div class="small muted">charts &rsaquo;</div></th>'
                    f"{cells}</tr>")
    tables = (f'<h2>Protected tables</h2><table class="posture"><thead><tr><th>Table</th>{header_cells}</tr></thead>'
              f"<tbody>{''.join(rows)}</tbody></table>")
    return _page("Backup posture", head + tables + _account_html(doc, root)
                 + findings_html(doc["findings"], filters, root, doc) + access_html(doc.get("access_review")))


def _account_html(doc: Mapping[str, Any], root: str) -> str:
    if not doc.get("account"):
        return ""
    items = [f"<li><b>{_e(job)}</b>: {'clean' if status['ok'] else 'needs attention'}, "
             f"last run {_e(_when(status['last_run']))}, {status['open']} open finding(s)"
             f"{_run_link(status.get('run_url'), root)}</li>" for job, status in sorted(doc["account"].items())]
    return f"<h2>Account-wide checks</h2><ul>{''.join(items)}</ul>"


def filter_findings(findings: Iterable[Mapping[str, Any]], filters: Mapping[str, str]) -> list[Mapping[str, Any]]:
    """Findings matching every given filter (severity, job, table, status)."""
    wanted = {k: v for k, v in filters.items() if k in FILTERS and v}
    return [f for f in findings if all(str(f.get(k) or "") == v for k, v in wanted.items())]


def _select(name: str, options: Iterable[str], chosen: str | None) -> str:
    opts = ['<option value="">any</option>'] + [
        f'<option value="{_e(o)}"{" selected" if o == chosen else ""}>{_e(o)}</option>' for o in options]
    return f'<label>{name} <select name="{name}">{"".join(opts)}</select></label>'


def findings_html(findings: Sequence[Mapping[str, Any]], filters: Mapping[str, str], root: str,
                  doc: Mapping[str, Any] | None = None) -> str:
    """The findings list with its filter form; each finding opens to show its evidence."""
    tables = [r["table"] for r in (doc or {}).get("tables", [])]
    jobs = sorted({str(f.get("job")) for f in findings})
    form = ('<form class="filters" method="get" action="#findings">'
            + _select("severity", SEVERITIES, filters.get("severity")) + _select("job", jobs, filters.get("job"))
            + (_select("table", tables, filters.get("table")) if tables else "")
            + _select("status", ("open", "resolved"), filters.get("status"))
            + '<button type="submit">Filter</button></form>')
    shown = filter_findings(findings, filters)
    items = []
    for f in shown[:FINDINGS_SHOWN]:
        evidence = json.dumps(f.get("evidence") or {}, indent=2, sort_keys=True, default=str)
        items.append(
            f'<details class="finding" id="finding-{_e(f["id"])}" data-severity="{_e(f["severity"])}" '
            f'data-job="{_e(f.get("job"))}" data-status="{_e(f.get("status"))}"><summary>'
            f'<span class="sev {_e(f["severity"])}">{_e(f["severity"])}</span> {_e(f["title"])} '
            f'<span class="muted small">{_e(f.get("job"))} &middot; {_e(f.get("table") or f.get("scope"))} &middot; '
            f'{_e(f.get("status"))} &middot; last seen {_e(_when(f.get("last_seen")))}</span></summary>'
            f'<div class="small">Check <code>{_e(f.get("check"))}</code> on <code>{_e(f.get("resource"))}</code>; '
            f'first seen {_e(_when(f.get("first_seen")))}, seen {_e(f.get("times_seen", 1))} time(s)'
            + (f', resolved {_e(_when(f.get("resolved_at")))}' if f.get("resolved_at") else "")
            + f'{_run_link((f.get("run") or {}).get("url"), root, "seen in run")}</div>'
            f"<pre>{_e(evidence)}</pre></details>")
    more = (f'<p class="muted">Showing {FINDINGS_SHOWN} of {len(shown)}; narrow the filters to see the rest.</p>'
            if len(shown) > FINDINGS_SHOWN else "")
    empty = '<p class="muted">No finding matches.</p>' if not shown else ""
    return (f'<h2 id="findings">Findings ({len(shown)} of {len(findings)})</h2>{form}{"".join(items)}{empty}{more}')


def access_html(review: Mapping[str, Any] | None) -> str:
    """The latest access review's matrix: who may do what to each protected resource."""
    if not review:
        return ('<h2 id="access">Access review</h2><p class="muted">No access review has been reported to the '
                "findings store yet.</p>")
    if review.get("missing"):
        return f'<h2 id="access">Access review</h2><p>The report {_e(review["key"])} named by the store is gone.</p>'
    rows = [f"<tr><td>{_e(e['resource_name'])}</td><td>{_e(e['action'])}</td><td>{_e(e['principal'])}</td>"
            f"<td>{_e(e['decision'])}</td></tr>" for e in review["matrix"][:MATRIX_SHOWN]]
    more = (f'<p class="muted">{len(review["matrix"]) - MATRIX_SHOWN} more rows in {_e(review["key"])}.</p>'
            if len(review["matrix"]) > MATRIX_SHOWN else "")
    limits = "".join(f"<li>{_e(text)}</li>" for text in review.get("limitations", []))
    return (f'<h2 id="access">Access review of {_e(review.get("run_date"))}</h2>'
            f'<p class="muted small">Who may act on each protected resource (denied and not-allowed pairs left out; '
            f"* = conditional). Report <code>{_e(review['key'])}</code>.</p>"
            f'<table class="matrix"><thead><tr><th>Resource</th><th>Action</th><th>Principal</th><th>Decision</th>'
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}<ul class=\"small muted\">{limits}</ul>")


# --- charts ----------------------------------------------------------------------------------------------
def line_chart(title: str, points: Sequence[Mapping[str, Any]], series: Sequence[tuple[str, str, str]],
               fmt: Callable[[Any], str], width: int = 460, height: int = 180) -> str:
    """An SVG line chart of ``points`` over their ``at`` time; ``series`` = (key, label, colour).

    A point whose ``result`` is not ``passed`` (a failed drill) is drawn as a red ring.
    """
    left, right, top, bottom = 64, 10, 24, 28
    data = []
    for p in points:
        try:
            data.append((parse_time(p["at"]).timestamp(), p))
        except (KeyError, TypeError, ValueError):
            continue
    header = f'<text x="{left}" y="15" font-size="13" font-weight="600">{_e(title)}</text>'
    if not data:
        return (f'<svg class="chart" role="img" aria-label="{_e(title)}: no data" width="{width}" height="{height}">'
                f'{header}<text x="{left}" y="{height // 2}" fill="#5f6b77" font-size="12">no data yet</text></svg>')
    values = [float(p[k]) for _, p in data for k, _, _ in series if isinstance(p.get(k), (int, float))]
    top_value = max(values, default=0) or 1.0
    t0, t1 = data[0][0], data[-1][0]
    span = (t1 - t0) or 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def xy(t: float, v: float) -> tuple[float, float]:
        x = left + (plot_w * (t - t0) / span if t1 > t0 else plot_w / 2)
        return round(x, 1), round(top + plot_h * (1 - v / top_value), 1)

    parts = [header,
             f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#c3c9d0"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#c3c9d0"/>',
             f'<text x="{left - 4}" y="{top + 4}" font-size="11" text-anchor="end">{_e(fmt(top_value))}</text>',
             f'<text x="{left - 4}" y="{top + plot_h}" font-size="11" text-anchor="end">0</text>',
             f'<text x="{left}" y="{height - 8}" font-size="11">{_e(_day(t0))}</text>',
             f'<text x="{width - right}" y="{height - 8}" font-size="11" text-anchor="end">{_e(_day(t1))}</text>']
    legend_x = width - right
    for _key, label, colour in reversed(series):
        parts.append(f'<text x="{legend_x}" y="15" font-size="11" text-anchor="end" fill="{colour}">{_e(label)}</text>')
        legend_x -= 8 + 7 * len(label)
    for key, label, colour in series:
        coords = [(xy(t, float(p[key])), p) for t, p in data if isinstance(p.get(key), (int, float))]
        if len(coords) > 1:
            path = " ".join(f"{x},{y}" for (x, y), _ in coords)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        for (x, y), p in coords:
            failed = p.get("result") not in (None, "passed")
            tip = f"{_when(p['at'])}: {label} {fmt(p[key])}" + (" (failed)" if failed else "")
            style = 'fill="#fff" stroke="#b3261e" stroke-width="2" r="4"' if failed else f'fill="{colour}" r="2.5"'
            parts.append(f'<circle cx="{x}" cy="{y}" {style}><title>{_e(tip)}</title></circle>')
    return (f'<svg class="chart" role="img" aria-label="{_e(title)}" width="{width}" height="{height}" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>')


def _day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%m-%d")


def _count(value: Any) -> str:
    return f"{float(value):,.0f}"


def table_page(doc: Mapping[str, Any], table: str, filters: Mapping[str, str] | None = None) -> str | None:
    """The page of one table: its cells, its charts and its findings; None if the table is not in ``doc``."""
    row = next((r for r in doc["tables"] if r["table"] == table), None)
    if row is None:
        return None
    root = "../../"
    charts = row["charts"]
    svgs = [
        line_chart("Items per nightly export", charts["exports"], [("items", "items", "#0b57d0")], _count),
        line_chart("Bytes per nightly export", charts["exports"], [("bytes", "bytes", "#6a1b9a")], size_text),
        line_chart("Drill RTO and RPO", charts["drills"],
                   [("rto_seconds", "RTO", "#1e7e34"), ("rpo_seconds", "RPO", "#8a5300")], _duration),
    ]
    cells = "".join(f"<tr><th>{_e(CELL_TITLES[c])}</th>{_cell_html(c, row['cells'][c], root)}</tr>" for c in CELLS)
    jobs = "".join(f"<tr><td>{_e(job)}</td><td>{_e(_when(s['last_run']))}</td><td>{'yes' if s['ok'] else 'no'}</td>"
                   f"<td>{_e(_when(s['last_success']))}</td><td>{_run_link(s.get('run_url'), root)}</td></tr>"
                   for job, s in sorted(row["jobs"].items()))
    mine = [f for f in doc["findings"] if f.get("table") == table or f.get("scope") == table]
    filters = {k: v for k, v in (filters or {}).items() if k in FILTERS and k != "table" and v}
    body = (f'<p class="small"><a href="../">&lsaquo; all tables</a></p><h1>{_e(table)} '
            f'<span class="badge {row["status"]}">{row["status"]}</span></h1>'
            f'<table class="posture one">{cells}</table>'
            f'<h2>History (last 35 nights)</h2><div class="charts">{"".join(svgs)}</div>'
            f"<h2>Jobs</h2><table><thead><tr><th>Job</th><th>Last run</th><th>Clean</th><th>Last success</th>"
            f"<th></th></tr></thead><tbody>{jobs or '<tr><td colspan=5 class=muted>no job has reported yet</td></tr>'}"
            "</tbody></table>"
            + findings_html(mine, filters, root))
    return _page(f"{table}: backup posture", body)
