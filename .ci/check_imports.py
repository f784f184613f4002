"""Fail on an import that runs the wrong way between the layers (README, "Layout").

licenses <- devices <- usage <- api, portal <- dls_admin: a module may import its own package
and the ones below it, never one above or beside it. The server imports nothing of client/,
and the reference SDK client (client/dls_client) imports nothing of the server. Every import is
checked, function-level ones included. Exit 1 listing each wrong import."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RANK = {"licenses": 0, "devices": 1, "usage": 2, "api": 3, "portal": 3, "dls_admin": 4}
SERVER = set(RANK)


def imported(tree: ast.AST) -> list[tuple[int, str]]:
    """Every import, and every model looked up in the app registry by name (``get_model("api",
    "ApiToken")``, ``get_model("api.ApiToken")``): a lookup is an import that hides from this check."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "get_model":
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((node.lineno, first.value.split(".")[0] + ".models"))
    return found


def problem(package: str, sub: str, target: str) -> str | None:
    top = target.split(".")[0]
    if package in SERVER:
        if top == "client":
            return "the server imports nothing of client/"
        if top in RANK and top != package and RANK[top] >= RANK[package]:
            return f"{package} sits below {top}"
        return None
    if package == "client" and sub == "dls_client" and (top in SERVER or top == "django"):
        return "the reference SDK client imports nothing of the server"
    return None


def main() -> int:
    errors = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] not in SERVER | {"client"} or "migrations" in rel.parts:
            continue
        sub = rel.parts[1] if len(rel.parts) > 2 else ""
        for line, target in imported(ast.parse(path.read_text(), str(rel))):
            why = problem(rel.parts[0], sub, target)
            if why:
                errors.append(f"{rel}:{line}: imports {target}: {why}")
    print("\n".join(errors) or "imports run one way")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
