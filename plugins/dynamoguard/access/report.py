"""The access-review report: JSON, an HTML page, and the difference from the previous run."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from dynamoguard.access.evaluate import condition_text
from dynamoguard.access.findings import ALERT_SEVERITIES, SEVERITIES, Finding
from dynamoguard.access.resources import Entry, ProtectedResource
from dynamoguard.aws import error_code

REPORT_VERSION = 1
FOLDER = "access-review"
LIMITATIONS = [
    "Service control policies (SCPs), resource control policies (RCPs) and session policies are not collected: "
    "an organization-level Deny may remove access or an escalation path shown here.",
    "Conditions are decided only for aws:PrincipalArn, aws:PrincipalAccount and, on PassRole, iam:PassedToService; "
    "any other condition (source IP, MFA, tags, time...) makes the grant 'conditional', shown with its operator, "
    "key and values.",
    "Principals of other accounts named in a resource policy are listed from that policy alone; their own account "
    "must also allow the request. For the two configured accounts both sides are evaluated.",
    "Escalation follows role trust policies (sts:AssumeRole, also across the two accounts), iam:PassRole to services "
    "that run code (Lambda, EC2, Auto Scaling, CloudFormation, Glue, Data Pipeline, CodeBuild, SageMaker, ECS), "
    "writing one's own policies or boundary, new policy versions, joining groups, creating access keys or console "
    "passwords for other users, and rewriting trust policies. Not followed: taking over compute that already runs "
    "as a role (updating a function's code, ssm:SendCommand, updating a stack with a service role), "
    "identity federation (SAML/OIDC), and resource policies of other services (KMS keys, Lambda functions).",
    "Preconditions that need an inventory are assumed met: an access key slot or login profile for the user, a "
    "function trigger, an existing Lambda, EC2 or stack; roles without an instance profile count for EC2 only if the "
    "principal can create one. iam:SetDefaultPolicyVersion is shown as conditional: the other versions are not read.",
    "A principal that can rewrite another principal's policies is followed only to the principals it reaches by a "
    "grant naming them, not to every principal a wildcard lets it rewrite; an escalation that would also need an "
    "existing Deny removed is not followed.",
    "Access through the account root user and through AWS service-linked roles' own actions is not evaluated.",
]


def run_folder(prefix: str, run_date: str) -> str:
    """``<prefix>/access-review/<run_date>``: where one run writes its snapshots and report."""
    return f"{prefix.strip('/')}/{FOLDER}/{run_date}" if prefix.strip("/") else f"{FOLDER}/{run_date}"


def report_keys(prefix: str, run_date: str) -> tuple[str, str]:
    """S3 keys of the JSON report and HTML page of the run for ``run_date`` (YYYY-MM-DD)."""
    base = run_folder(prefix, run_date)
    return f"{base}/report.json", f"{base}/report.html"


def snapshot_key(prefix: str, run_date: str, account_name: str) -> str:
    """S3 key of the collected IAM/resource-policy snapshot of one account (``source`` or ``backup``)."""
    return f"{run_folder(prefix, run_date)}/snapshot-{account_name}.json"


def _entry_key(entry: Mapping[str, Any]) -> tuple[str, str, str]:
    return entry["resource"], entry["principal"], entry["action"]


def _short(action: str) -> str:
    return action.split(":", 1)[-1]


def _route(entry: Mapping[str, Any]) -> str | None:
    """``assume <role> -> pass_role <role>`` for access through an escalation path, None for direct access."""
    return " -> ".join(f"{h['kind']} {h['to']}" for h in entry.get("path", ())) or None


def diff_reports(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> dict[str, Any]:
    """New and resolved findings, and access that appeared or disappeared since ``previous``."""
    if previous is None:
        return {"previous_run": None, "new_findings": [], "resolved_findings": [], "new_access": [],
                "removed_access": []}
    names = {r["id"]: r["name"] for r in (*previous.get("resources", []), *current["resources"])}
    active = ("allowed", "conditional")
    old = {_entry_key(e): (e["decision"], _route(e)) for e in previous.get("matrix", []) if e["decision"] in active}
    new = {_entry_key(e): (e["decision"], _route(e)) for e in current["matrix"] if e["decision"] in active}

    def describe(key, state, verb):
        (resource, principal, action), (decision, route) = key, state
        how = (f" via {route}" if route else "") + ("" if decision == "allowed" else " (conditionally)")
        text = f"{principal} {verb} {_short(action)} {names.get(resource, resource)}{how}"
        return {"resource": resource, "principal": principal, "action": action, "decision": decision,
                "via": route or "direct", "text": text}

    def gained(key, state):
        """New access, access that lost its condition, or a new escalation path to it."""
        if key not in old:
            return True
        (was, old_route), (now, route) = old[key], state
        return (was == "conditional" and now == "allowed") or (route != old_route and route is not None)

    new_access = [describe(k, s, "can now") for k, s in sorted(new.items()) if gained(k, s)]
    removed_access = [describe(k, s, "can no longer") for k, s in sorted(old.items()) if k not in new]
    old_findings = {f["id"]: f for f in previous.get("findings", [])}
    new_ids = {f["id"] for f in current["findings"]}

    def worse(f):
        """New, more severe than before, or a conditional grant that became unconditional."""
        old = old_findings.get(f["id"])
        return old is None or SEVERITIES.index(f["severity"]) < SEVERITIES.index(old["severity"]) or (
            old.get("status") == "conditional" and f["status"] == "allowed")

    return {
        "previous_run": previous.get("run_date"),
        "new_findings": [f for f in current["findings"] if worse(f)],
        "resolved_findings": [f for f in previous.get("findings", []) if f["id"] not in new_ids],
        "new_access": new_access,
        "removed_access": removed_access,
    }


def build_report(run_date: str, accounts: Mapping[str, str], resources: Iterable[ProtectedResource],
                 entries: Iterable[Entry], findings: Iterable[Finding],
                 previous: Mapping[str, Any] | None = None, generated_at: str = "") -> dict[str, Any]:
    """The JSON report of one run (``accounts`` maps role, e.g. ``source``, to account id)."""
    findings = [f.to_dict() for f in findings]
    report = {
        "version": REPORT_VERSION,
        "run_date": run_date,
        "generated_at": generated_at,
        "accounts": dict(accounts),
        "resources": [{"id": r.id, "name": r.name, "kind": r.kind, "account": r.account, "arn": r.arn,
                       "actions": {a: r.category(a) for a in r.scopes}, "has_policy": r.policy is not None,
                       "allowed_principals": list(r.allowed_principals), "fine_grained": r.fine_grained}
                      for r in resources],
        "summary": {s: sum(1 for f in findings if f["severity"] == s) for s in SEVERITIES},
        "findings": findings,
        "matrix": sorted((e.to_dict() for e in entries), key=lambda e: (e["resource"], e["principal"], e["action"])),
        "limitations": LIMITATIONS,
    }
    report["diff"] = diff_reports(previous, report)
    return report


def store_findings(report: Mapping[str, Any], tables: Iterable[str]) -> dict[str, list]:
    """The report's findings in the findings-store shape (job ``access``) by scope: each configured table (even
    without findings, so that earlier ones resolve), and the account scope for the rest."""
    from dynamoguard.findings import ACCOUNT_SCOPE
    from dynamoguard.findings import Finding as StoreFinding

    scopes: dict[str, list] = {table: [] for table in tables}
    scopes.setdefault(ACCOUNT_SCOPE, [])
    for f in report["findings"]:
        evidence = {"principal": f["principal"], "actions": f["actions"], "status": f["status"], "policy": f["policy"],
                    "statement": f["statement"], "account": f["account"], "evidence": f["evidence"],
                    "report_date": report["run_date"]}
        scopes.setdefault(f.get("table") or ACCOUNT_SCOPE, []).append(StoreFinding(
            job="access", check=f["kind"], severity=f["severity"], title=f["message"],
            resource=f.get("resource_arn") or f["resource"], table=f.get("table"), evidence=evidence,
            dedup=f"{f['principal']}|{f['policy']}|{f['statement']}"))
    return scopes


def new_alerts(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """New findings of a severity that must notify."""
    return [f for f in report["diff"]["new_findings"] if f["severity"] in ALERT_SEVERITIES]


def alert_text(report: Mapping[str, Any], link: str = "") -> tuple[str, str]:
    """Subject and message for the new high-severity findings of ``report``."""
    alerts = new_alerts(report)
    lines = [f"{len(alerts)} new high-severity access finding(s) on {report['run_date']}:"]
    lines += [f"- [{f['severity']}] {f['message']} (policy {f['policy']}, statement {f['statement']})"
              for f in alerts]
    lines += ["", "New access since the previous run:"] + [f"- {a['text']}" for a in report["diff"]["new_access"]]
    if link:
        lines += ["", f"Report: {link}"]
    return f"dynamoguard access review: {len(alerts)} new high-severity finding(s)", "\n".join(lines)


# --- HTML ------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;font-size:13px;vertical-align:top}th{background:#f3f3f3}
.critical{background:#7a0010;color:#fff}.high{background:#d9534f;color:#fff}.medium{background:#f0ad4e}
.low,.info{background:#e8f0fe}.allowed{background:#f8d7da;text-align:center}
.conditional{background:#fff3cd;text-align:center}.denied{color:#888;text-align:center}
th.rot{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap}
"""
_CELL = {"allowed": "&#10004;", "conditional": "?", "denied": "&#10006;"}


