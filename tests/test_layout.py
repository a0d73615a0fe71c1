"""Project rules that code review alone would miss."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import ROOT


def test_library_never_imports_streamlit():
    offenders = []
    for path in (ROOT / "beatmap").rglob("*.py"):
        if "ui" in path.relative_to(ROOT / "beatmap").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in {"streamlit", "streamlit_folium"}]
    assert offenders == []


def test_importing_the_library_loads_no_streamlit():
    code = (
        "import sys, beatmap.cli, beatmap.report, beatmap.ingest, beatmap.demo, beatmap.render; "
        "print(any(m.split('.')[0] in ('streamlit', 'streamlit_folium') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_no_module_reaches_into_another_modules_private_names():
    offenders = []
    for path in [*(ROOT / "beatmap").rglob("*.py"), ROOT / "app.py"]:
        tree = ast.parse(path.read_text())
        modules = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("beatmap")
            for alias in node.names
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("beatmap"):
                offenders += [
                    f"{path.name}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
            ):
                offenders.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert offenders == []
