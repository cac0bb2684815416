"""Every TensorRT attribute and method edgessl and the device kit use exists in TensorRT 10.x and
11.x, or is used only behind the major-version check that guards it.

The API surface is data (tests/data/tensorrt_api.json), extracted from NVIDIA's binding sources
(``python/src/infer/pyCore.cpp``, ``python/src/parsers/pyOnnx.cpp`` and the other pybind11
files, plus the wheel's ``tensorrt/__init__.py``) at release/10.0, v10.16, v11.0 and v11.1 by
tests/data/tensorrt_api_extract.py; each version records the ref and commit it was read from.

What is collected (ast, no TensorRT needed): ``trt.X`` and ``trt.X.Y`` where ``trt`` (or
``tensorrt``) is the tensorrt module, and ``obj.m`` where ``obj`` holds a TensorRT object, whose
class follows from the call that made it (``trt.Builder(...)``, ``builder.create_network()``,
... see RETURNS, from the binding docstrings). A use inside ``if major < 11:`` (a comparison of
a name containing ``major`` with an integer literal) needs to exist only in the versions that
branch reaches; ``getattr``/``hasattr`` on TensorRT objects is refused, since it hides the name.
"""

from __future__ import annotations

import ast
import json
import operator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
API = json.loads((ROOT / "tests" / "data" / "tensorrt_api.json").read_text())
SURFACE = {v: {cls: set(members.split()) for cls, members in d["api"].items()}
           for v, d in API["versions"].items()}
MAJOR = {v: int(v.split(".")[0]) for v in SURFACE}
MODULE_NAMES = ("trt", "tensorrt")
# (class, method) -> class of the returned object (pyCore.cpp / pyOnnx.cpp docstrings)
RETURNS = {
    ("Builder", "create_network"): "INetworkDefinition",
    ("Builder", "create_builder_config"): "IBuilderConfig",
    ("Builder", "create_optimization_profile"): "IOptimizationProfile",
    ("Builder", "build_serialized_network"): "IHostMemory",
    ("INetworkDefinition", "get_input"): "ITensor",
    ("Runtime", "deserialize_cuda_engine"): "ICudaEngine",
    ("ICudaEngine", "create_execution_context"): "IExecutionContext",
    ("OnnxParser", "get_error"): "ParserError",
}
COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
           ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne}


@dataclass(frozen=True)
class Use:
    """One TensorRT name used at ``where``, reachable in ``versions``."""

    owner: str  # "" for a module-level name
    name: str
    where: str
    versions: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"trt.{self.owner + '.' if self.owner else ''}{self.name}"


