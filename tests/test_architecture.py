"""The dependency direction of DESIGN.md §1, checked on every import statement."""

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
        for path in sorted((REPO / package).rglob("*.py")) if (REPO / package).exists() else []:
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
        if app.exists() and imported_roots(p) & forbidden
    ]
    assert violations == []


def test_the_checker_sees_forbidden_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import storage.models\nfrom gradio import Blocks\nfrom . import sibling\n")
    assert imported_roots(module) == {"storage", "gradio"}
