"""3D colour lookup tables: fit one to a photo's (or a model's) colour change, read and write
the .cube format, apply one to an image.

A LUT here is a float32 array of shape (N, N, N, 3) indexed `lut[r, g, b]`: the output colour
for the input colour (r, g, b) / (N - 1), all in [0, 1]. Between nodes it is interpolated
trilinearly (or tetrahedrally, as most video tools do by default).

    lut = fit_lut(low_in, low_out)            # from the input/output pair the network saw
    write_cube("look.cube", lut, title="DPE")  # loads in ffmpeg (lut3d), Resolve, Photoshop...
    out = apply_lut(photo_uint8, read_cube("look.cube"), interp="tetrahedral")

Fitting (`LutFitter`, `fit_lut`): each input colour falls in one lattice cell and is the
trilinear blend of the cell's 8 corners; the LUT is the least-squares solution of "the blend
of the LUT at each input colour equals its output colour", plus a graph-Laplacian smoothness
term across the lattice and a weak pull towards the identity:

    min_D  mean_i |sum_k w_ik D_k - (out_i - in_i)|^2 + smoothness * sum_(k~l) |D_k - D_l|^2
           + identity * sum_k |D_k|^2,        LUT = identity + D

so nodes next to the photo's colours follow the data, holes between them are filled smoothly,
and colours far from any data fall back to the identity. The normal equations are kept as a
27-point stencil on the lattice (their size does not depend on the number of pixels, so any
number of photos can be accumulated) and solved by preconditioned conjugate gradients.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from dpe_hf.imageio import atomic_write

__all__ = ["DEFAULT_SIZE", "LutFitter", "apply_lut", "fit_lut", "identity_lut",
           "read_cube", "write_cube"]

DEFAULT_SIZE = 33
DEFAULT_SMOOTHNESS = 1e-5
DEFAULT_IDENTITY = 1e-7
STRIP_PIXELS = 1 << 18  # apply_lut and LutFitter.add work on strips of this many pixels
COARSEST_SWEEPS = 20  # smoothing on a coarsest lattice too big for a dense solve

# The 27 offsets (dr, dg, db) of the normal equations' stencil, and the 8 corners of a cell.
_OFFSETS = [(dr, dg, db) for dr in (-1, 0, 1) for dg in (-1, 0, 1) for db in (-1, 0, 1)]
_CORNERS = [(cr, cg, cb) for cr in (0, 1) for cg in (0, 1) for cb in (0, 1)]


def identity_lut(size: int = DEFAULT_SIZE) -> np.ndarray:
    """The LUT that maps every colour to itself, (size, size, size, 3) float32."""
    _check_size(size)
    axis = np.linspace(0.0, 1.0, size, dtype=np.float64)
    r, g, b = np.meshgrid(axis, axis, axis, indexing="ij")
    return np.stack([r, g, b], axis=-1).astype(np.float32)


def _check_size(size: int) -> None:
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or not 2 <= size <= 256:
        raise ValueError(f"LUT size must be an integer between 2 and 256, got {size!r}")


def _check_lut(lut: np.ndarray) -> np.ndarray:
    lut = np.asarray(lut)
    n = lut.shape[0] if lut.ndim == 4 else 0
    if lut.ndim != 4 or lut.shape != (n, n, n, 3) or n < 2:
        raise ValueError(f"a LUT must have shape (N, N, N, 3) with N >= 2, got {lut.shape}")
    if not np.issubdtype(lut.dtype, np.floating):
        raise ValueError(f"a LUT must hold floats, got {lut.dtype}")
    return lut


def _as_colours(image: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 / uint16 / float image -> (M, 3) float32 in [0, 1]."""
    a = np.asarray(image)
    if a.ndim < 1 or a.shape[-1] != 3:
        raise ValueError(f"expected colours in the last axis (..., 3), got shape {a.shape}")
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / np.float32(255.0)
    elif a.dtype == np.uint16:
        a = a.astype(np.float32) / np.float32(65535.0)
    elif np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32, copy=False)
    else:
        raise ValueError(f"unsupported image dtype {a.dtype}: use uint8, uint16 or float in [0, 1]")
    return np.clip(np.nan_to_num(a.reshape(-1, 3), nan=0.0), 0.0, 1.0)