def _version_guard(test: ast.expr):
    """``f(major) -> bool`` for ``NAME op INT`` where NAME contains 'major', else None."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and type(test.ops[0]) in COMPARE):
        return None
    left, right, op = test.left, test.comparators[0], COMPARE[type(test.ops[0])]

    def named_major(e: ast.expr) -> bool:
        name = e.id if isinstance(e, ast.Name) else e.attr if isinstance(e, ast.Attribute) else ""
        return "major" in name.lower()

    def literal(e: ast.expr) -> bool:
        return isinstance(e, ast.Constant) and isinstance(e.value, int)

    if named_major(left) and literal(right):
        return lambda m: op(m, right.value)
    if literal(left) and named_major(right):
        return lambda m: op(left.value, m)
    return None


class Collector(ast.NodeVisitor):
    """TensorRT uses of one module (see the module doc) and the problems found on the way."""

    def __init__(self, tree: ast.Module, filename: str):
        self.filename, self.tree = filename, tree
        self.parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        self.types: dict[tuple[ast.AST | None, str], str] = {}
        self.uses: list[Use] = []
        self.problems: list[str] = []
        # module-level names that are classes or enums (TensorRT spells them capitalised)
        self.classes = {c for s in SURFACE.values() for c in s[""] if c[:1].isupper()}
        for _ in range(4):  # assignments reach a fixpoint in a few passes
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    self._bind(node.targets[0], node.value)

    def _scope(self, node: ast.AST, cls: bool = False) -> ast.AST | None:
        kinds = (ast.ClassDef,) if cls else (ast.FunctionDef, ast.AsyncFunctionDef)
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, kinds):
                return node
        return None

    def _key(self, target: ast.expr) -> tuple[ast.AST | None, str] | None:
        if isinstance(target, ast.Name):
            return self._scope(target), target.id
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                and target.value.id == "self":
            return self._scope(target, cls=True), "self." + target.attr
        return None

    def _bind(self, target: ast.expr, value: ast.expr) -> None:
        key, kind = self._key(target), self.type_of(value)
        if key and kind:
            self.types[key] = kind

    def is_module(self, e: ast.expr) -> bool:
        return isinstance(e, ast.Name) and e.id in MODULE_NAMES

    def type_of(self, e: ast.expr) -> str | None:
        """The TensorRT class of the object ``e`` evaluates to, if known."""
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute):
            if self.is_module(e.func.value):
                return e.func.attr if e.func.attr in self.classes else None
            owner = self.type_of(e.func.value)
            return RETURNS.get((owner, e.func.attr)) if owner else None
        if isinstance(e, (ast.Name, ast.Attribute)):
            key = self._key(e)
            if key and key in self.types:
                return self.types[key]
            if isinstance(e, ast.Attribute) and self.is_module(e.value) \
                    and e.attr in self.classes:
                return e.attr  # the class object itself: trt.BuilderFlag
        return None

    def reachable(self, node: ast.AST) -> tuple[str, ...]:
        """Versions whose major passes every version guard around ``node``."""
        versions = list(SURFACE)
        child = node
        while child in self.parents:
            parent = self.parents[child]
            if isinstance(parent, (ast.If, ast.IfExp)):
                guard = _version_guard(parent.test)
                if guard is not None and child is not parent.test:
                    in_body = (child in parent.body if isinstance(parent, ast.If)
                               else child is parent.body)
                    versions = [v for v in versions if guard(MAJOR[v]) == in_body]
            child = parent
        return tuple(versions)

    def where(self, node: ast.AST) -> str:
        return f"{self.filename}:{node.lineno}"

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "tensorrt" and (alias.asname or "tensorrt") not in MODULE_NAMES:
                self.problems.append(f"{self.where(node)}: import tensorrt as {alias.asname}: "
                                     "name the module trt")

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr") \
                and node.args and (self.is_module(node.args[0]) or self.type_of(node.args[0])):
            self.problems.append(f"{self.where(node)}: {node.func.id}() on a TensorRT object "
                                 "hides the name from this check; use the attribute")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        versions = self.reachable(node)
        if self.is_module(node.value):
            self.uses.append(Use("", node.attr, self.where(node), versions))
        else:
            owner = self.type_of(node.value)
            if owner:
                self.uses.append(Use(owner, node.attr, self.where(node), versions))
        self.generic_visit(node)


def conformance_problems(source: str, filename: str) -> list[str]:
    """Every way ``source`` departs from the TensorRT API of the versions its code reaches."""
    c = Collector(ast.parse(source), filename)
    c.visit(c.tree)
    problems = list(c.problems)
    for use in c.uses:
        missing = [v for v in use.versions
                   if use.owner not in SURFACE[v] or use.name not in SURFACE[v][use.owner]]
        if any(use.owner not in SURFACE[v] for v in use.versions):
            problems.append(f"{use.where}: {use.label}: class {use.owner} is not in "
                            "tests/data/tensorrt_api.json (add it to CLASSES in "
                            "tensorrt_api_extract.py and extract again)")
        elif missing:
            problems.append(f"{use.where}: {use.label} does not exist in TensorRT "
                            f"{', '.join(missing)}: guard it with a major-version check")
    return problems


def project_files() -> list[Path]:
    return sorted([*(ROOT / "edgessl").rglob("*.py"), *(ROOT / "export").rglob("*.py")])


def test_edgessl_and_the_kit_conform_to_tensorrt_10_and_11():
    problems, used = [], set()
    for path in project_files():
        source = path.read_text()
        rel = str(path.relative_to(ROOT))
        problems += conformance_problems(source, rel)
        c = Collector(ast.parse(source), rel)
        c.visit(c.tree)
        used |= {u.label for u in c.uses}
    assert problems == []
    # the check sees the real build and run path (not vacuous): names from every stage
    assert {"trt.Builder", "trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED",
            "trt.OnnxParser.parse_from_file", "trt.IBuilderConfig.set_memory_pool_limit",
            "trt.IOptimizationProfile.set_shape", "trt.Builder.build_serialized_network",
            "trt.Runtime.deserialize_cuda_engine", "trt.ICudaEngine.get_tensor_profile_shape",
            "trt.IExecutionContext.set_input_shape", "trt.IExecutionContext.execute_async_v3",
            "trt.INetworkDefinition.get_input", "trt.ITensor.shape",
            "trt.BuilderFlag.FP16", "trt.BuilderFlag.INT8"} <= used


PLANTED = '''
import tensorrt as trt

def build(config, network):
    config.set_flag(trt.BuilderFlag.FP16)
'''


def test_catches_a_planted_unguarded_fp16_flag():
    problems = conformance_problems(PLANTED, "planted.py")
    assert len(problems) == 1
    assert problems[0].startswith("planted.py:5: trt.BuilderFlag.FP16 does not exist in "
                                  "TensorRT 11.0, 11.1")


@pytest.mark.parametrize("guard, wrong", [("if major < 11:", "if major >= 11:"),
                                          ("if trt_major <= 10:", "if trt_major > 10:"),
                                          ("if 11 > major:", "if 11 <= major:")])
def test_guarded_flag_passes_and_the_wrong_branch_fails(guard, wrong):
    good = PLANTED.replace("    config.set_flag", f"    {guard}\n        config.set_flag")
    assert conformance_problems(good, "g.py") == []
    bad = PLANTED.replace("    config.set_flag", f"    {wrong}\n        config.set_flag")
    bad += "    else:\n        config.set_flag(trt.BuilderFlag.INT8)\n"
    found = conformance_problems(bad, "g.py")
    assert len(found) == 1 and found[0].startswith("g.py:6: trt.BuilderFlag.FP16 does not "
                                                   "exist in TensorRT 11.0, 11.1")


def test_methods_are_checked_through_the_objects_that_return_them():
    source = '''
import tensorrt as trt
logger = trt.Logger(trt.Logger.WARNING)
builder = trt.Builder(logger)
config = builder.create_builder_config()
config.set_calibration_profile(None)
engine = trt.Runtime(logger).deserialize_cuda_engine(b"")
engine.create_execution_context().execute_async_v2([], 0)
getattr(trt.BuilderFlag, "FP16")
'''
    problems = conformance_problems(source, "m.py")
    assert any("m.py:6: trt.IBuilderConfig.set_calibration_profile" in p
               and "11.0, 11.1" in p for p in problems)
    assert any("m.py:8: trt.IExecutionContext.execute_async_v2 does not exist in TensorRT "
               "10.0, 10.16, 11.0, 11.1" in p for p in problems)
    assert any("m.py:9: getattr()" in p for p in problems)
    assert len(problems) == 3


def test_api_data_records_its_source():
    assert API["source"].startswith("github.com/NVIDIA/TensorRT")
    for version, data in API["versions"].items():
        assert len(data["commit"]) == 40 and data["ref"].endswith(version)
    # the facts the TensorRT issue rests on, as the data holds them
    assert "FP16" in SURFACE["10.16"]["BuilderFlag"]
    assert "FP16" not in SURFACE["11.1"]["BuilderFlag"]
    assert all("STRONGLY_TYPED" in s["NetworkDefinitionCreationFlag"] for s in SURFACE.values())
    assert all("execute_async_v3" in s["IExecutionContext"] for s in SURFACE.values())
