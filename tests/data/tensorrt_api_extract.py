"""Extract the TensorRT Python API surface from NVIDIA's binding sources into
``tensorrt_api.json`` (the data ``tests/test_tensorrt_conformance.py`` checks edgessl against).

    python tests/data/tensorrt_api_extract.py /path/to/NVIDIA/TensorRT [--write]

Reads, at each release ref below, the pybind11 sources ``python/src/infer/*.cpp`` and
``python/src/parsers/pyOnnx.cpp`` (every ``py::class_``/``py::enum_`` bound on the module and
its ``.def``, ``.def_property*``, ``.def_readwrite``, ``.def_static`` and ``.value`` names) and the
package's ``python/packaging/bindings_wheel/tensorrt/__init__.py`` (module-level functions such
as ``nptype``). A name bound to a class variable after its declaration (``x.def(...)``) is
attributed to the last class declared before it, which is how these files are written.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REFS = {"10.0": "release/10.0", "10.16": "v10.16", "11.0": "v11.0", "11.1": "v11.1"}
SOURCES = ("python/src/infer/pyCore.cpp", "python/src/infer/pyFoundationalTypes.cpp",
           "python/src/infer/pyGraph.cpp", "python/src/infer/pyInt8.cpp",
           "python/src/infer/pyPlugin.cpp", "python/src/infer/pyAlgorithmSelector.cpp",
           "python/src/parsers/pyOnnx.cpp")
INIT = "python/packaging/bindings_wheel/tensorrt/__init__.py"
# Classes whose members are kept (every module-level name is kept): what building, loading and
# running an engine touches. Using a member of another class fails the conformance test until
# the class is added here and the data re-extracted.
CLASSES = ("Builder", "BuilderFlag", "DataType", "ICudaEngine", "IExecutionContext",
           "IHostMemory", "ILogger", "INetworkDefinition", "IOptimizationProfile", "ITensor",
           "IBuilderConfig", "Logger", "MemoryPoolType", "NetworkDefinitionCreationFlag",
           "OnnxParser", "ParserError", "QuantizationFlag", "Runtime", "Severity", "TensorIOMode")
DECL = re.compile(r"py::(class_|enum_)<")
HEAD = re.compile(r'\s*(\w*)\s*[({]\s*(\w+)\s*,\s*"(\w+)"')
MEMBER = re.compile(r'\.(?:def|def_property|def_property_readonly|def_readwrite|def_readonly|'
                    r'def_static|value)\(\s*"(\w+)"')
TOP = re.compile(r"^(?:def|class) (\w+)|^(\w+) *=", re.M)


def _template_args(text: str, i: int) -> tuple[list[str], int]:
    """The comma-separated template arguments starting after the ``<`` at ``i - 1``."""
    depth, args, cur = 1, [], ""
    while depth:
        c = text[i]
        depth += {"<": 1, ">": -1}.get(c, 0)
        if c == "," and depth == 1:
            args.append(cur.strip())
            cur = ""
        elif depth:
            cur += c
        i += 1
    return [*args, cur.strip()], i


def declarations(text: str) -> list[dict]:
    """Every class/enum binding: position, C++ type and bases, variable, parent, Python name."""
    out = []
    for m in DECL.finditer(text):
        args, end = _template_args(text, m.end())
        head = HEAD.match(text, end)
        if head:
            out.append({"pos": m.start(), "cpp": args[0], "others": args[1:],
                        "var": head.group(1), "parent": head.group(2), "name": head.group(3),
                        "enum": m.group(1) == "enum_", "end": head.end()})
    return out


def git_show(repo: Path, ref: str, path: str) -> str | None:
    done = subprocess.run(["git", "-C", str(repo), "show", f"{ref}:{path}"],
                          capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def surface(repo: Path, ref: str) -> dict[str, list[str]]:
    """{class: sorted member names, inherited ones included} for :data:`CLASSES`; the
    module-level names under ``""``."""
    out: dict[str, set[str]] = {"": set()}
    cpp_name: dict[str, str] = {}
    bases: dict[str, list[str]] = {}
    for path in SOURCES:
        text = git_show(repo, ref, path)
        if text is None:
            continue
        decls = declarations(text)
        by_var = {d["var"]: d for d in decls if d["var"]}
        heads = [(d["pos"], d) for d in decls]
        heads += [(m.start(), by_var[m.group(1)])
                  for m in re.finditer(r"\b(\w+)\.(?:def|value)", text) if m.group(1) in by_var]
        heads.sort(key=lambda h: h[0])
        for d in decls:
            cpp_name[d["cpp"]] = d["name"]
            bases.setdefault(d["name"], []).extend(d["others"])
            out.setdefault(d["name"], set())
            parent = by_var.get(d["parent"])
            if d["parent"] == "m":
                out[""].add(d["name"])
            elif parent:
                out[parent["name"]].add(d["name"])
        for m in MEMBER.finditer(text):
            owner = [d for pos, d in heads if pos < m.start()]
            if not owner:
                continue
            d = owner[-1]
            out[d["name"]].add(m.group(1))
            tail = text[m.end():text.find(";", m.end())]
            parent = by_var.get(d["parent"])
            if d["enum"] and parent and "export_values" in tail:
                out[parent["name"]].add(m.group(1))  # values also in the outer scope
    for name, others in bases.items():  # inherited members (pybind11 bases are C++ types)
        todo = [cpp_name[b] for b in others if b in cpp_name]
        while todo:
            base = todo.pop()
            out[name] |= out.get(base, set())
            todo += [cpp_name[b] for b in bases.get(base, []) if b in cpp_name]
    init = git_show(repo, ref, INIT) or ""
    out[""] |= {a or b for a, b in TOP.findall(init) if not (a or b).startswith("_")}
    out[""].add("__version__")
    return {k: sorted(v) for k, v in sorted(out.items()) if k in ("", *CLASSES)}


def main() -> None:
    repo = Path(sys.argv[1])
    data = {"source": "github.com/NVIDIA/TensorRT: " + ", ".join((*SOURCES, INIT)),
            "extracted_by": "tests/data/tensorrt_api_extract.py",
            "versions": {}}
    for version, ref in REFS.items():
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", ref], capture_output=True,
                                text=True, check=True).stdout.strip()
        data["versions"][version] = {"ref": ref, "commit": commit,
                                     "api": {k: " ".join(v) for k, v in surface(repo, ref).items()}}
    text = json.dumps(data, indent=1) + "\n"
    if "--write" in sys.argv:
        (Path(__file__).parent / "tensorrt_api.json").write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