# --------------------------------------------------------------------------------------------
# fitting
# --------------------------------------------------------------------------------------------


class LutFitter:
    """Accumulates (input, output) colour pairs from any number of photos, then solves for the
    LUT (see the module docstring). Each `add` call counts with its `weight` in total, spread
    over its pixels, so a batch of photos of different sizes weighs each photo alike."""

    def __init__(self, size: int = DEFAULT_SIZE):
        _check_size(size)
        self.size = int(size)
        nodes = self.size ** 3
        self._ata = np.zeros((len(_OFFSETS), nodes))  # W^T W as 27 bands, by offset
        self._atr = np.zeros((nodes, 3))  # W^T (out - in)
        self.total_weight = 0.0

    def add(self, inputs: np.ndarray, outputs: np.ndarray, weight: float = 1.0) -> LutFitter:
        """Add the colour pairs of `inputs` -> `outputs` (same shape (..., 3); uint8, uint16 or
        float in [0, 1], e.g. a photo and its enhanced version). Returns self."""
        x, y = _as_colours(inputs), _as_colours(outputs)
        if x.shape != y.shape:
            raise ValueError(f"inputs and outputs differ in shape: {np.shape(inputs)} vs {np.shape(outputs)}")
        if len(x) == 0 or weight <= 0:
            return self
        unit = weight / len(x)  # each pixel's weight
        for start in range(0, len(x), STRIP_PIXELS):
            self._add_chunk(x[start:start + STRIP_PIXELS], y[start:start + STRIP_PIXELS], unit)
        self.total_weight += weight
        return self

    def _add_chunk(self, x: np.ndarray, y: np.ndarray, unit: float) -> None:
        n = self.size
        nodes = n ** 3
        pos = x.astype(np.float64) * (n - 1)
        base = np.minimum(np.floor(pos), n - 2).astype(np.int64)
        frac = pos - base
        base_index = (base[:, 0] * n + base[:, 1]) * n + base[:, 2]
        corner_w = [(frac[:, 0] if cr else 1 - frac[:, 0]) * (frac[:, 1] if cg else 1 - frac[:, 1])
                    * (frac[:, 2] if cb else 1 - frac[:, 2]) for cr, cg, cb in _CORNERS]
        residual = (y - x).astype(np.float64) * unit
        for (cr, cg, cb), wa in zip(_CORNERS, corner_w):
            index = base_index + (cr * n + cg) * n + cb
            for c in range(3):
                self._atr[:, c] += np.bincount(index, wa * residual[:, c], minlength=nodes)
            for (dr, dg, db), wb in zip(_CORNERS, corner_w):
                band = _OFFSETS.index((dr - cr, dg - cg, db - cb))
                self._ata[band] += np.bincount(index, wa * wb * unit, minlength=nodes)

    def solve(self, *, smoothness: float = DEFAULT_SMOOTHNESS, identity: float = DEFAULT_IDENTITY,
              tol: float = 1e-6, max_iter: int = 500, clip: bool = True) -> np.ndarray:
        """The fitted LUT, (size, size, size, 3) float32 (clipped to [0, 1] unless clip=False).
        With no data it is the identity."""
        if smoothness < 0 or identity <= 0:
            raise ValueError("smoothness must be >= 0 and identity > 0")
        n = self.size
        lut = identity_lut(n).astype(np.float64)
        if self.total_weight > 0:
            ata = (self._ata / self.total_weight).reshape(len(_OFFSETS), n, n, n)
            rhs = (self._atr / self.total_weight).reshape(n, n, n, 3)
            delta = _solve_stencil(ata, rhs, smoothness, identity, tol, max_iter)
            lut += delta
        if clip:
            np.clip(lut, 0.0, 1.0, out=lut)
        return lut.astype(np.float32)