def _e(value: Any) -> str:
    return html.escape(str(value))


def _conditions(grant: Mapping[str, Any]) -> str:
    return " and ".join(condition_text(c["operator"], c["key"], c["values"]) for c in grant.get("conditions", ()))


def evidence_text(item: Mapping[str, Any]) -> str:
    """One line of evidence: a statement (with its conditions) or a hop of an escalation path."""
    if "hop" in item:
        return f"hop {item['hop']}: {item['text']}"
    if "statement" not in item:
        return ", ".join(f"{k}: {v}" for k, v in item.items())
    conditions = _conditions(item)
    return (f"{item['effect']}: {item['policy']} / {item['statement']}"
            + (f" if {conditions}" if conditions else ""))


def _cell(entry: Mapping[str, Any]) -> str:
    lines = [f"{i + 1}. {hop['text']}" for i, hop in enumerate(entry.get("path", ()))]
    lines += [evidence_text(g) for g in (*entry["grants"], *entry.get("denies", ()))]
    mark = _CELL[entry["decision"]] + (" via" if entry.get("path") else "")
    tests = sorted({_conditions(g) for g in entry["grants"] if g.get("conditions")})
    if entry["decision"] == "conditional" and tests:
        mark += "<br><small>" + "<br>".join(_e(t) for t in tests) + "</small>"
    return f"<td class='{_e(entry['decision'])}' title='{_e(chr(10).join(lines))}'>{mark}</td>"


