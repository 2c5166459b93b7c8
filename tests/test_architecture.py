"""The dependency direction (DESIGN.md §1), checked on every import statement of every package."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "capo": {"app", "worker", "storage", "capo_lab", "gradio", "sqlalchemy", "huey"},
    "storage": {"capo", "capo_lab", "app", "worker", "torch", "transformers", "peft", "gradio"},
    "worker": {"app", "gradio"},
}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_packages_import_only_in_the_allowed_direction() -> None:
    violations = []
    for package, forbidden in FORBIDDEN.items():
        assert (REPO / package).is_dir(), f"{package}/ is missing: the rule checks nothing"
        for path in sorted((REPO / package).rglob("*.py")):
            bad = imported_roots(path) & forbidden
            if bad:
                violations.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert violations == []


def test_the_ui_never_trains_or_writes_sql() -> None:
    forbidden = {"sqlalchemy", "storage", "torch", "peft"}
    app = REPO / "app"
    violations = [
        f"{p.relative_to(REPO)} imports {sorted(imported_roots(p) & forbidden)}"
        for p in sorted(app.rglob("*.py"))
        if imported_roots(p) & forbidden
    ]
    assert app.is_dir(), "app/ is missing: the rule checks nothing"
    assert violations == []


def test_the_checker_sees_forbidden_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import storage.models\nfrom gradio import Blocks\nfrom . import sibling\n")
    assert imported_roots(module) == {"storage", "gradio"}


def test_the_web_process_never_loads_the_model_stack(tmp_path: Path) -> None:
    """Building the whole UI imports neither the model loader nor torch: heat maps come from storage."""
    import os
    import subprocess
    import sys

    probe = (
        "import sys; from app.main import build_app; from capo_lab.service import LabService; "
        "build_app(LabService()); "
        "print(sorted(m for m in ('capo.models', 'capo.train', 'torch', 'transformers') if m in sys.modules))"
    )
    env = {**os.environ, "CAPO_LAB_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
    # nor later, from inside a callback: no import of the loader or trainer anywhere in the UI or its service
    for path in [REPO / "capo_lab" / "service.py", *sorted((REPO / "app").rglob("*.py"))]:
        modules = {n.module for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)}
        assert not modules & {"capo.models", "capo.train", "capo.generate"}, path
