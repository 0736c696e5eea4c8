"""The package's arrows (DESIGN.md): the core never reaches up to the package root."""

import re
from pathlib import Path

import sprig
from sprig._version import __version__

SRC = Path(sprig.__file__).parent
CORE = ("masks", "nn", "kernels", "compress", "prune", "dst", "bonsai", "io", "data", "training")


def test_no_module_imports_the_package_root():
    # `from .. import __version__` worked only because __init__ set it before its imports
    bad = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.parent != SRC and re.search(r"^\s*from \.\. import ", path.read_text(), re.M)
    ]
    assert bad == []


def test_core_never_imports_sprig_at_module_level():
    bad = [
        str(path.relative_to(SRC))
        for pkg in CORE
        for path in (SRC / pkg).rglob("*.py")
        if re.search(r"^(import sprig\b|from sprig\b)", path.read_text(), re.M)
    ]
    assert bad == []


def test_core_never_imports_the_outer_ring_at_module_level():
    # sprig.prune re-exports the lottery experiment lazily, inside a function
    outer = re.compile(r"^from \.\.(runs|lottery|cli|plots)\b", re.M)
    bad = [
        str(path.relative_to(SRC))
        for pkg in CORE
        for path in (SRC / pkg).rglob("*.py")
        if outer.search(path.read_text())
    ]
    assert bad == []


def test_one_version():
    assert sprig.__version__ == __version__
    text = (SRC.parents[1] / "pyproject.toml").read_text()
    assert f'version = "{__version__}"' in text


def test_dst_and_prune_take_the_callback_protocol_from_below_the_loops():
    for pkg in ("dst", "prune/_schedules.py"):
        paths = (SRC / pkg).rglob("*.py") if (SRC / pkg).is_dir() else [SRC / pkg]
        for path in paths:
            assert "from ..training import" not in path.read_text(), path


def test_import_sprig_loads_neither_numba_nor_scipy():
    """The compiled kernels (numba, which imports scipy.linalg) load at the first call that
    needs them: their set-up is most of a new process's first compressed call
    (benchmarks/results/startup.md), and `import sprig` must not pay it for everyone."""
    import subprocess
    import sys

    code = "import sys, sprig; print(sorted(m for m in ('numba', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
