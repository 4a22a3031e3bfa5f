"""OpenAPI (3.x / Swagger 2) specs -> one self-contained text per operation.

Each operation is rendered with its method and path on the first line, then summary, description,
base URL, auth, parameters, request body and responses, with local `$ref`s resolved, so that a
generated task demonstration can quote the concrete call from its chunk alone. Pure functions.
"""

from __future__ import annotations

from typing import Any

METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
_MAX_DEPTH = 3


def is_spec(doc: Any) -> bool:
    """True for a mapping that looks like an OpenAPI or Swagger document with paths."""
    return isinstance(doc, dict) and ("openapi" in doc or "swagger" in doc) and isinstance(doc.get("paths"), dict)


def resolve(doc: dict[str, Any], node: Any, seen: frozenset[str] = frozenset()) -> Any:
    """`node` with a local `$ref` (#/a/b) replaced by its target; unknown or cyclic refs -> {}."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if not ref.startswith("#/") or ref in seen:
            return {}
        seen = seen | {ref}
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        node = target if isinstance(target, dict) else {}
    return node


def _constraints(schema: dict[str, Any]) -> str:
    bits = [str(schema.get("type", "object" if "properties" in schema else "any"))]
    for key in ("format", "minimum", "maximum", "maxItems", "default", "example"):
        if key in schema:
            bits.append(f"{key} {schema[key]}")
    if "enum" in schema:
        bits.append("one of " + ", ".join(map(str, schema["enum"])))
    return ", ".join(bits)


def schema_lines(doc: dict[str, Any], schema: Any, indent: str = "  ", depth: int = 0) -> list[str]:
    """Indented `name: type, constraints` lines for an object schema (nested up to 3 levels)."""
    schema = resolve(doc, schema)
    if not isinstance(schema, dict) or depth >= _MAX_DEPTH:
        return []
    if schema.get("type") == "array" and "items" in schema:
        return schema_lines(doc, schema["items"], indent, depth)
    required = set(schema.get("required") or [])
    lines = []
    for name, prop in (schema.get("properties") or {}).items():
        prop = resolve(doc, prop)
        if not isinstance(prop, dict):
            continue
        req = ", required" if name in required else ""
        desc = f" - {prop['description'].strip()}" if isinstance(prop.get("description"), str) else ""
        lines.append(f"{indent}{name}: {_constraints(prop)}{req}{desc}")
        lines += schema_lines(doc, prop, indent + "  ", depth + 1)
    return lines


def _parameters(doc: dict[str, Any], params: list[Any]) -> list[str]:
    lines = []
    for param in params:
        param = resolve(doc, param)
        if not isinstance(param, dict) or "name" not in param:
            continue
        schema = resolve(doc, param.get("schema") or {})
        req = ", required" if param.get("required") else ""
        desc = f" - {param['description'].strip()}" if isinstance(param.get("description"), str) else ""
        lines.append(f"- {param['name']} (in {param.get('in', '?')}{req}): {_constraints(schema)}{desc}")
    return lines


def _body(doc: dict[str, Any], body: Any) -> list[str]:
    body = resolve(doc, body)
    if not isinstance(body, dict):
        return []
    lines = []
    for media, content in (body.get("content") or {}).items():
        req = ", required" if body.get("required") else ""
        lines.append(f"Request body ({media}{req}):")
        lines += schema_lines(doc, (content or {}).get("schema"))
    return lines


def _responses(doc: dict[str, Any], responses: Any) -> list[str]:
    lines = []
    for status, response in (responses or {}).items():
        response = resolve(doc, response)
        desc = response.get("description", "") if isinstance(response, dict) else ""
        lines.append(f"- {status}: {str(desc).strip()}")
    return lines


def _auth(scheme: dict[str, Any]) -> str:
    if scheme.get("type") == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
        return "header Authorization: Bearer <token>"
    if scheme.get("type") == "apiKey":
        return f"{scheme.get('in', 'header')} {scheme.get('name', '?')}: <key>"
    return f"{scheme.get('type', '?')} {scheme.get('scheme', '')}".strip()


def _preamble(doc: dict[str, Any]) -> list[str]:
    servers = [s.get("url") for s in doc.get("servers") or [] if isinstance(s, dict) and s.get("url")]
    if not servers and doc.get("host"):
        servers = [f"https://{doc['host']}{doc.get('basePath', '')}"]
    schemes = resolve(doc, (doc.get("components") or {}).get("securitySchemes") or {})
    auth = [_auth(s) for s in (schemes.values() if isinstance(schemes, dict) else []) if isinstance(s, dict)]
    return ([f"Base URL: {servers[0]}"] if servers else []) + ([f"Auth: {', '.join(auth)}"] if auth else [])


def operations(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(section title, text) per operation, in document order. The text's first line is
    `METHOD /path`: task demonstrations check their calls against it."""
    title = str((doc.get("info") or {}).get("title") or "API")
    out = []
    for path, item in doc["paths"].items():
        item = resolve(doc, item)
        if not isinstance(item, dict):
            continue
        shared = item.get("parameters") or []
        for method in [m for m in item if m in METHODS]:  # document order
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            lines = [f"{method.upper()} {path}" + (f" (operationId: {op['operationId']})" if op.get("operationId") else "")]
            lines += [f"{key.title()}: {str(op[key]).strip()}" for key in ("summary", "description") if op.get(key)]
            lines += _preamble(doc)
            params = _parameters(doc, [*shared, *(op.get("parameters") or [])])
            lines += (["Parameters:", *params] if params else []) + _body(doc, op.get("requestBody"))
            lines += ["Responses:", *_responses(doc, op.get("responses"))]
            out.append((f"{title} > {method.upper()} {path}", "\n".join(lines)))
    return out


def overview(doc: dict[str, Any]) -> tuple[str, str] | None:
    """(title, text) of the spec's own description (auth, limits, versions), if it has one."""
    info = doc.get("info") or {}
    desc = info.get("description") if isinstance(info, dict) else None
    if not isinstance(desc, str) or not desc.strip():
        return None
    return str(info.get("title") or "API"), desc.strip()