def _operator_bands(ata: np.ndarray, smoothness: float, identity: float) -> np.ndarray:
    """The normal equations' matrix as 27 bands (27, n, n, n): `bands[k][x]` multiplies the
    unknown at lattice node x + _OFFSETS[k] in the equation of node x."""
    bands = ata.copy()
    n = bands.shape[1]
    centre = _OFFSETS.index((0, 0, 0))
    bands[centre] += identity
    for axis in range(3):
        for step in (-1, 1):
            offset = [0, 0, 0]
            offset[axis] = step
            band = bands[_OFFSETS.index(tuple(offset))]
            has_neighbour = [slice(None)] * 3
            has_neighbour[axis] = slice(0, n - 1) if step == 1 else slice(1, n)
            band[tuple(has_neighbour)] -= smoothness
            bands[centre][tuple(has_neighbour)] += smoothness
    return bands


class _Level:
    """One lattice of the multigrid hierarchy: its operator (27 bands) and smoother."""

    def __init__(self, bands):
        import torch
        import torch.nn.functional as F

        self.torch, self.F = torch, F
        self.n = bands.shape[1]
        self.bands = bands.unsqueeze(-1)  # (27, n, n, n, 1)
        self.inv_diag = 1.0 / bands.abs().sum(0).unsqueeze(-1)  # l1-Jacobi: convergent with weight 1
        self.dense_inverse = None

    def apply(self, v):
        n = self.n
        padded = self.F.pad(v.movedim(-1, 0), (1, 1, 1, 1, 1, 1)).movedim(0, -1)
        out = self.torch.zeros_like(v)
        for k, (dr, dg, db) in enumerate(_OFFSETS):
            out.addcmul_(self.bands[k], padded[1 + dr:1 + dr + n, 1 + dg:1 + dg + n, 1 + db:1 + db + n])
        return out

    def make_dense(self) -> None:
        torch = self.torch
        n = self.n
        eye = torch.eye(n ** 3, dtype=self.bands.dtype).reshape(n, n, n, n ** 3)
        self.dense_inverse = torch.linalg.inv(self.apply(eye).reshape(n ** 3, n ** 3))


def _prolong(c):
    """Trilinear interpolation from a lattice of m nodes per side to 2m - 1 (nodes shared)."""
    for axis in range(3):
        c = c.movedim(axis, 0)
        fine = c.new_empty((2 * c.shape[0] - 1, *c.shape[1:]))
        fine[0::2] = c
        fine[1::2] = (c[:-1] + c[1:]) * 0.5
        c = fine.movedim(0, axis)
    return c


def _restrict(f):
    """The transpose of `_prolong`."""
    for axis in range(3):
        f = f.movedim(axis, 0)
        coarse = f[0::2].clone()
        coarse[:-1] += 0.5 * f[1::2]
        coarse[1:] += 0.5 * f[1::2]
        f = coarse.movedim(0, axis)
    return f


def _galerkin(level: _Level):
    """Bands of the coarse operator P^T A P (27-point again), found by probing with the 27
    classes of coarse nodes that are 3 apart (no two in one node's 3x3x3 neighbourhood)."""
    torch = level.torch
    m = (level.n + 1) // 2
    i = torch.arange(m)
    classes = torch.arange(3)
    # member[c, i]: coarse node i belongs to class c along one axis
    member = (i[None, :] % 3 == classes[:, None]).to(level.bands.dtype)
    probes = torch.einsum("ai,bj,ck->ijkabc", member, member, member).reshape(m, m, m, 27)
    response = _restrict(level.apply(_prolong(probes)))  # (m, m, m, 27): column = class
    # For node x, the member of class c within its neighbourhood is at offset ((c - x + 1) % 3) - 1.
    offset = (classes[:, None] - i[None, :] + 1) % 3  # (3 classes, m) -> 0..2 == offset + 1
    bands = torch.zeros((27, m, m, m), dtype=level.bands.dtype)
    flat_cls = torch.arange(27).reshape(3, 3, 3)
    for a in range(3):
        for b in range(3):
            for c in range(3):
                k = (offset[a][:, None, None] * 9 + offset[b][None, :, None] * 3 + offset[c][None, None, :])
                bands.view(27, -1).scatter_(0, k.reshape(1, -1), response[..., flat_cls[a, b, c]].reshape(1, -1))
    return bands


