"""`a2 visualize ...` (report 3.1): filters, centroids, augmentations, training curves."""

from __future__ import annotations

import click

from ..surrogate.build import MAX_PATCH, PATCH
from ..visualize.figures import MAX_ZOOM
from ..visualize.run import (AUGMENTATION_CLASSES, AUGMENTATION_LIMIT, AUGMENTATION_PER_SEED,
                             AUGMENTATION_ZOOM, CENTROIDS_MAX, CENTROIDS_ZOOM, FILTERS_PADDING,
                             FILTERS_ZOOM)
from .common import (ensure_parent, option, out_file_option, quiet_option, record_path,
                     seed_everything, seed_option, split_option)

PNG = "the PNG"


def _done(out, size):
    click.echo(f"{out} ({size[0]}x{size[1]})")


@click.group("visualize")
def group():
    """Figures of report part 3.1: filters, k-means centroids, surrogate augmentations, curves."""


@group.command("filters")
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@out_file_option("filters.png", PNG)
@click.option("--padding", type=click.IntRange(min=0), default=FILTERS_PADDING,
              help="Pixels between filters (toDisplayTensor's padding).")
@click.option("--nrow", type=click.IntRange(min=0), default=0,
              help="Filters per row; 0 = ceil(sqrt(count)).")
@click.option("--zoom", type=click.IntRange(1, MAX_ZOOM), default=FILTERS_ZOOM,
              help="Nearest-neighbour upscaling of the PNG.")
def filters_cmd(model_path, out, padding, nrow, zoom):
    """The first convolution's filters of MODEL (.t7/.net from Lua or a2, or .pt) as a grid,
    each filter min-max scaled on its own (image.toDisplayTensor{scaleeach=true})."""
    from ..util.provenance import write_record
    from ..visualize.run import run_filters

    result = run_filters(model_path, out, padding=padding, nrow=nrow or None, zoom=zoom)
    write_record(record_path(out, folder=False), "visualize filters",
                 {"model": model_path, "padding": padding, "nrow": nrow, "zoom": zoom},
                 results=result)
    _done(out, result["png"])


@group.command("centroids")
@click.argument("centroids_path", metavar="CENTROIDS", type=click.Path(exists=True, dir_okay=False))
@out_file_option("centroids.png", PNG)
@click.option("--space", type=click.Choice(["unwhitened", "whitened"]), default="unwhitened",
              help="Show centroids un-whitened (image-like) or as learned (Coates' figure).")
@click.option("--max", "max_count", type=click.IntRange(min=0), default=CENTROIDS_MAX,
              help="Show at most this many centroids (0 = all).")
@click.option("--zoom", type=click.IntRange(1, MAX_ZOOM), default=CENTROIDS_ZOOM,
              help="Nearest-neighbour upscaling of the PNG.")
def centroids_cmd(centroids_path, out, space, max_count, zoom):
    """k-means centroids (centroids.t7 from `a2 kmeans fit`) as a grid, as Coates'
    show_centroids.m: values mapped from [-1.5, 1.5], one white pixel between cells."""
    from ..util.provenance import write_record
    from ..visualize.run import run_centroids

    result = run_centroids(centroids_path, out, space=space, max_count=max_count or None, zoom=zoom)
    write_record(record_path(out, folder=False), "visualize centroids",
                 {"centroids": centroids_path, "space": space, "max": max_count, "zoom": zoom},
                 results=result)
    _done(out, result["png"])


@group.command("augmentations")
@split_option("extra", "Images to draw seed patches from (extra.t7b, or any course split).",
              dest="data_path", exists=True, aliases=["--data"])
@out_file_option("augmentations.png", PNG)
@option("--classes", "n_seeds", aliases=["--seeds"], type=click.IntRange(min=1),
        default=AUGMENTATION_CLASSES,
        help="Seed patches, i.e. surrogate classes (rows), as `a2 surrogate build --classes`.")
@click.option("--per-seed", type=click.IntRange(min=1), default=AUGMENTATION_PER_SEED,
              help="Random transformations per seed (columns after the seed).")
@click.option("--patch", type=click.IntRange(1, MAX_PATCH), default=PATCH, help="Patch side in pixels.")
@click.option("--limit", type=click.IntRange(min=1), default=AUGMENTATION_LIMIT,
              help="Read only the first N images of --extra.")
@click.option("--no-color", is_flag=True, help="Geometric transformations only.")
@click.option("--zoom", type=click.IntRange(1, MAX_ZOOM), default=AUGMENTATION_ZOOM,
              help="Nearest-neighbour upscaling of the PNG.")
@seed_option()
@quiet_option()
def augmentations_cmd(data_path, out, n_seeds, per_seed, patch, limit, no_color, zoom, seed, quiet):
    """Seed patches and their surrogate transformations (the report's Figure 3.1): one row
    per seed, the untransformed patch first."""
    from ..data import load_split
    from ..util.provenance import write_record
    from ..surrogate import TransformRanges, augmentation_examples
    from ..surrogate.build import WINDOW
    from ..visualize.figures import augmentation_grid, save_image

    gen = seed_everything(seed, quiet=quiet)
    split = load_split(data_path, limit=limit)
    ranges = TransformRanges(color=not no_color)
    side = min(split.images.shape[-2:])
    window = tuple(min(w, side) for w in WINDOW)  # images smaller than the default windows (tests)
    examples = augmentation_examples(split.images, min(n_seeds, len(split)), per_seed, gen, patch=patch,
                                     ranges=ranges, window=window)
    ensure_parent(out)
    size = save_image(out, augmentation_grid(examples), zoom=zoom)
    write_record(record_path(out, folder=False), "visualize augmentations",
                 {"extra": data_path, "classes": n_seeds, "per_seed": per_seed, "patch": patch, "limit": limit,
                  "color": not no_color, "zoom": zoom}, seed=seed,
                 results={"examples": list(examples.shape), "png": list(size)})
    _done(out, size)


@group.command("curves")
@click.argument("run", metavar="RUN_DIR", type=click.Path(exists=True))
@out_file_option("curves.png", PNG)
@click.option("--title", default="", help="Figure title [default: the run folder's name].")
def curves_cmd(run, out, title):
    """Accuracy per epoch from RUN_DIR/val.log (optim.Logger format, written by `a2 train`);
    RUN_DIR may also be the log file itself."""
    from ..util.provenance import write_record
    from ..visualize.run import run_curves

    result = run_curves(run, out, title=title)
    write_record(record_path(out, folder=False), "visualize curves", {"log": result["log"], "title": title},
                 results={k: v for k, v in result.items() if k != "log"})
    _done(out, result["png"])

