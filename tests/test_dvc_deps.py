"""dvc.yaml's `deps` and `params` cannot drift from the code: every module a stage script imports
(transitively, inside src/assay) and every params section it reads must be listed, or editing
them would leave `dvc repro` reporting "up to date" for outputs the current code would not make."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "assay"
WHOLE = "*"  # marker: the stage reads every params section (e.g. params.model_dump())


def module_file(name: str) -> Path | None:
    """src/assay/x.py or src/assay/x/__init__.py for the dotted module name, else None."""
    base = SRC.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _with_parents(name: str) -> list[str]:
    """assay.llm.client -> [assay, assay.llm, assay.llm.client]: importing runs every __init__."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _imported(tree: ast.AST) -> list[str]:
    """Modules of `assay` an AST imports anywhere (function-level imports too)."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]  # a submodule, when it is one
    return [n for n in names if n.split(".")[0] == PACKAGE]


def import_closure(script: Path) -> dict[Path, ast.Module]:
    """Every src/assay file the script imports, directly or through other modules, with its AST."""
    seen: dict[Path, ast.Module] = {}
    todo = _imported(ast.parse(script.read_text(encoding="utf-8")))
    while todo:
        for name in _with_parents(todo.pop()):
            path = module_file(name)
            if path is not None and path not in seen:
                seen[path] = ast.parse(path.read_text(encoding="utf-8"))
                todo += _imported(seen[path])
    return seen


def _chain(node: ast.Attribute) -> tuple[str, list[str]] | None:
    """`params.filter.dedup` -> ("params", ["filter", "dedup"]); None unless rooted at a name."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.insert(0, node.attr)
        node = node.value
    return (node.id, attrs) if isinstance(node, ast.Name) else None


def _functions(trees: list[ast.Module]) -> dict[str, list[ast.FunctionDef]]:
    found: dict[str, list[ast.FunctionDef]] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.setdefault(node.name, []).append(node)
    return found


def _callee_params(call: ast.Call, var: str, functions: dict) -> list[tuple[ast.FunctionDef, str]]:
    """(function, its parameter name) for each closure function that `call` passes `var` to."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)
    out = []
    for fn in functions.get(name, []):
        args = [a.arg for a in fn.args.posonlyargs + fn.args.args]
        for i, arg in enumerate(call.args):
            if isinstance(arg, ast.Name) and arg.id == var and i < len(args):
                out.append((fn, args[i]))
        out += [(fn, k.arg) for k in call.keywords if isinstance(k.value, ast.Name) and k.value.id == var]
    return out


def _outer_chains(fn: ast.AST, var: str) -> set[str]:
    """Dotted keys of the outermost `var.a.b` expressions in `fn` (`var.a` inside `var.a.b` skipped)."""
    nodes = [n for n in ast.walk(fn) if isinstance(n, ast.Attribute)]
    inner = {id(n.value) for n in nodes}
    chains = (_chain(n) for n in nodes if id(n) not in inner)
    return {".".join(c[1]) for c in chains if c and c[0] == var}


def params_read(body: ast.FunctionDef, var: str, functions: dict) -> set[str]:
    """Dotted params keys `body` reads through `var`, following `var` into the functions it is
    passed to; WHOLE when a method of the params object itself is called (model_dump...)."""
    keys: set[str] = set()
    todo, seen = [(body, var)], set()
    while todo:
        fn, name = todo.pop()
        if (id(fn), name) in seen:
            continue
        seen.add((id(fn), name))
        keys |= _outer_chains(fn, name)
        todo += [c for n in ast.walk(fn) if isinstance(n, ast.Call) for c in _callee_params(n, name, functions)]
    return {WHOLE if k.split(".")[0] in METHODS else k for k in keys}


METHODS = {"model_dump", "model_dump_json", "model_copy"}


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def _key_covered(key: str, listed: list[str]) -> bool:
    return any(key == k or key.startswith(k + ".") for k in listed)


def _listed_params(stage: dict) -> list[str]:
    out: list[str] = []
    for entry in stage.get("params", []):
        out += list(entry) if isinstance(entry, dict) else [entry]  # {file: [keys]} or a key
    return out


def missing(dvc_yaml: Path, root: Path = ROOT) -> dict[str, list[str]]:
    """{stage: [what its dvc.yaml entry lacks]}: module files not covered by `deps` and params
    keys not covered by `params`; empty when everything is listed."""
    stages = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"]
    sections = list(yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8")))
    problems: dict[str, list[str]] = {}
    for name, stage in stages.items():
        script = root / "stages" / f"{name}.py"
        closure = import_closure(script)
        deps = [str(d) for d in stage.get("deps", [])]
        lacks = [p.relative_to(SRC.parent).as_posix() for p in sorted(closure)]
        lacks = [p for p in [f"stages/{name}.py", *lacks] if not _covered(p, deps)]
        tree = ast.parse(script.read_text(encoding="utf-8"))
        body = _functions([tree])["body"][0]
        keys = params_read(body, body.args.args[1].arg, _functions([tree, *closure.values()]))
        keys = set(sections) if WHOLE in keys else keys
        listed = _listed_params(stage)
        lacks += [f"params: {k}" for k in sorted(keys) if not _key_covered(k, listed)]
        if lacks:
            problems[name] = lacks
    return problems


def test_every_stage_lists_its_code_and_params():
    problems = missing(ROOT / "dvc.yaml")
    assert not problems, "dvc.yaml lacks deps (add them to the stage's deps/params): " + "; ".join(
        f"{stage}: {', '.join(items)}" for stage, items in problems.items())


def test_a_dropped_dep_is_named(tmp_path):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "stages").symlink_to(ROOT / "stages")
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    stages["stages"]["generate"]["deps"].remove("src/assay/config.py")
    stages["stages"]["filter"]["params"].remove("seed")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(stages), encoding="utf-8")
    problems = missing(tmp_path / "dvc.yaml", tmp_path)
    assert problems.get("generate") == ["src/assay/config.py"], problems
    assert problems.get("filter") == ["params: seed"], problems


def test_closure_follows_packages_and_from_imports():
    closure = {p.relative_to(ROOT).as_posix() for p in import_closure(ROOT / "stages" / "generate.py")}
    assert {"src/assay/__init__.py", "src/assay/llm/__init__.py", "src/assay/llm/cache.py",
            "src/assay/config.py", "src/assay/stage.py"} <= closure
    assert "src/assay/critique/loop.py" not in closure


def test_stage_paths_come_only_from_dvc_yaml(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "stages" / "ingest.py"), "--no-mlflow"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "--seeds" in done.stderr and "--out" in done.stderr and "--metrics" in done.stderr, done.stderr
