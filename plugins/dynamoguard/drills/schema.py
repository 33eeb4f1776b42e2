"""The restored table's key schema and indexes against the source's, and the parameters to create one by import."""

from __future__ import annotations

from typing import Any


def key_names(description: dict[str, Any]) -> tuple[str, ...]:
    """The table's key attribute names, partition key first."""
    return tuple(k["AttributeName"] for k in description["KeySchema"])


def source_schema(description: dict[str, Any]) -> dict[str, Any]:
    """The parts of a DescribeTable result a drill compares and recreates."""
    return {k: description.get(k, []) for k in
            ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "LocalSecondaryIndexes")}


def _key_attribute_names(description: dict[str, Any]) -> set[str]:
    names = {k["AttributeName"] for k in description["KeySchema"]}
    for index in description.get("GlobalSecondaryIndexes", []) + description.get("LocalSecondaryIndexes", []):
        names.update(k["AttributeName"] for k in index["KeySchema"])
    return names


def table_creation_parameters(description: dict[str, Any], table_name: str) -> dict[str, Any]:
    """ImportTable's TableCreationParameters copying the source's keys and GSIs, on-demand billing.

    ImportTable cannot create local secondary indexes (AWS); :func:`compare_schema` reports their absence.
    """
    used = _key_attribute_names({**description, "LocalSecondaryIndexes": []})
    params: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": [a for a in description["AttributeDefinitions"] if a["AttributeName"] in used],
        "KeySchema": description["KeySchema"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    gsis = [{"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": g["Projection"]}
            for g in description.get("GlobalSecondaryIndexes", [])]
    if gsis:
        params["GlobalSecondaryIndexes"] = gsis
    return params


def _indexes(description: dict[str, Any], kind: str) -> dict[str, Any]:
    return {i["IndexName"]: {"KeySchema": i["KeySchema"], "Projection": _projection(i.get("Projection", {}))}
            for i in description.get(kind, [])}


def _projection(projection: dict[str, Any]) -> dict[str, Any]:
    result = {"ProjectionType": projection.get("ProjectionType", "ALL")}
    if projection.get("NonKeyAttributes"):
        result["NonKeyAttributes"] = sorted(projection["NonKeyAttributes"])
    return result


def compare_schema(source: dict[str, Any], restored: dict[str, Any], *, imported: bool) -> tuple[list[str], list[str]]:
    """Problems (and notes) comparing the restored table's key schema and indexes with the source's.

    ``imported``: ImportTable cannot create LSIs, so missing LSIs are a note, not a problem.
    """
    problems, notes = [], []
    if source["KeySchema"] != restored["KeySchema"]:
        problems.append(f"key schema {restored['KeySchema']} != source {source['KeySchema']}")
    types = {a["AttributeName"]: a["AttributeType"] for a in restored.get("AttributeDefinitions", [])}
    for attr in source.get("AttributeDefinitions", []):
        name = attr["AttributeName"]
        if name in _key_attribute_names(restored) and types.get(name) != attr["AttributeType"]:
            problems.append(f"attribute {name} has type {types.get(name)} != source {attr['AttributeType']}")
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        want, got = _indexes(source, kind), _indexes(restored, kind)
        if imported and kind == "LocalSecondaryIndexes" and want and not got:
            notes.append(f"source LSIs {sorted(want)} not restored: ImportTable cannot create LSIs")
            continue
        for name in sorted(set(want) | set(got)):
            if name not in got:
                problems.append(f"{kind} {name} missing from the restored table")
            elif name not in want:
                problems.append(f"{kind} {name} exists in the restored table but not in the source")
            elif want[name] != got[name]:
                problems.append(f"{kind} {name} differs: {got[name]} != source {want[name]}")
    return problems, notes

