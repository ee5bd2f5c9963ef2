"""`a2 data ...`: inspect course t7b files, build the sample set, convert and fetch STL-10."""

from __future__ import annotations

import json
import os
import re

import click

from ..data.fetch import STL10_URL
from ..data.preview import DEFAULT_N as PREVIEW_N
from ..data.sample import IMAGE_SIZE as SAMPLE_IMAGE_SIZE
from ..data.sample import MAX_IMAGE_SIZE as MAX_SAMPLE_IMAGE_SIZE
from .common import out_file_option, meter, quiet_option, record_path, seed_everything, seed_option


@click.group("data")
def group():
    """The course's data: train/val/test/extra.t7b (see docs/data.md)."""


@group.command("info")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Read only the first N images (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(file, limit, as_json):
    """Layout, per-class counts, image shape and dtype, pixel mean/std and size of FILE."""
    from ..data import load_split, pixel_stats

    split = load_split(file, limit=limit)
    stats = pixel_stats(split.images)
    summary = {
        "file": file,
        "bytes": os.path.getsize(file),
        "layout": split.layout,
        "images": len(split),
        "classes": len(split.classes) if split.labels is not None else 0,
        "per_class": dict(zip(split.classes, split.class_counts())) if split.labels is not None
        else {},
        "image_shape": list(split.images.shape[1:]),
        "dtype": "uint8 (torch.ByteTensor)",
        "limit": limit,
        **stats,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"file:        {file}")
    click.echo(f"size:        {summary['bytes'] / 1e6:.2f} MB ({summary['bytes']} bytes)")
    click.echo(f"layout:      {split.layout}" + (f" (first {limit} images)" if limit else ""))
    click.echo(f"images:      {len(split)}")
    if split.labels is not None:
        click.echo(f"classes:     {len(split.classes)}")
        for i, (name, count) in enumerate(summary["per_class"].items(), start=1):
            click.echo(f"  {i:>2} {name:<10} {count}")
    click.echo(f"image shape: {'x'.join(map(str, summary['image_shape']))}, {summary['dtype']}")
    click.echo(f"pixel mean:  {stats['mean']:.3f} (R,G,B {_fmt(stats['channel_mean'])})")
    click.echo(f"pixel std:   {stats['std']:.3f} (R,G,B {_fmt(stats['channel_std'])})")


def _fmt(values):
    return ", ".join(f"{v:.2f}" for v in values)


@group.command("sample")
@click.argument("out_dir", type=click.Path(file_okay=False))
@seed_option()
@click.option("--image-size", type=click.IntRange(min=8, max=MAX_SAMPLE_IMAGE_SIZE), default=SAMPLE_IMAGE_SIZE,
              help="Side of the square images (the course's is 96).")
@click.option("--per-class", type=click.IntRange(min=4), default=None,
              help="Digits used per class (default: all ~180, giving 400/100/400/897).")
@quiet_option()
def sample(out_dir, seed, image_size, per_class, quiet):
    """Build the embedded sample: scikit-learn's digits as train/val/test/extra.t7b in OUT_DIR.

    Real 8x8 digit scans upscaled to 3xSxS with seeded colours, split per class 40/10/40 and
    the rest to extra (its true labels in extra_labels.t7, 1-based). See docs/data.md.
    """
    from ..data import build_sample
    from ..util.provenance import write_record

    seed_everything(seed, quiet)
    counts = build_sample(out_dir, seed, image_size=image_size, per_class=per_class)
    write_record(record_path(out_dir, folder=True), "data sample",
                 {"out_dir": out_dir, "image_size": image_size, "per_class": per_class},
                 seed=seed, results=vars(counts))
    click.echo(f"wrote {out_dir}: train {counts.train}, val {counts.val}, test {counts.test}, "
               f"extra {counts.extra} images of 3x{image_size}x{image_size}")


@group.command("convert")
@click.argument("stl10_binary_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
@seed_option()
@quiet_option()
def convert(stl10_binary_dir, out_dir, seed, quiet):
    """Official STL-10 binaries (stl10_binary/*.bin) -> train/val/test/extra.t7b in OUT_DIR.

    train 10x400 and val 10x100 from the 5,000 labelled images (seeded split per class),
    test 10x800 sorted by class, extra the 100,000 unlabelled images.
    """
    from ..data import convert_stl10
    from ..util.provenance import write_record

    seed_everything(seed, quiet)
    counts = convert_stl10(stl10_binary_dir, out_dir, seed,
                           progress=meter(quiet))
    write_record(record_path(out_dir, folder=True), "data convert",
                 {"stl10_binary_dir": stl10_binary_dir, "out_dir": out_dir}, seed=seed,
                 results=vars(counts))
    click.echo(f"wrote {out_dir}: train {sum(counts.train)}, val {sum(counts.val)}, "
               f"test {sum(counts.test)}, extra {counts.extra}")


def _parse_md5(ctx, param, values):
    out = {}
    for value in values:
        m = re.fullmatch(r"([\w.]+)=([0-9a-fA-F]{32})", value)
        if not m:
            raise click.BadParameter(f"{value!r} is not NAME=32-hex-digit-md5")
        out[m.group(1)] = m.group(2).lower()
    return out


@group.command("fetch")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--url", default=STL10_URL, help="Where stl10_binary.tar.gz is (http(s):// or file://).")
@click.option("--keep-archive/--no-keep-archive", default=True,
              help="Keep stl10_binary.tar.gz after converting.")
@click.option("--md5", "md5", multiple=True, callback=_parse_md5, hidden=True,
              help="NAME=MD5 overriding an expected MD5 (for tests).")
@seed_option()
@quiet_option()
def fetch(out_dir, url, keep_archive, md5, seed, quiet):
    """Download STL-10 (resuming), verify its MD5s, and convert it into OUT_DIR.

    Writes train/val/test/extra.t7b as `a2 data convert` does. A wrong MD5 stops with
    nothing left in OUT_DIR.
    """
    from ..data.fetch import STL10_MD5, fetch_stl10
    from ..util.provenance import write_record

    seed_everything(seed, quiet)
    md5s = {**STL10_MD5, **md5}
    counts = fetch_stl10(out_dir, url=url, md5s=md5s, seed=seed, keep_archive=keep_archive,
                         progress=meter(quiet))
    write_record(record_path(out_dir, folder=True), "data fetch",
                 {"out_dir": out_dir, "url": url, "md5": md5s, "keep_archive": keep_archive},
                 seed=seed, results=vars(counts))
    click.echo(f"wrote {out_dir}: train {sum(counts.train)}, val {sum(counts.val)}, "
               f"test {sum(counts.test)}, extra {counts.extra}")


@group.command("preview")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@out_file_option("preview.png", "the PNG grid")
@click.option("--n", "n", type=click.IntRange(min=1), default=PREVIEW_N,
              help="How many images (round-robin over the classes).")
def preview(file, out, n):
    """A PNG grid of FILE's images, each titled with its class name."""
    from ..data import load_split, render_preview, scan_split
    from ..util.provenance import write_record

    layout = scan_split(file, limit=1).layout
    split = load_split(file, limit=n if layout == "extra" else None)
    shown = render_preview(split, out, n)
    write_record(record_path(out, folder=False), "data preview", {"file": file, "out": out, "n": n},
                 results={"indices": shown.tolist(), "layout": layout})
    click.echo(f"wrote {out}: {len(shown)} images of {file}")
