"""`a2 tsne` (report 3.2): a t-SNE scatter and image map of a course split."""

from __future__ import annotations

import os

import click

from ..util.errors import A2Error
from ..visualize.tsne import N_ITER, PCA_DIMS, PERPLEXITY, THETA
from .common import device_option, ensure_parent, meter, quiet_option, resolve_device, seed_everything, seed_option


@click.command("tsne")
@click.argument("data_path", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), default="tsne.png",
              help="Scatter PNG; <stem>_map.png (image map), <stem>.csv and <stem>.json go beside it.")
@click.option("--features", default="raw",
              help="raw (the report: one channel of each image), a MODEL file (.t7/.net/.pt: its "
                   "penultimate layer) or a CENTROIDS file (k-means triangle features).")
@click.option("--channel", type=int, default=1, help="With --features raw: the channel (1-based, as Lua).")
@click.option("--limit", type=int, default=None, help="Use only the first N images of FILE.")
@click.option("--pca", "pca_dims", type=int, default=PCA_DIMS, show_default=True,
              help="PCA dimensions before t-SNE; 0 = none, manifold's default (the exact method then "
                   "takes the distances of the raw features from one GEMM).")
@click.option("--perplexity", type=float, default=PERPLEXITY, show_default=True, help="t-SNE perplexity.")
@click.option("--method", type=click.Choice(["auto", "exact", "barnes-hut"]), default="auto",
              help="exact: the exact t-SNE gradient in torch; barnes-hut: scikit-learn's; auto: exact "
                   "up to 2,500 images (faster there), Barnes-Hut above.")
@click.option("--theta", type=float, default=THETA, show_default=True, help="Barnes-Hut angle (--method barnes-hut).")
@click.option("--iterations", type=int, default=N_ITER, show_default=True, help="t-SNE iterations.")
@click.option("--threads", type=int, default=1, show_default=True,
              help="Threads for the t-SNE step; 0 = all cores (on a busy machine one thread can be "
                   "faster: docs/visualize.md).")
@click.option("--map-size", type=int, default=1024, help="Side of the image map in pixels.")
@click.option("--thumb", type=int, default=32, help="Side of each thumbnail on the image map.")
@seed_option()
@device_option()
@quiet_option()
def tsne_cmd(data_path, out, features, channel, limit, pca_dims, perplexity, method, theta, iterations, threads,
             map_size, thumb, seed, device, quiet):
    """t-SNE of the images in FILE (e.g. val.t7b), as manifold's tsne: no PCA unless --pca N
    (exact gradient up to 2,500 images, Barnes-Hut above); writes a scatter coloured by class, an image map, the 2-D coordinates (CSV) and the
    trustworthiness of the map."""
    from ..util.provenance import write_record
    from ..visualize.run import run_tsne

    for name, value, low in (("limit", limit or 1, 1), ("pca", pca_dims, 0), ("iterations", iterations, 250),
                             ("threads", threads, 0), ("map-size", map_size, 1), ("thumb", thumb, 1)):
        if value < low:
            raise A2Error(f"--{name} {value} should be >= {low}")
    if thumb > map_size:
        raise A2Error(f"--thumb {thumb} should be <= --map-size {map_size}")
    dev = resolve_device(device)
    gen = seed_everything(seed, quiet=quiet)
    ensure_parent(out)
    result = run_tsne(data_path, out, features=features, channel=channel, limit=limit, pca_dims=pca_dims,
                      perplexity=perplexity, theta=theta, n_iter=iterations, threads=threads or None, method=method,
                      map_size=map_size, thumb=thumb, device=dev, generator=gen, progress=meter(quiet))
    config = {"data": data_path, "features": features, "channel": channel, "limit": limit, "pca": pca_dims,
              "perplexity": perplexity, "method": method, "theta": theta, "iterations": iterations, "threads": threads,
              "map_size": map_size, "thumb": thumb}
    write_record(os.path.splitext(out)[0] + ".json", "tsne", config, seed=seed, device=dev, results=result)
    click.echo(f"{result['n_images']} images, {result['features']}: trustworthiness "
               f"{result['trustworthiness']:.3f} in {result['seconds']['total']:.1f} s -> {out}, "
               f"{result['image_map']}, {result['coords_csv']}")
