"""The package layout is the architecture: dependencies run one way, modules stay small, the
README's layout table is the tree, and every check defined is a check registered.

Units: checks/, feeds/, reports/, each subpackage of warpagent/ and each module directly in
warpagent/ (errors, text, clock: the foundation every stage may use). A unit may import
another only if that one never imports it back, directly or through others.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import checks
from checks.base import Check
from tests.conftest import ROOT

PACKAGES = ("warpagent", "checks", "feeds", "reports")
MAX_LINES = 400

# Function-level imports of warpagent's own modules, each with the heavy optional dependency
# that justifies importing it only when used.
LAZY_INTERNAL: dict[tuple[str, str], str] = {
    ("warpagent.cli.commands_hub", "warpagent.hub.server"): "medallion, Flask and cheroot: only the hub serves",
    ("warpagent.hub.aggregate", "warpagent.hub.backend"): "medallion and Flask: only the hub machine has its store",
    # a scan pays at start-up only for the readers its estate uses (issue 34: 0.4 s of imports)
    ("warpagent.scan.gather", "warpagent.evidence.probes"): "paramiko and the probe clients: opt-in probes only",
    ("warpagent.scan.gather", "warpagent.evidence.ssh"): "paramiko: estates with SSH evidence only",
    ("warpagent.scan.gather", "warpagent.evidence.directory"): "ldap3: estates with a directory only",
    ("warpagent.scan.gather", "warpagent.evidence.sysvol"): "smbprotocol: estates with a directory only",
    ("warpagent.scan.gather", "warpagent.evidence.tenants"): "the ScubaGear and Maester readers: M365 estates only",
    ("warpagent.scan.gather", "warpagent.evidence.domains"): "dnspython: estates with domains only",
}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    lazy: bool  # inside a function, not at module level
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _top_level_nodes(tree: ast.Module) -> set[ast.AST]:
    top: set[ast.AST] = set()
    for node in tree.body:
        top.add(node)
        if isinstance(node, ast.If | ast.Try):  # TYPE_CHECKING blocks and guarded imports
            top.update(ast.walk(node))
    return top


def imports() -> Iterator[Import]:
    known = modules()
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = _top_level_nodes(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
            for target in targets:
                while target not in known and "." in target:
                    target = target.rpartition(".")[0]
                if target in known and target != name:
                    yield Import(name, target, node not in top, getattr(node, "lineno", 0))


def unit(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "warpagent":
        return parts[0]
    if len(parts) >= 2 and (ROOT / "warpagent" / parts[1]).is_dir():
        return ".".join(parts[:2])
    return module


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_modules_even_through_function_level_imports() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for item in imports():
        edges[item.importer].add(item.imported)
    assert cycles(edges) == []


def test_no_cycle_between_units() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    why: dict[tuple[str, str], str] = {}
    for item in imports():
        a, b = unit(item.importer), unit(item.imported)
        if a != b:
            edges[a].add(b)
            why.setdefault((a, b), f"{item.importer}:{item.line} imports {item.imported}")
    found = cycles(edges)
    assert found == [], [sorted(why[(a, b)] for a in c for b in c if (a, b) in why) for c in found]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_function_level_imports_of_our_own_modules_are_only_the_justified_ones() -> None:
    lazy = {(i.importer, i.imported): i.line for i in imports() if i.lazy}
    assert sorted(set(lazy) - set(LAZY_INTERNAL)) == []
    assert sorted(set(LAZY_INTERNAL) - set(lazy)) == [], "remove the allowance: the import is no longer lazy"


def test_checks_judge_parsed_evidence_and_never_parse_it() -> None:
    """Checks are pure judgements of the model: parsing raw text (DNS records, files) is the
    evidence stage's (issue 29: checks/domains.py parsed DNS records itself)."""
    parsing = sorted({(i.importer, i.imported) for i in imports()
                      if i.importer.startswith("checks") and i.imported.startswith(("warpagent.evidence",
                                                                                     "warpagent.collect"))})
    assert parsing == []


def test_no_module_over_the_size_limit() -> None:
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_the_readme_layout_table_is_the_tree() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `(warpagent/[a-z_]+/)` \|", text, flags=re.MULTILINE))
    subpackages = {f"warpagent/{p.name}/" for p in (ROOT / "warpagent").iterdir()
                   if p.is_dir() and (p / "__init__.py").exists()}
    assert listed == subpackages


def test_every_check_defined_in_a_category_module_is_registered_once() -> None:
    registered = {c.id: c for c in checks.ALL_CHECKS}
    assert len(registered) == len(checks.ALL_CHECKS), "two checks share an id"
    defined = [value for path in sorted((ROOT / "checks").glob("*.py"))
               for value in vars(importlib.import_module(f"checks.{path.stem}")).values() if isinstance(value, Check)]
    assert {c.id for c in defined} == set(registered)
    assert all(registered[c.id] is c for c in defined)
    assert [c.id for c in checks.ALL_CHECKS] == sorted(registered)


def test_no_private_function_or_constant_is_left_unused() -> None:
    """Dead code: a module-level `_name` its own module never mentions again (decorated functions
    are used by their decorator)."""
    unused = []
    for name, path in modules().items():
        text = path.read_text(encoding="utf-8")
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.decorator_list:
                defined = [node.name]
            elif isinstance(node, ast.Assign):
                defined = [t.id for t in node.targets if isinstance(t, ast.Name)]
            else:
                continue
            unused += [f"{name}.{d}" for d in defined if d.startswith("_") and not d.startswith("__")
                       and len(re.findall(rf"\b{re.escape(d)}\b", text)) < 2]
    assert unused == []


@pytest.mark.parametrize(("ci", "code", "said"), [("1", 1, "skipped in CI, where it must run: needs root"),
                                                  ("", 0, "1 skipped")])
def test_in_ci_a_skipped_test_is_a_failed_test(tmp_path: Path, ci: str, code: int, said: str) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text("import pytest\n\n\ndef test_probe():\n    pytest.skip('needs root')\n", encoding="utf-8")
    env = {**os.environ, "WARPAGENT_CI": ci, "COLUMNS": "300"}
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
                          "--rootdir", str(tmp_path), str(probe)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120, check=False)
    assert ran.returncode == code, ran.stdout + ran.stderr
    assert said in ran.stdout
