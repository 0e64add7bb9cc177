"""Word templates (templates/*_words_*.j2 and the like) read as modules, compiled once per process.

Several parts read the same templates (the report's words hold the worklist export's headers too); a
template compiled once serves them all. Compiling is most of what reading one costs (~0.05 s each); the
compiled code is also kept on disk (`jinja_bytecode_cache`) so a new process of the same release loads it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from jinja2 import Environment, FileSystemBytecodeCache, PackageLoader


@functools.cache
def jinja_bytecode_cache(kind: str) -> FileSystemBytecodeCache | None:
    """Compiled templates in the user's cache folder (`$XDG_CACHE_HOME/jkn/jinja-<kind>`, else under
    `~/.cache/jkn`). Jinja keys each entry by the template's name and checks its source's checksum, so an
    edited template is compiled afresh; but not by the environment's options (trim_blocks, autoescape), so
    each kind of environment has its own folder. None where the folder cannot be written (templates are then
    compiled per process)."""
    folder = Path(os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")) / "jkn" / f"jinja-{kind}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return FileSystemBytecodeCache(str(folder)) if os.access(folder, os.W_OK) else None


@functools.cache
def _plain() -> Environment:
    return Environment(loader=PackageLoader("flows", "templates"), bytecode_cache=jinja_bytecode_cache("words"))


@functools.cache
def module(name: str):
    """The template `name` run once, as a module: its `{% set %}` values and macros as attributes."""
    return _plain().get_template(name).module
