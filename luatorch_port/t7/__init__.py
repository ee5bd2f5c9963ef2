"""Lua Torch7's t7 file format: ``load`` (binary and ascii) and ``save`` (binary).

Everything Lua-specific about files lives here: 1-based table keys, long width, class
names and versions. See :func:`load` and :func:`save`; :mod:`.stream` reads and writes
tables of ByteTensors (the course layout's bytes) without building the object graph.
"""

from .reader import MAX_DEPTH, T7FormatError, load
from .types import LuaFunction, LuaObject, Storage, TableKey
from .writer import T7WriteError, dumps, save

__all__ = ["load", "save", "dumps", "MAX_DEPTH", "T7FormatError", "T7WriteError", "LuaObject",
           "LuaFunction", "Storage", "TableKey"]
