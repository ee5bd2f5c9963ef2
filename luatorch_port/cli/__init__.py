"""`a2`: the command line. One module per group; each command calls one library function."""

from __future__ import annotations

import importlib
import sys

import click

from .. import __version__
from ..util.errors import A2Error
from ..t7 import T7FormatError, T7WriteError

# Errors that mean "bad input": printed as one line, exit status 1, no traceback.
USER_ERRORS = (A2Error, T7FormatError, T7WriteError, FileNotFoundError, IsADirectoryError,
               NotADirectoryError, PermissionError)


# command name -> (module of this package, attribute): imported when the command is used
# (``a2 surrogate build`` does not import the k-means, t-SNE or training modules)
COMMANDS = {
    "t7": ("t7", "group"),
    "data": ("data", "group"),
    "backprop": ("backprop", "group"),
    "train": ("train", "train_cmd"),
    "predict": ("train", "predict_cmd"),
    "score": ("train", "score_cmd"),
    "visualize": ("visualize", "group"),
    "tsne": ("tsne", "tsne_cmd"),
    "report": ("report", "report_cmd"),
    "pseudolabel": ("pseudolabel", "group"),
    "surrogate": ("surrogate", "group"),
    "kmeans": ("kmeans", "group"),
}


class A2Group(click.Group):
    """The top-level group: turns library errors into one-line click errors, and imports a
    command's module when the command is looked up (:data:`COMMANDS`)."""

    def list_commands(self, ctx):
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx, name):
        if name not in self.commands and name in COMMANDS:
            module, attr = COMMANDS[name]
            self.add_command(getattr(importlib.import_module(f".{module}", __name__), attr), name)
        return self.commands.get(name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as err:
            raise click.ClickException(_one_line(err)) from None
        except MemoryError as err:  # numpy's _ArrayMemoryError too
            raise click.ClickException(f"out of memory: {_one_line(err)}; ask for less "
                                       f"(a smaller size, batch, zoom or --limit)") from None
        except RuntimeError as err:
            if not _is_allocation_failure(err):
                raise
            raise click.ClickException(f"out of memory: {_one_line(err)[:300]}; ask for less "
                                       f"(a smaller size, batch, zoom or --limit)") from None
        except UnicodeDecodeError as err:
            raise click.ClickException(f"expected UTF-8 text, got byte {err.object[err.start]:#04x} "
                                       f"at offset {err.start} (a binary file?)") from None
        except EOFError as err:  # click would print a bare "Aborted!"
            raise click.ClickException(f"unexpected end of input ({_one_line(err)})") from None


# torch's allocators' messages (CPU: DefaultCPUAllocator; CUDA: "CUDA out of memory")
_ALLOCATION_FAILURES = ("can't allocate memory", "out of memory", "DefaultCPUAllocator")


def _is_allocation_failure(err) -> bool:
    return any(text in str(err) for text in _ALLOCATION_FAILURES)


def _one_line(err) -> str:
    if isinstance(err, OSError) and err.filename is not None:
        return f"{err.filename}: {err.strerror or err}"
    return " ".join(str(err).split()) or type(err).__name__


CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}


@click.group(cls=A2Group, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="a2")
def cli():
    """Port of a Lua Torch7 solution to NYU DS-GA 1008 (2016) Assignment 2: STL-10
    semi-supervised image recognition. Commands follow the report's sections."""


def main(argv=None):
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="a2")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
