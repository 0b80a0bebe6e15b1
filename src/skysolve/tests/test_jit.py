"""The compiled kernels' warm marker: where it lives, and where it must not."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from skysolve import _jit
from skysolve.defaultdb import CACHE_ENV_VAR, cache_directory

#: A file for the marker to stamp (any source will do: the marker records its state).
SOURCES = [Path(_jit.__file__)]

posix_home = pytest.mark.skipif(sys.platform == "win32",
                                reason="the home directory of a POSIX user")


@pytest.fixture
def no_home(monkeypatch, tmp_path):
    """A container's user: no ``$HOME`` and no password entry (``~`` stays ``~``), run in
    an empty working directory."""
    import pwd

    for name in ("HOME", "XDG_CACHE_HOME", "NUMBA_CACHE_DIR", CACHE_ENV_VAR):
        monkeypatch.delenv(name, raising=False)

    def no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@posix_home
def test_without_a_home_directory_there_is_no_marker(no_home, monkeypatch):
    """Without a home directory the marker went to ``./~/.cache/skysolve``: a directory
    named ``~`` in whatever the working directory was, and a warm state that followed
    it. Now there is no marker: the kernels count as not compiled, nothing is written
    and no background compile (that nothing could record) is started."""
    assert _jit._cache_dir() is None
    _jit.mark_warm(SOURCES)
    assert not _jit.is_warm(SOURCES)
    monkeypatch.delenv("SKYSOLVE_NO_BACKGROUND_COMPILE", raising=False)
    monkeypatch.setattr(_jit, "_BACKGROUND", set())
    assert not _jit.warm_in_background("json.tool")
    assert list(no_home.iterdir()) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG_CACHE_HOME is Linux's")
def test_a_relative_xdg_cache_home_is_ignored(monkeypatch, tmp_path):
    """The XDG Base Directory specification ignores a relative ``$XDG_CACHE_HOME``; the
    default databases' cache did, the marker went to that path in the working directory.
    Both now take ``~/.cache/skysolve``, one rule for both."""
    for name in ("NUMBA_CACHE_DIR", CACHE_ENV_VAR):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.chdir(tmp_path)
    assert _jit._cache_dir() == tmp_path / "home" / ".cache" / "skysolve" == cache_directory()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _jit._cache_dir() == tmp_path / "xdg" / "skysolve" == cache_directory()


def test_a_relative_numba_cache_dir_is_pinned_where_skysolve_was_imported(tmp_path):
    """numba joins a relative ``NUMBA_CACHE_DIR`` to the working directory of the moment,
    and the marker went with it: after a change of directory the marker was looked for
    elsewhere. It is now made absolute once, at skysolve's import, for numba (imported
    later), the marker and the processes started from there alike."""
    import os
    import subprocess

    if not _jit.available():
        pytest.skip("numba not available")
    (tmp_path / "elsewhere").mkdir()
    code = ("import os, sys\nfrom skysolve import _jit\nos.chdir('elsewhere')\n"
            "import numba\n"
            "print(_jit._cache_dir(), numba.config.CACHE_DIR, os.environ['NUMBA_CACHE_DIR'], "
            "sep='\\n')")
    env = dict(os.environ, NUMBA_CACHE_DIR="relative/numba")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [str(tmp_path / "relative" / "numba")] * 3


def test_the_background_compile_imports_this_skysolve(monkeypatch, tmp_path):
    """A skysolve found through ``sys.path`` alone (a source tree a script put there, not
    installed) was not found by the background compile, a new interpreter: its warm-up
    failed at the import, every run. The child's ``PYTHONPATH`` now starts with the
    directory holding this skysolve."""
    import site
    import subprocess

    here = Path(_jit.__file__).resolve().parent
    sites = {Path(d).resolve() for d in [*site.getsitepackages(), site.getusersitepackages()]}
    if here.parent in sites:
        pytest.skip("skysolve is installed in a site directory: any child finds it")
    started = []

    class Started:
        def __init__(self, command, **kw):
            started.append(kw.get("env"))

        def wait(self):
            return 0

    monkeypatch.delenv("PYTHONPATH", raising=False)  # (found through sys.path only)
    monkeypatch.delenv("SKYSOLVE_NO_BACKGROUND_COMPILE", raising=False)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_jit, "_BACKGROUND", set())
    with monkeypatch.context() as m:
        m.setattr(subprocess, "Popen", Started)
        assert _jit.warm_in_background("skysolve.solver.warmup")
    (env,) = started
    assert env is not None
    # an interpreter without its site directories (-S: no installed packages, nor the
    # editable install's path) finds this skysolve through that environment alone
    code = "import importlib.util\nprint(importlib.util.find_spec('skysolve').origin)"
    found = subprocess.run([sys.executable, "-S", "-c", code], env=env, cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(found).resolve() == here / "__init__.py"