def _v_cycle(levels: list[_Level], r, depth: int = 0, sweeps: int = 2):
    """One symmetric V-cycle (a fixed linear, symmetric map: usable as CG's preconditioner)."""
    level = levels[depth]
    if level.dense_inverse is not None:
        return (level.dense_inverse @ r.reshape(-1, r.shape[-1])).reshape(r.shape)
    coarsest = depth == len(levels) - 1  # and too big for a dense solve: only smoothing
    pre = COARSEST_SWEEPS if coarsest else sweeps
    x = level.inv_diag * r
    for _ in range(pre - 1):
        x += level.inv_diag * (r - level.apply(x))
    if coarsest:
        return x
    x += _prolong(_v_cycle(levels, _restrict(r - level.apply(x)), depth + 1, sweeps))
    for _ in range(sweeps):
        x += level.inv_diag * (r - level.apply(x))
    return x


def _solve_stencil(ata: np.ndarray, rhs: np.ndarray, smoothness: float, identity: float, tol: float,
                   max_iter: int) -> np.ndarray:
    """Solve (W^T W + smoothness * L + identity * I) d = rhs (three right-hand sides) by
    conjugate gradients preconditioned with a geometric multigrid V-cycle: Galerkin coarse
    lattices 33 -> 17 -> 9 -> 5 (halving while the size is odd), l1-Jacobi smoothing, a dense
    solve on the coarsest lattice (or Jacobi sweeps where it is too big for one)."""
    import torch

    levels = [_Level(torch.from_numpy(_operator_bands(ata, smoothness, identity)))]
    while levels[-1].n % 2 == 1 and levels[-1].n > 5:
        levels.append(_Level(_galerkin(levels[-1])))
    if levels[-1].n ** 3 <= 1000:
        levels[-1].make_dense()

    b = torch.from_numpy(rhs)
    x = torch.zeros_like(b)
    r = b.clone()
    z = _v_cycle(levels, r)
    p = z.clone()
    rz = (r * z).sum((0, 1, 2))
    stop = tol * b.square().sum((0, 1, 2)).sqrt()
    for _ in range(max_iter):
        if bool((r.square().sum((0, 1, 2)).sqrt() <= stop).all()):
            break
        ap = levels[0].apply(p)
        alpha = rz / (p * ap).sum((0, 1, 2)).clamp_min(1e-300)
        x += alpha * p
        r -= alpha * ap
        z = _v_cycle(levels, r)
        rz_new = (r * z).sum((0, 1, 2))
        p = z + (rz_new / rz.clamp_min(1e-300)) * p
        rz = rz_new
    return x.numpy()


def fit_lut(low_in: np.ndarray, low_out: np.ndarray, size: int = DEFAULT_SIZE, *,
            smoothness: float = DEFAULT_SMOOTHNESS, identity: float = DEFAULT_IDENTITY,
            clip: bool = True) -> np.ndarray:
    """Fit a (size, size, size, 3) LUT that maps the colours of `low_in` to those of `low_out`
    (H x W x 3 each, uint8 / uint16 / float in [0, 1]; typically the low-resolution copy a
    network saw and its output). See the module docstring for the regularisation."""
    return LutFitter(size).add(low_in, low_out).solve(smoothness=smoothness, identity=identity, clip=clip)


# --------------------------------------------------------------------------------------------
# the .cube format
# --------------------------------------------------------------------------------------------


