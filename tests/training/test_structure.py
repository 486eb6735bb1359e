"""The shape of training/ (issue 17): no import circle, nothing imported back up from app/, and no
TensorFlow or Keras anywhere (they left the project with the Keras modules). Read from the source with `ast`,
lazy imports inside functions included, so nothing needs to be importable to be checked."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "training"
KERAS_MODULES = {"train", "architectures", "keras_apps", "vggface", "keras_faceres", "augment", "export"}  # retired


def imports() -> dict[str, set[str]]:
    """module -> the modules it imports: `training.x` as `x`, anything else by its top-level name."""
    graph = {}
    for path in PKG.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    found |= {node.module} if node.module else {a.name for a in node.names}
                elif node.level == 0 and node.module:
                    top = node.module.split(".")
                    found.add(top[1] if top[0] == "training" and len(top) > 1 else top[0])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
        graph[path.stem] = found
    return graph


def test_no_import_circle_in_training():
    graph = imports()
    local = {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for d in sorted(local[m]):
            if state.get(d) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(d) :] + [d]))
            if d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(local):
        if m not in state:
            visit(m, [m])


def test_nothing_imports_back_up_into_app():
    assert not [m for m, deps in imports().items() if "app" in deps]


def test_no_module_imports_tensorflow_keras_or_the_retired_keras_path():
    graph = imports()
    assert {"finetune", "nets", "compact", "mobilenet", "faceres", "data", "evaluate", "ensemble"} <= set(graph)
    assert not set(graph) & KERAS_MODULES
    for m, deps in graph.items():
        assert not deps & (KERAS_MODULES | {"keras", "tensorflow", "tf2onnx"}), (m, deps & KERAS_MODULES)
