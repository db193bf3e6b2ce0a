"""The numbers that several front ends share, in one place that imports nothing, so that `dpe
--help` (which must start fast) and the inference core read the same values."""

DEFAULT_MAX_SIDE = 512  # long side of the copy the network sees: the size it was trained at
METHODS = ("guided", "residual", "tiled")  # how a result reaches full size (dpe_hf.enhancer)
#: Tile side of ``method="tiled"`` (rounded up to a multiple of the network's downsampling
#: factor) and the overlap of neighbouring tiles (a multiple of it too, so every tile starts on
#: the whole image's grid).
DEFAULT_TILE = 1024
DEFAULT_OVERLAP = 64
MIN_TILE = 64
DEFAULT_MAX_PIXELS = 100_000_000  # larger photos are refused from their header