def render_html(report: Mapping[str, Any]) -> str:
    """A standalone page: findings first, the diff, then a who-can-do-what matrix per resource."""
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>Access review {_e(report['run_date'])}"
           f"</title><style>{_CSS}</style></head><body>",
           f"<h1>Access review {_e(report['run_date'])}</h1>",
           "<p>Accounts: " + ", ".join(f"{_e(k)} {_e(v)}" for k, v in report["accounts"].items()) + "</p>",
           "<p>" + ", ".join(f"{n} {_e(s)}" for s, n in report["summary"].items()) + "</p>",
           f"<h2>Findings ({len(report['findings'])})</h2>"]
    if report["findings"]:
        out.append("<table><tr><th>Severity</th><th>Status</th><th>Kind</th><th>Principal</th><th>Actions</th>"
                   "<th>Resource</th><th>Details</th><th>Evidence</th></tr>")
        for f in report["findings"]:
            evidence = "<br>".join(_e(evidence_text(item)) for item in f.get("evidence", ()))
            out.append(f"<tr><td class='{_e(f['severity'])}'>{_e(f['severity'])}</td><td>{_e(f['status'])}</td>"
                       f"<td>{_e(f['kind'])}</td><td>{_e(f['principal'])}</td><td>{_e(', '.join(f['actions']))}</td>"
                       f"<td>{_e(f['resource'])}</td><td>{_e(f['message'])}</td><td>{evidence}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>No findings.</p>")
    diff = report["diff"]
    out.append(f"<h2>Changes since {_e(diff['previous_run'] or 'the first run')}</h2><ul>")
    items = ([f"NEW finding: {f['message']}" for f in diff["new_findings"]]
             + [f"resolved: {f['message']}" for f in diff["resolved_findings"]]
             + [a["text"] for a in diff["new_access"]] + [a["text"] for a in diff["removed_access"]])
    out.extend(f"<li>{_e(i)}</li>" for i in items or ["No changes."])
    out.append("</ul><h2>Who can do what</h2>"
               "<p>&#10004; allowed, ? conditional (a condition we cannot decide, shown under the mark), "
               "&#10006; explicitly denied; <em>via</em>: reached through an escalation path (hover for the hops "
               "and statements).</p>")
    for resource in report["resources"]:
        actions = list(resource["actions"])
        cells: dict[str, dict[str, Mapping[str, Any]]] = {}
        for e in report["matrix"]:
            if e["resource"] == resource["id"]:
                cells.setdefault(e["principal"], {})[e["action"]] = e
        out.append(f"<h3>{_e(resource['kind'])} {_e(resource['name'])} <small>{_e(resource['arn'])}</small></h3>")
        if not cells:
            out.append("<p>No principal has any of the reviewed actions.</p>")
            continue
        out.append("<table><tr><th>Principal</th>" + "".join(
            f"<th class='rot' title='{_e(resource['actions'][a])}'>{_e(_short(a))}</th>" for a in actions) + "</tr>")
        for principal in sorted(cells):
            row = [f"<tr><td>{_e(principal)}</td>"]
            for action in actions:
                e = cells[principal].get(action)
                if e is None:
                    row.append("<td></td>")
                    continue
                row.append(_cell(e))
            out.append("".join(row) + "</tr>")
        out.append("</table>")
    out.append("<h2>Limitations</h2><ul>" + "".join(f"<li>{_e(x)}</li>" for x in report["limitations"]) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out)


