"""Compile an export's C and read what the compiler made of it: each array's bytes (`nm -S`),
the sections (`size -A`), and the deepest stack of every public function (`-fstack-usage` with
`-fcallgraph-info=su`). The tests compare these with the memory model; `nas export` writes them
into the folder's README when the compilers are installed.

Flags: `-std=c99 -Os -fdata-sections -ffunction-sections`, so each array sits in a section of its
own, as firmware builds that link with --gc-sections do; a section's size is then exactly its
array's, with no alignment gap between arrays (the linker may add up to alignment - 1 bytes
before each one when it places them; docs/memory-model.md).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from nas.core.errors import NasError
from nas.device.targets import DEFAULT_TARGET, TARGETS

HOST = "gcc"
ARM = "arm-none-eabi-gcc"
ARM_FLAGS = TARGETS[DEFAULT_TARGET].flags
COMMON_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-Os", "-fdata-sections", "-ffunction-sections")
INSTANCE = '#include "model.h"\nnas_stream_t nas_instance; /* the application\'s one stream: its .bss is the RAM */\n'


@dataclass
class Compiled:
    """What one compiler made of model.c plus a one-line file holding a `nas_stream_t`."""

    compiler: str
    symbols: dict[str, int]  # data symbol -> bytes (nm -S)
    sections: dict[str, int]  # section -> bytes (size -A)
    stack_bytes: dict[str, int] = field(default_factory=dict)  # public function -> deepest call chain
    stack_chains: dict[str, list[str]] = field(default_factory=dict)

    def _total(self, prefix: str) -> int:
        return sum(size for name, size in self.sections.items() if name == prefix or name.startswith(prefix + "."))

    @property
    def rodata_bytes(self) -> int:
        return self._total(".rodata")

    @property
    def data_bytes(self) -> int:
        return self._total(".data")

    @property
    def bss_bytes(self) -> int:
        return self._total(".bss")

    @property
    def text_bytes(self) -> int:
        return self._total(".text")

    @property
    def max_stack_bytes(self) -> int:
        return max(self.stack_bytes.values(), default=0)

    def to_dict(self) -> dict:
        return {
            "compiler": self.compiler,
            "text_bytes": self.text_bytes,
            "rodata_bytes": self.rodata_bytes,
            "data_bytes": self.data_bytes,
            "bss_bytes": self.bss_bytes,
            "max_stack_bytes": self.max_stack_bytes,
            "stack_bytes": self.stack_bytes,
        }


def available(compiler: str) -> bool:
    return shutil.which(compiler) is not None


def _tool(compiler: str, name: str) -> str:
    """The binutils tool that goes with a compiler: gcc -> nm, arm-none-eabi-gcc -> arm-none-eabi-nm."""
    return compiler[: -len("gcc")] + name if compiler.endswith("gcc") else name


def compile_export(folder: Path, compiler: str = HOST, work: Path | None = None, target: str = DEFAULT_TARGET) -> Compiled:
    """Compile `folder`'s model.c (and the instance) into `work` and measure the objects; the ARM
    compiler builds for `target` (nas.device.targets)."""
    if not available(compiler):
        raise NasError(f"{compiler}: not found; expected a C compiler on PATH (apt-get install gcc-arm-none-eabi for the ARM one)")
    folder = folder.resolve()  # the compiler runs in `work`
    work = (work or folder / f"build-{compiler}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    (work / "instance.c").write_text(INSTANCE)
    flags = [*COMMON_FLAGS, *(TARGETS[target].flags if compiler == ARM else ())]
    symbols: dict[str, int] = {}
    sections: dict[str, int] = {}
    nodes: dict[str, tuple[str, int]] = {}
    edges: dict[str, list[str]] = {}
    for source in (folder / "model.c", work / "instance.c"):
        obj = work / (source.stem + ".o")
        command = [compiler, *flags, "-fstack-usage", "-fcallgraph-info=su", "-I", str(folder), "-c", str(source), "-o", str(obj)]
        result = subprocess.run(command, capture_output=True, text=True, cwd=work)
        if result.returncode != 0:
            raise NasError(f"{source}: {compiler} failed: {result.stderr.strip()[:2000]}")
        for name, size in _sections(compiler, obj).items():
            sections[name] = sections.get(name, 0) + size
        symbols.update(_symbols(compiler, obj))
        callgraph = obj.with_suffix(".ci")
        if callgraph.exists():
            _read_callgraph(callgraph.read_text(), nodes, edges)
    compiled = Compiled(compiler, symbols, sections)
    for title, (name, _) in nodes.items():
        if name.startswith("nas_") and title == name:  # public functions have their plain name as title
            chain, total = _deepest(title, nodes, edges, ())
            compiled.stack_bytes[name], compiled.stack_chains[name] = total, chain
    return compiled


def _sections(compiler: str, obj: Path) -> dict[str, int]:
    output = subprocess.run([_tool(compiler, "size"), "-A", str(obj)], capture_output=True, text=True, check=True).stdout
    sections = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    return sections


def _symbols(compiler: str, obj: Path) -> dict[str, int]:
    """Data symbols (types r/R/d/D/b/B) and their sizes."""
    output = subprocess.run([_tool(compiler, "nm"), "-S", str(obj)], capture_output=True, text=True, check=True).stdout
    symbols = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "rRdDbB":
            symbols[parts[3]] = int(parts[1], 16)
    return symbols


NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^\\"]+)\\n[^"]*?(?:\\n(\d+) bytes \(([\w,]+)\))?"')
EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


def _read_callgraph(text: str, nodes: dict, edges: dict) -> None:
    for title, name, size, kind in NODE.findall(text):
        if size:
            if kind not in ("static", "dynamic,bounded"):  # bounded: the figure is the most it uses
                raise NasError(f"{name}: stack usage is {kind}, not bounded; expected no variable-length arrays or alloca")
            nodes[title] = (name, int(size))
        else:
            nodes.setdefault(title, (name, -1))  # a callee outside the file: its stack is unknown
    for source, target in EDGE.findall(text):
        edges.setdefault(source, []).append(target)


def _deepest(title: str, nodes: dict, edges: dict, path: tuple[str, ...]) -> tuple[list[str], int]:
    name, size = nodes.get(title, (title, -1))
    if title in path:
        raise NasError(f"{name}: recursive; the stack of recursion has no bound")
    if size < 0:
        raise NasError(f"{name}: called from {path[-1] if path else '?'} but its stack usage is unknown; expected only generated functions")
    best: tuple[list[str], int] = ([], 0)
    for target in set(edges.get(title, [])):
        chain, total = _deepest(target, nodes, edges, (*path, title))
        if total > best[1]:
            best = (chain, total)
    return [name, *best[0]], size + best[1]
