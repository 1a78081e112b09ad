"""The ``/docs`` page: the OpenAPI document rendered for a storefront developer.

Per operation: what it does, the role it needs, its parameters and request
body with readable types (``integer, 1 to 100``, ``string | null``, links to
named types), a ready-to-paste ``curl`` request, an example response and
every status it can answer with. Plain server-side HTML, no JavaScript, so it
works offline and behind a proxy.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:64em;margin:2em auto;padding:0 1em;color:#222}"
    "code,pre{background:#f4f4f4;font:13px/1.4 ui-monospace,monospace}code{padding:0 3px}"
    "pre{padding:.6em;overflow-x:auto}table{border-collapse:collapse;margin:.5em 0}"
    "td,th{padding:3px 10px;text-align:left;vertical-align:top;border-bottom:1px solid #e4e4e4}"
    "h2{margin-top:2.2em;border-top:2px solid #ddd;padding-top:.6em}h3{font-size:1em;margin-bottom:.2em}"
    "nav li{font-family:ui-monospace,monospace;font-size:13px}"
)


def inline(text: str) -> str:
    """Escaped text with `code` (or reStructuredText ``code``) as <code>."""
    escaped = html.escape(" ".join(line.strip() for line in (text or "").splitlines()))
    return re.sub(r"``([^`]+)``|`([^`]+)`", lambda m: f"<code>{m.group(1) or m.group(2)}</code>", escaped)


def markdown(text: str) -> str:
    """Paragraphs (blank-line separated) of :func:`inline` text: all the docstrings use."""
    return "".join(f"<p>{inline(p)}</p>" for p in re.split(r"\n\s*\n", text or "") if p.strip())


def type_of(schema: dict[str, Any]) -> str:
    """A JSON schema as a short, readable HTML type: ``array of string``, ``number &gt; 0 | null``."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"<a href='#type-{html.escape(name)}'>{html.escape(name)}</a>"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            text = " | ".join(dict.fromkeys(type_of(s) for s in schema[key]))
            return text + (f" ({html.escape(schema['format'])})" if "format" in schema else "")
    if "const" in schema:
        return f"<code>{html.escape(json.dumps(schema['const']))}</code>"
    if "enum" in schema:
        return " | ".join(f"<code>{html.escape(json.dumps(v))}</code>" for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        text = "array of " + type_of(schema.get("items", {}))
        limits = [
            f"at least {schema['minItems']}" if "minItems" in schema else "",
            f"at most {schema['maxItems']}" if "maxItems" in schema else "",
        ]
        return text + "".join(f", {x}" for x in limits if x)
    if kind == "object":
        extra = schema.get("additionalProperties")
        return "object of string → " + type_of(extra) if isinstance(extra, dict) and extra else "object"
    if kind is None:
        return "any"
    text = html.escape(str(kind))
    if "format" in schema:
        text += f" ({html.escape(schema['format'])})"
    bounds = [
        (k, s)
        for k, s in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"))
        if k in schema
    ]
    text += "".join(f", {sign} {_number(schema[k])}" for k, sign in bounds)
    if "minLength" in schema or "maxLength" in schema:
        text += f", {schema.get('minLength', 0)} to {schema.get('maxLength', '…')} characters"
    return text


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _presence(required: bool, schema: dict[str, Any]) -> str:
    if required:
        return "required"
    if "default" in schema and schema["default"] not in (None, []):
        return f"default <code>{html.escape(json.dumps(schema['default']))}</code>"
    return "optional"


def fields_table(schema: dict[str, Any]) -> str:
    rows = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        rows.append(
            f"<tr><td><code>{html.escape(name)}</code></td><td>{type_of(prop)}</td>"
            f"<td>{_presence(name in required, prop)}</td>"
            f"<td>{markdown(prop.get('description', ''))}</td></tr>"
        )
    if not rows:
        return "<p>" + type_of(schema) + "</p>"
    return "<table><tr><th>field</th><th>type</th><th></th><th>meaning</th></tr>" + "".join(rows) + "</table>"


def curl(method: str, path: str, op: dict[str, Any]) -> str:
    url = path
    for param in op.get("parameters", []):
        if param["in"] == "path":
            url = url.replace("{" + param["name"] + "}", str(param.get("example", param["name"])))
    if op.get("x-example-query"):
        url += "?" + op["x-example-query"]
    parts = [f"curl -X {method.upper()} 'http://localhost:8000{url}'"]
    if op.get("security"):
        parts.append('-H "Authorization: Bearer $KEY"')
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    if "example" in body:
        parts.append("-H 'Content-Type: application/json'")
        parts.append("-d '" + json.dumps(body["example"], ensure_ascii=False) + "'")
    return " \\\n     ".join(parts)


def render(spec: dict[str, Any]) -> str:
    """The whole page, from the OpenAPI document ``spec``."""
    schemas = spec["components"]["schemas"]
    toc, sections = [], []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            anchor = op.get("operationId", f"{method}-{path}")
            toc.append(
                f"<li><a href='#{html.escape(anchor)}'>{method.upper()} {html.escape(path)}</a> — "
                f"{inline(op['summary'])}</li>"
            )
            part = [
                f"<h2 id='{html.escape(anchor)}'><code>{method.upper()} {html.escape(path)}</code></h2>",
                f"<p><b>{inline(op['summary'])}</b></p>",
                markdown(op.get("description", "")),
            ]
            if not op.get("security"):
                part.append("<p>No API key needed.</p>")
            params = op.get("parameters", [])
            if params:
                part.append(
                    "<h3>Parameters</h3><table><tr><th>name</th><th>in</th><th>type</th><th></th>"
                    "<th>meaning</th></tr>"
                    + "".join(
                        f"<tr><td><code>{html.escape(p['name'])}</code></td><td>{p['in']}</td>"
                        f"<td>{type_of(p['schema'])}</td><td>{_presence(p.get('required', False), p['schema'])}"
                        f"</td><td>{markdown(p.get('description', ''))}</td></tr>"
                        for p in params
                    )
                    + "</table>"
                )
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                part.append("<h3>Request body (JSON)</h3>")
                part.append(_schema_fields(body["schema"], schemas))
            part.append("<h3>Example request</h3><pre>" + html.escape(curl(method, path, op)) + "</pre>")
            ok = next((code for code in op["responses"] if code.startswith("2")), None)
            ok_content = op["responses"].get(ok, {}).get("content", {}) if ok else {}
            for media, content in ok_content.items():
                part.append(f"<h3>Example response ({ok}, <code>{html.escape(media)}</code>)</h3>")
                example = content.get("example")
                text = example if isinstance(example, str) else json.dumps(example, indent=2, ensure_ascii=False)
                part.append("<pre>" + html.escape(text or "") + "</pre>")
                if "$ref" in content.get("schema", {}):
                    part.append("<p>Type: " + type_of(content["schema"]) + "</p>")
            part.append(
                "<h3>Statuses</h3><table>"
                + "".join(
                    f"<tr><td>{html.escape(code)}</td><td>{markdown(r['description'])}</td></tr>"
                    for code, r in op["responses"].items()
                )
                + "</table>"
            )
            sections.append("".join(part))
    types = [
        f"<h3 id='type-{html.escape(name)}'>{html.escape(name)}</h3>{markdown(schema.get('description', ''))}"
        + _schema_fields({"$ref": f"#/components/schemas/{name}"}, schemas)
        for name, schema in sorted(schemas.items())
    ]
    info = spec["info"]
    return (
        "\n".join(
            [
                "<!doctype html><html lang=en><meta charset=utf-8>",
                f"<title>{html.escape(info['title'])} API</title><style>{STYLE}</style>",
                f"<h1>{html.escape(info['title'])} API {html.escape(info['version'])}</h1>",
                "<p>JSON over HTTP. Machine-readable: <a href='/openapi.json'>/openapi.json</a>. "
                "Authenticate with <code>Authorization: Bearer &lt;key&gt;</code> (a key from "
                "<code>recommender keys create --role read|write|admin|marketer</code>; roles nest read &lt; write &lt; admin; "
                "marketer may read lists and preview campaigns, nothing else).</p>",
                markdown(info.get("description", "")),
                "<nav><ul>" + "".join(toc) + "</ul></nav>",
                *sections,
                "<h2 id='types'>Types</h2>",
                *types,
            ]
        )
        + "\n"
    )


def _schema_fields(schema: dict[str, Any], schemas: dict[str, Any]) -> str:
    """The fields of ``schema`` (following a $ref; each variant of a union in turn)."""
    if "$ref" in schema:
        schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
    variants = schema.get("oneOf") or schema.get("anyOf")
    if variants:
        return "".join("<p>Either " + type_of(v) + ":</p>" + _schema_fields(v, schemas) for v in variants)
    return fields_table(schema)