# --- S3 --------------------------------------------------------------------------------------------

def previous_report(s3, bucket: str, prefix: str, run_date: str) -> dict[str, Any] | None:
    """The most recent report of a run before ``run_date``, or None if there is none."""
    folder = run_folder(prefix, "")
    dates = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder, Delimiter="/"):
        dates.extend(p["Prefix"][len(folder):].rstrip("/") for p in page.get("CommonPrefixes", []))
    for date in sorted((d for d in dates if d < run_date), reverse=True):
        try:
            body = s3.get_object(Bucket=bucket, Key=report_keys(prefix, date)[0])["Body"].read()
        except ClientError as error:
            if error_code(error) in ("NoSuchKey", "404"):
                continue  # a run that wrote no report (failed before the end)
            raise
        return json.loads(body)
    return None


def write_report(s3, bucket: str, prefix: str, report: Mapping[str, Any]) -> tuple[str, str]:
    """Write report.json and report.html for the report's run date; return both keys."""
    json_key, html_key = report_keys(prefix, report["run_date"])
    s3.put_object(Bucket=bucket, Key=json_key, Body=json.dumps(report, indent=1).encode(),
                  ContentType="application/json")
    s3.put_object(Bucket=bucket, Key=html_key, Body=render_html(report).encode(),
                  ContentType="text/html; charset=utf-8")
    return json_key, html_key
