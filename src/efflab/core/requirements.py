"""What a script needs from the machine: external tools and Python packages.

Declared in a script's `meta.yaml` under `requires:` so that the framework names no
family's tools: `efflab doctor` checks the union over the registry, provenance
records the versions of the declared packages. Plain data, shared by the plan layer
(which parses meta.yaml) and the envs/results layers (which use it).

    requires:
      tools:
        - {name: yosys, version_args: ["-V"], pattern: "Yosys ([^\\s]+)",
           install: "apt-get install -y yosys", deb: yosys}
      packages:
        - {dist: onnxruntime, module: onnxruntime, install: "pip install onnxruntime==1.32.0"}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tool:
    name: str  # the executable looked up on PATH
    version_args: tuple[str, ...] = ()
    pattern: str | None = None  # regex whose group 1 is the version in the output
    install: str = ""
    deb: str | None = None  # Debian package, for a dpkg version when the tool prints none


@dataclass(frozen=True)
class Package:
    dist: str  # distribution name (importlib.metadata)
    module: str  # what `import` uses
    install: str = ""


@dataclass(frozen=True)
class Requirements:
    tools: tuple[Tool, ...] = ()
    packages: tuple[Package, ...] = ()

    @classmethod
    def from_meta(cls, data: dict[str, Any] | None) -> Requirements:
        """From a validated `requires:` block (meta.schema.json checks the shape)."""
        data = data or {}
        tools = tuple(
            Tool(
                name=t["name"],
                version_args=tuple(t.get("version_args") or ()),
                pattern=t.get("pattern"),
                install=t.get("install", ""),
                deb=t.get("deb"),
            )
            for t in data.get("tools") or []
        )
        packages = tuple(
            Package(dist=p["dist"], module=p.get("module", p["dist"]), install=p.get("install", ""))
            for p in data.get("packages") or []
        )
        return cls(tools, packages)

    @staticmethod
    def union(reqs: Iterable[Requirements]) -> Requirements:
        """One entry per tool name and per distribution, first declaration wins."""
        tools: dict[str, Tool] = {}
        packages: dict[str, Package] = {}
        for r in reqs:
            for t in r.tools:
                tools.setdefault(t.name, t)
            for p in r.packages:
                packages.setdefault(p.dist, p)
        return Requirements(
            tuple(tools[k] for k in sorted(tools)), tuple(packages[k] for k in sorted(packages))
        )
