"""Every package's allowed imports (README, "Allowed imports"), checked on every import statement.

First-party packages are allow-listed: a package may import only the lab's packages named for it.
Third-party libraries are deny-listed where a rule needs it (the trainer writes no SQL, storage
trains nothing, the UI neither trains nor writes SQL).
"""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"capo", "capo_lab", "storage", "worker", "app", "bench", "tests"}
# folder (relative to the repo) → (first-party packages it may import, third-party libraries it must not)
RULES = {
    "capo": ({"capo"}, {"gradio", "sqlalchemy", "huey"}),
    "storage": ({"storage"}, {"torch", "transformers", "peft", "gradio", "huey"}),
    "capo_lab": ({"capo", "capo_lab", "storage"}, {"gradio", "huey"}),  # the services, minus cli/
    "capo_lab/cli": ({"capo", "capo_lab", "storage", "worker", "app"}, {"gradio"}),
    "worker": ({"capo", "capo_lab", "storage", "worker"}, {"gradio"}),
    "app": ({"app", "capo", "capo_lab"}, {"sqlalchemy", "torch", "peft", "transformers"}),
}


def files_of(folder: str) -> list[Path]:
    """The folder's modules; a folder that has its own rule (``capo_lab/cli``) is left to it."""
    nested = [REPO / other for other in RULES if other != folder and other.startswith(folder + "/")]
    return [p for p in sorted((REPO / folder).rglob("*.py")) if not any(p.is_relative_to(n) for n in nested)]


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_packages_import_only_what_they_are_allowed() -> None:
    violations = []
    for folder, (allowed, denied) in RULES.items():
        assert (REPO / folder).is_dir(), f"{folder}/ is missing: the rule checks nothing"
        for path in files_of(folder):
            roots = imported_roots(path)
            bad = (roots & FIRST_PARTY - allowed) | (roots & denied)
            if bad:
                violations.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert violations == []


def test_services_never_import_the_worker() -> None:
    """Enqueuing is passed in: no service module names ``worker`` (the CLI, a front end, may)."""
    assert "worker" not in RULES["capo_lab"][0]
    assert files_of("capo_lab") and not any(
        p.is_relative_to(REPO / "capo_lab" / "cli") for p in files_of("capo_lab")
    )


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
        "from worker.tasks import enqueue_evaluation, enqueue_run; "
        "build_app(LabService(None, enqueue_run, enqueue_evaluation)); "
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
