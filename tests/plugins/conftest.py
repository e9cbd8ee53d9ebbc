"""Install plugins for one test only, the way pip would, without running pip.

`install_plugin` writes a `<name>.dist-info` folder (METADATA and entry_points.txt) into a
folder put on `sys.path`, which is all `importlib.metadata.entry_points()` looks at; the
plugin's own source folder goes on `sys.path` too. monkeypatch restores `sys.path` afterwards,
and the finaliser forgets the plugin modules and the metadata caches, so nothing leaks into
other tests.
"""

from __future__ import annotations

import importlib
import sys
import tomllib
from pathlib import Path
from typing import Callable, Iterator

import pytest

from engine.registry import Registry
from web.system import build_registry

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "docket_sample_plugin"
SAMPLE_SRC = SAMPLE / "src"
BUNDLE = HERE / "bundle"

InstallPlugin = Callable[..., Path]


def sample_entry_points() -> dict[str, str]:
    """The `docket.plugins` entry points the sample plugin's pyproject.toml declares."""
    project = tomllib.loads((SAMPLE / "pyproject.toml").read_text("utf-8"))["project"]
    return dict(project["entry-points"]["docket.plugins"])


def _forget_modules(prefixes: set[str]) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in prefixes:
            del sys.modules[name]


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InstallPlugin]:
    """`install_plugin(dist, {entry: "module:attr"}, modules={"mod.py": source})`."""
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    top_level: set[str] = set()

    def install(dist: str, entry_points: dict[str, str], *, modules: dict[str, str] | None = None,
                source_dir: Path | None = None) -> Path:
        info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n", "utf-8")
        lines = ["[docket.plugins]", *(f"{name} = {value}" for name, value in entry_points.items())]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n", "utf-8")
        for filename, text in (modules or {}).items():
            (site / filename).write_text(text, "utf-8")
            top_level.add(filename.removesuffix(".py"))
        if source_dir is not None:
            monkeypatch.syspath_prepend(str(source_dir))
            top_level.update(p.name for p in source_dir.iterdir() if (p / "__init__.py").exists())
        top_level.update(value.split(":")[0].split(".")[0] for value in entry_points.values())
        importlib.invalidate_caches()  # also clears importlib.metadata's path caches
        return info

    yield install
    _forget_modules(top_level)
    importlib.invalidate_caches()


@pytest.fixture
def install_sample(install_plugin: InstallPlugin) -> None:
    """The sample plugin, installed as pip would from its pyproject.toml."""
    install_plugin("docket-sample-plugin", sample_entry_points(), source_dir=SAMPLE_SRC)


@pytest.fixture
def plugin_registry(install_sample: None) -> Registry:
    """The registry Docket builds when the sample plugin is installed."""
    registry = build_registry(plugins=True)
    assert registry.problems == []
    return registry
