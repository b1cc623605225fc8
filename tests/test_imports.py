"""The package's import graph: no cycles, and every module imports only modules listed above it in
ARCHITECTURE.md's module table (its order is the data flow's, bottom up)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The one cycle on record (ARCHITECTURE.md says why); anything else is new.
KNOWN_CYCLE = {("data", "folder")}  # data hands folder: datasets to folder, which uses data's file readers


def imports(path: Path) -> set[str]:
    """gan_nas modules that ``path`` imports, at top level or inside functions, TYPE_CHECKING excepted."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "gan_nas":
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gan_nas."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("gan_nas.")}
    return found - {path.stem}


def documented_order() -> list[str]:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    return re.findall(r"^\| `(\w+)\.py` \|", text, flags=re.M)


def test_every_module_is_documented_once():
    order = documented_order()
    modules = sorted(p.stem for p in (ROOT / "gan_nas").glob("*.py") if p.stem != "__init__")
    assert sorted(order) == modules


def test_modules_import_only_those_above_them():
    order = documented_order()
    rank = {m: i for i, m in enumerate(order)}
    upward = [(m, d) for m in order for d in imports(ROOT / "gan_nas" / f"{m}.py")
              if rank[d] > rank[m] and (m, d) not in KNOWN_CYCLE]
    assert upward == []


def test_the_checker_sees_lazy_imports():
    # report imports runs at the top and builder inside a function: both count
    assert {"runs", "builder"} <= imports(ROOT / "gan_nas" / "report.py")
