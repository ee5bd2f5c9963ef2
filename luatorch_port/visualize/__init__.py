"""Report part 3: figures (3.1: filters, centroids, augmentations, learning curves) and t-SNE maps (3.2).

Modules, one way down: :mod:`figures` (Lua image.toDisplayTensor and friends, PNG writers),
:mod:`pca`, :mod:`tsne_exact` (exact-gradient t-SNE), :mod:`tsne` (the embedding),
:mod:`features` (what is embedded), :mod:`scatter` (the t-SNE scatter, Pillow), :mod:`run` (``a2 tsne``).
"""
