"""luatorch_port: a Python/PyTorch port of a Lua Torch7 solution to NYU DS-GA 1008 (2016) A2.

STL-10 semi-supervised recognition, with t7 files compatible with Lua Torch both ways.
"""

__version__ = "0.1.0"