def write_cube(path: str | os.PathLike, lut: np.ndarray, title: str | None = None) -> Path:
    """Write `lut` (N, N, N, 3) as a .cube file (Adobe/Resolve 3D LUT: TITLE, LUT_3D_SIZE,
    DOMAIN_MIN/MAX 0..1, then N^3 rows "R G B" with the red index changing fastest). Written
    atomically; returns the path."""
    lut = _check_lut(lut)
    n = lut.shape[0]
    path = Path(path)
    lines = []
    if title is not None:
        clean = re.sub(r'[\x00-\x1f"]', " ", str(title)).strip()
        lines.append(f'TITLE "{clean}"')
    lines += [f"LUT_3D_SIZE {n}", "DOMAIN_MIN 0.0 0.0 0.0", "DOMAIN_MAX 1.0 1.0 1.0"]
    rows = np.asarray(lut, dtype=np.float64).transpose(2, 1, 0, 3).reshape(-1, 3)  # b, g, r: red fastest
    body = "\n".join(f"{r:.6f} {g:.6f} {b:.6f}" for r, g, b in rows.tolist())
    text = "\n".join(lines) + "\n" + body + "\n"
    return atomic_write(path, lambda fh: fh.write(text.encode("ascii")))


def read_cube(path: str | os.PathLike) -> np.ndarray:
    """Read a 3D .cube file into a (N, N, N, 3) float32 LUT indexed [r, g, b].
    Raises ValueError (naming the file) for 1D LUTs, a domain other than 0..1, or a bad file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the LUT ({exc.strerror or exc})") from None
    size = None
    domain = ([0.0] * 3, [1.0] * 3)
    values: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key = line.split(None, 1)[0].upper()
        if key[0].isdigit() or key[0] in "+-.":
            values.append(line)
        elif key == "TITLE":
            continue
        elif key == "LUT_3D_SIZE":
            try:
                size = int(line.split()[1])
            except (IndexError, ValueError):
                raise ValueError(f"{path}: line {number}: bad LUT_3D_SIZE") from None
        elif key == "LUT_1D_SIZE":
            raise ValueError(f"{path}: a 1D LUT (LUT_1D_SIZE); only 3D LUTs are supported")
        elif key in ("DOMAIN_MIN", "DOMAIN_MAX", "LUT_3D_INPUT_RANGE"):
            try:
                nums = [float(v) for v in line.split()[1:]]
            except ValueError:
                raise ValueError(f"{path}: line {number}: bad {key}") from None
            if key == "LUT_3D_INPUT_RANGE" and len(nums) == 2:
                domain = ([nums[0]] * 3, [nums[1]] * 3)
            elif len(nums) == 3:
                domain[0 if key == "DOMAIN_MIN" else 1][:] = nums
            else:
                raise ValueError(f"{path}: line {number}: bad {key}")
        else:
            continue  # other keywords (LUT_IN_VIDEO_RANGE, ...) carry no data we use
    if size is None:
        raise ValueError(f"{path}: not a 3D .cube LUT (no LUT_3D_SIZE)")
    _check_size(size)
    if domain != ([0.0] * 3, [1.0] * 3):
        raise ValueError(f"{path}: domain {domain[0]}..{domain[1]}; only 0..1 is supported")
    if len(values) != size ** 3:
        raise ValueError(f"{path}: {len(values)} rows of values, LUT_3D_SIZE {size} needs {size ** 3}")
    try:
        rows = np.array([[float(v) for v in line.split()] for line in values], dtype=np.float64)
    except ValueError:
        raise ValueError(f"{path}: a row of values is not three numbers") from None
    if rows.shape != (size ** 3, 3):
        raise ValueError(f"{path}: every row of values must hold three numbers")
    return rows.reshape(size, size, size, 3).transpose(2, 1, 0, 3).astype(np.float32)


# --------------------------------------------------------------------------------------------
# applying
# --------------------------------------------------------------------------------------------


def apply_lut(image: np.ndarray, lut: np.ndarray, interp: str = "trilinear") -> np.ndarray:
    """Map every pixel of `image` (H x W x 3 or (..., 3); uint8, uint16 or float in [0, 1])
    through `lut` (N, N, N, 3). Returns the image's dtype (floats as float32); inputs outside
    [0, 1] are clamped for the lookup. `interp`: "trilinear" or "tetrahedral". Runs on strips
    of a quarter megapixel, so a 12 MP photo needs little extra memory."""
    import torch

    if interp not in ("trilinear", "tetrahedral"):
        raise ValueError(f"interp must be 'trilinear' or 'tetrahedral', got {interp!r}")
    lut = _check_lut(lut)
    image = np.asarray(image)
    if image.ndim < 1 or image.shape[-1] != 3:
        raise ValueError(f"expected an image with 3 channels in the last axis, got shape {image.shape}")
    dtype = image.dtype
    if dtype == np.uint8:
        scale = 255.0
    elif dtype == np.uint16:
        scale = 65535.0
    elif np.issubdtype(dtype, np.floating):
        scale = None
    else:
        raise ValueError(f"unsupported image dtype {dtype}: use uint8, uint16 or float in [0, 1]")
    flat = image.reshape(-1, 3)
    out_dtype = np.float32 if scale is None else dtype
    out = np.empty(flat.shape, dtype=out_dtype)
    n = lut.shape[0]
    table = torch.from_numpy(np.ascontiguousarray(lut, dtype=np.float32))
    if interp == "trilinear":
        volume = table.permute(3, 2, 1, 0)[None].contiguous()  # (1, 3, b, g, r) for grid_sample
    else:
        volume = table.reshape(-1, 3)
    step = max(1, STRIP_PIXELS)
    with torch.inference_mode():
        for start in range(0, len(flat), step):
            chunk = torch.from_numpy(np.ascontiguousarray(flat[start:start + step])).float()
            if scale is not None:
                chunk.mul_(1.0 / scale)
            chunk = torch.nan_to_num(chunk, nan=0.0).clamp_(0.0, 1.0)
            if interp == "trilinear":
                mapped = _trilinear(volume, chunk)
            else:
                mapped = _tetrahedral(volume, chunk, n)
            if scale is None:
                out[start:start + step] = mapped.numpy()
            else:
                out[start:start + step] = mapped.mul_(scale).round_().clamp_(0, scale).numpy().astype(dtype)
    return out.reshape(image.shape)


def _trilinear(volume, colours):
    import torch.nn.functional as F

    grid = (colours * 2 - 1).view(1, 1, 1, -1, 3)  # x -> r (last axis), y -> g, z -> b
    mapped = F.grid_sample(volume, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return mapped.view(3, -1).t()


def _tetrahedral(table, colours, n: int):
    """Tetrahedral interpolation: the cell is split into 6 tetrahedra along its main diagonal.
    With the fractions hi >= mid >= lo, the path from corner 000 to 111 steps along the axis of
    hi, then of mid, then of lo: (1-hi) V000 + (hi-mid) V(hi) + (mid-lo) V(hi+mid) + lo V111."""
    import torch

    pos = colours * (n - 1)
    base = pos.floor().clamp_(max=n - 2)
    frac = pos.sub_(base)
    base = base.long()
    fr, fg, fb = frac.unbind(1)
    index0 = (base[:, 0] * n + base[:, 1]) * n + base[:, 2]
    # The axis of the largest fraction and that of the smallest, distinct under ties.
    r_max = (fr >= fg) & (fr >= fb)
    g_max = ~r_max & (fg >= fb)
    b_min = (fb <= fg) & (fb <= fr)
    g_min = ~b_min & (fg <= fr)
    hi = torch.where(r_max, fr, torch.where(g_max, fg, fb))
    lo = torch.where(b_min, fb, torch.where(g_min, fg, fr))
    mid = fr + fg + fb - hi - lo
    corner = n * n + n + 1  # index step from corner 000 to 111
    index1 = index0 + torch.where(r_max, n * n, torch.where(g_max, n, 1))
    index2 = index0 + corner - torch.where(b_min, 1, torch.where(g_min, n, n * n))
    out = table.index_select(0, index0).mul_((1 - hi).unsqueeze(1))
    out.addcmul_(table.index_select(0, index1), (hi - mid).unsqueeze(1))
    out.addcmul_(table.index_select(0, index2), (mid - lo).unsqueeze(1))
    out.addcmul_(table.index_select(0, index0 + corner), lo.unsqueeze(1))
    return out
