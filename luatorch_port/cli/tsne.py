"""`a2 tsne` (report 3.2): a t-SNE scatter and image map of a course split."""

from __future__ import annotations

import click

from ..util.errors import A2Error
from ..visualize.run import CHANNEL, FEATURES, MAP_SIZE, THUMB
from ..visualize.tsne import METHODS, N_ITER, PCA_DIMS, PERPLEXITY, THETA
from ..visualize.tsne_exact import EXACT_MAX_POINTS, EXPLORATION_ITER
from .common import (device_option, ensure_parent, meter, out_file_option, quiet_option, record_path,
                     resolve_device, seed_everything, seed_option)


@click.command("tsne")
@click.argument("data_path", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@out_file_option("tsne.png", "the scatter PNG, with <stem>_map.png (the image map) and <stem>.csv "
                             "(the coordinates)")
@click.option("--features", default=FEATURES,
              help="raw (the report: one channel of each image), a MODEL file (.t7/.net/.pt: its "
                   "penultimate layer) or a CENTROIDS file (k-means triangle features).")
@click.option("--channel", type=int, default=CHANNEL,
              help="With --features raw: the channel (1-based, as Lua).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Use only the first N images of FILE.")
@click.option("--pca", "pca_dims", type=click.IntRange(min=0), default=PCA_DIMS,
              help="PCA dimensions before t-SNE; 0 = none, manifold's default (the exact method then "
                   "takes the distances of the raw features from one GEMM).")
@click.option("--perplexity", type=float, default=PERPLEXITY, help="t-SNE perplexity.")
@click.option("--method", type=click.Choice(METHODS), default="auto",
              help=f"exact: the exact t-SNE gradient in torch; barnes-hut: scikit-learn's; auto: "
                   f"exact up to {EXACT_MAX_POINTS:,} images, Barnes-Hut above.")
@click.option("--theta", type=float, default=THETA, help="Barnes-Hut angle (--method barnes-hut).")
@click.option("--iterations", type=click.IntRange(min=EXPLORATION_ITER), default=N_ITER,
              help="t-SNE iterations (at least the early-exaggeration phase).")
@click.option("--threads", type=click.IntRange(min=0), default=1,
              help="Threads for the t-SNE step; 0 = all cores.")
@click.option("--map-size", type=click.IntRange(min=1), default=MAP_SIZE,
              help="Side of the image map in pixels.")
@click.option("--thumb", type=click.IntRange(min=1), default=THUMB,
              help="Side of each thumbnail on the image map.")
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
    write_record(record_path(out, folder=False), "tsne", config, seed=seed, device=dev, results=result)
    click.echo(f"{result['n_images']} images, {result['features']}: trustworthiness "
               f"{result['trustworthiness']:.3f} in {result['seconds']['total']:.1f} s -> {out}, "
               f"{result['image_map']}, {result['coords_csv']}")
