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


# ---- what the web process can reach -------------------------------------------------------------
# The UI's actions that load a tokenizer on purpose (the Data tab's statistics and render), as
# (module, function): the only import edges to the model stack the web process may follow.
TOKENIZER_ACTIONS = {("capo_lab.datasets", "token_counter"), ("capo_lab.rendering", "render_dataset_pairs")}
MODEL_STACK = {"torch", "transformers", "peft", "bitsandbytes", "accelerate"}


def module_file(module: str) -> Path | None:
    base = REPO.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def import_edges(module: str) -> list[tuple[str, str]]:
    """(imported module, enclosing top-level function or "") for every import statement of
    ``module`` (the lab uses absolute imports only); for ``from a import b`` also ``a.b``, which is
    a module when ``b`` is one. Imports under ``if TYPE_CHECKING:`` never run and are left out."""
    edges = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            is_function = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            inner = child.name if is_function and not function else function
            if isinstance(child, ast.Import):
                edges.extend((alias.name, function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                assert child.level == 0, f"{module}: a relative import the walk cannot follow"
                edges.append((child.module, function))
                edges.extend((f"{child.module}.{alias.name}", function) for alias in child.names)
            visit(child, inner)

    visit(ast.parse(module_file(module).read_text(encoding="utf-8")), "")
    return edges


def reachable_from(roots: list[str]) -> dict[str, str]:
    """Every module reachable from ``roots`` by import edges, skipping TOKENIZER_ACTIONS' edges;
    maps each to the chain that reaches it."""
    chains = {root: root for root in roots}
    todo = list(roots)
    while todo:
        module = todo.pop()
        for target, function in import_edges(module):
            if (module, function) in TOKENIZER_ACTIONS:
                continue
            for name in {target, target.split(".")[0]}:
                if name in chains or (name.split(".")[0] in FIRST_PARTY and module_file(name) is None):
                    continue
                chains[name] = f"{chains[module]} → {name}"
                if module_file(name) is not None and name.split(".")[0] in FIRST_PARTY:
                    todo.append(name)
    return chains


def web_roots() -> list[str]:
    app = [".".join(p.relative_to(REPO).with_suffix("").parts) for p in sorted((REPO / "app").glob("*.py"))]
    return [m.removesuffix(".__init__") for m in app] + ["capo_lab.service"]


def test_nothing_the_web_process_can_reach_imports_the_model_stack() -> None:
    """Every import the UI and its service can reach, at the top of a module or inside a function,
    stays clear of torch, transformers and peft — except the Data tab's tokenizer actions."""
    chains = reachable_from(web_roots())
    assert "capo_lab.service" in chains and "capo.config" in chains  # the walk reaches through the services
    assert [chains[m] for m in sorted(MODEL_STACK & set(chains))] == []


def test_the_reachability_walk_follows_imports_inside_functions() -> None:
    chains = reachable_from(["capo_lab.datasets"])
    assert "capo_lab.settings" in chains and "capo.models" not in chains  # token_counter's edge is skipped
    assert "torch" in reachable_from(["capo.models"])


def test_queuing_through_the_api_loads_no_model_stack(tmp_path: Path) -> None:
    """Import, launch (a model-template check refused, then a run queued) and cancel, as the web
    process does: torch, transformers and peft stay unloaded (``check_chat_template`` loaded a
    tokenizer before)."""
    import json
    import os
    import subprocess
    import sys

    source = "Sentence {} about the mountain weather"
    rows = [{"direction": "en-de", "src": source.format(i), "mt": "x", "pe": f"y {i}"} for i in range(8)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    probe = f"""
import sys
from capo_lab.errors import LabError
from capo_lab.service import LabService
lab = LabService(enqueue=lambda run_id: None)
lab.import_dataset("d", [], [{str(data)!r}], per_direction=2, min_source_chars=10)
raw = lab.preset("smoke").model_dump(mode="json")
raw["data"]["dataset"] = "d"
try:
    lab.launch({{**raw, "data": {{**raw["data"], "chat_template": "model"}}}})
except LabError as err:
    print("refused:", err)
(run_id,) = lab.launch(raw)
print(lab.cancel(run_id))
print(sorted(m for m in ("torch", "transformers", "peft", "capo.models") if m in sys.modules))
"""
    env = {**os.environ, "CAPO_LAB_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-c", probe]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("refused: data.chat_template: model 'tiny-random-llama' has no chat template")
    assert lines[1] == "cancelled before it started" and lines[-1] == "[]"
