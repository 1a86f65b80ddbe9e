"""Exact probabilities of ReLU-network predicates by enumerating the linear regions.

A ReLU MLP is affine on each cell of a polyhedral partition of its input space. Starting from a
bounded root cell, every hidden neuron whose hyperplane crosses a cell splits it; on each final
cell the output is ``O x + o`` and a predicate made of linear inequalities (output[0] > tau, or
argmax = target) cuts a convex piece whose probability is computed in closed form (1-D Gaussian:
differences of normal tails; uniform box: area) or by Gauss-Legendre quadrature in polar angle
(2-D Gaussian), which is smooth between the piece's vertex angles and converges to machine
precision. Cells are intervals (1-D) or polygons (2-D), split by exact clipping in float64, or
convex polytopes (3-D to 6-D, uniform box inputs only), described below.

The Gaussian root cell is the square [-R, R]^2 (or [-R, R]) with R = 12: the mass outside is
below 4 Phi(-12) = 7e-33, far under 1e-10 of the smallest probability (1e-12) the task uses.
Every cell is also split by the coordinate axes first, so that each lies in one quadrant: its
angular extent is then below pi/2 and the polar integral needs no wrap-around.

Polytopes (input dimension 3 to 6) are clipped combinatorially, a d-dimensional Sutherland-Hodgman
(no linear programs, no qhull). A polytope is kept *simple*: every vertex lies on exactly d facets,
stored as facet labels with each label's hyperplane. The box is simple, and clipping keeps it so:
the vertices with h x + g >= 0 stay, and each edge from a kept to a removed vertex (the pairs of
vertices that share d - 1 facets) gets a new vertex, interpolated in float64 at the crossing, on
those d - 1 facets and the new one. The structure is only as good as the sides it is built from:
a vertex within 1e-9 (relative) of the hyperplane has its side decided in exact rational
arithmetic, at the exact intersection of its d facet planes (rounding can otherwise put two float
copies of one point on opposite sides, and the tiling then misses or double-counts whole cells: the
tests' adversarial cuts through vertices are off by up to the box's whole volume without it). A vertex exactly on the
hyperplane counts as kept (a symbolic perturbation of the hyperplane), so it is never on more than
d facets: its edges to the removed side end in copies of it, edges of zero length that add nothing
to any volume. The volume is a pulling triangulation (each face coned from its lowest-numbered
vertex) read off the vertex-facet incidence, summed as |det| / d! (all terms >= 0, so rounding
stays relative). A clip is empty (None) exactly when no vertex lies strictly inside the halfspace;
a piece that is nonempty but thinner than rounding keeps a volume of order the rounding (about
1e-16 of the cell), far below the 1e-10 relative accuracy of the truth. qhull would also do
(``scipy.spatial.HalfspaceIntersection`` and ``ConvexHull``), but in 5-D and 6-D its hull of the
clipped cells' vertices stops on ``QH6271`` (wide dupridge merges at short edges), and the
combinatorial clip is several times faster; the tests check the volumes against qhull where it
succeeds, against the closed form of a cube cut by a hyperplane (1e-10 relative down to p = 1e-12)
and against Monte Carlo.

Standard normal inputs in 3 or more dimensions are not supported: the Gaussian mass of a general
polytope has no closed form (the 2-D polar integral has no analogue of the same precision), so
``root_cells`` raises ``ValueError``; F2 uses box inputs there, where the mass is the volume
divided by 2^d.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from scipy.special import log_ndtr, ndtr

__all__ = ["GAUSS_RADIUS", "MAX_POLYTOPE_DIM", "Interval", "Polygon", "Polytope", "LinearRegion",
           "linear_regions", "root_cells", "predicate_halfspaces", "probability", "region_probability"]

GAUSS_RADIUS = 12.0
MAX_POLYTOPE_DIM = 6  # the range F2 uses and the tests cover (the triangulation costs d! per vertex)
# |h v + g| below this fraction of |h| |v| + |g|: the vertex's side is decided in exact arithmetic.
# Float64 vertices are within about 1e-15 of their exact position (interpolations of the box's
# corners, a few dozen deep), so a side decided outside the band is the exact side.
_EXACT_SIDE_BAND = 1e-9
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(48)


@dataclass
class Interval:
    lo: float
    hi: float

    @property
    def vertices(self) -> np.ndarray:
        return np.array([[self.lo], [self.hi]])

    def clip(self, h: np.ndarray, g: float) -> "Interval | None":
        """The part where h x + g >= 0 (None when it has no length)."""
        a = float(h[0])
        if a == 0.0:  # constant: the predicates are strict, so h x + g = 0 is outside
            return self if g > 0 else None
        root = -g / a
        lo, hi = (max(self.lo, root), self.hi) if a > 0 else (self.lo, min(self.hi, root))
        return Interval(lo, hi) if hi > lo else None

    def gaussian_measure(self) -> float:
        lo, hi = self.lo, self.hi
        if lo >= 0:   # upper tail: both tails are tiny, subtract them on their own scale
            return float(ndtr(-lo) - ndtr(-hi))
        if hi <= 0:
            return float(ndtr(hi) - ndtr(lo))
        return float(1.0 - ndtr(lo) - ndtr(-hi))

    def uniform_measure(self, side: float) -> float:
        return (self.hi - self.lo) / side


@dataclass
class Polygon:
    vertices: np.ndarray  # (n, 2), counter-clockwise

    def clip(self, h: np.ndarray, g: float) -> "Polygon | None":
        """Sutherland-Hodgman clip to h x + g >= 0 (None when nothing of positive area is left)."""
        v = self.vertices
        if not np.any(h):  # constant: the predicates are strict, so h x + g = 0 is outside
            return self if g > 0 else None
        s = v @ h + g
        if s.min() >= 0:
            return self
        if s.max() <= 0:
            return None
        out = []
        n = len(v)
        for i in range(n):
            j = (i + 1) % n
            if s[i] >= 0:
                out.append(v[i])
            if (s[i] > 0 > s[j]) or (s[i] < 0 < s[j]):
                t = s[i] / (s[i] - s[j])
                out.append(v[i] + t * (v[j] - v[i]))
        if len(out) < 3:
            return None
        poly = Polygon(np.array(out))
        return poly if poly.area() > 0 else None

    def area(self) -> float:
        x, y = self.vertices[:, 0], self.vertices[:, 1]
        return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))

    def uniform_measure(self, side: float) -> float:
        return self.area() / side ** 2

    def gaussian_measure(self, nodes: np.ndarray = _GL_NODES, weights: np.ndarray = _GL_WEIGHTS) -> float:
        """Standard-normal mass: (1/2 pi) * integral over angle of exp(-r1^2/2) - exp(-r2^2/2), where
        [r1, r2] is the ray's chord through the polygon (which lies in one closed quadrant)."""
        v = self.vertices
        w = np.roll(v, -1, axis=0) - v
        normal = np.stack([w[:, 1], -w[:, 0]], axis=1)           # outward for counter-clockwise order
        offset = np.sum(normal * v, axis=1)                       # n . x <= offset inside
        radius = np.hypot(v[:, 0], v[:, 1])
        angles = np.unique(np.arctan2(v[radius > 0, 1], v[radius > 0, 0]))
        if angles.size < 2:
            return 0.0
        if angles[-1] - angles[0] > math.pi:  # the quadrant straddles the +-pi cut (third quadrant's edge)
            angles = np.unique(np.where(angles < 0, angles + 2 * math.pi, angles))
        lo, hi = angles[:-1], angles[1:]
        theta = (0.5 * (hi - lo))[:, None] * nodes[None, :] + (0.5 * (hi + lo))[:, None]
        u = np.stack([np.cos(theta), np.sin(theta)], axis=-1)     # (pieces, nodes, 2)
        nu = u @ normal.T                                         # (pieces, nodes, edges)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = offset / nu
        upper = np.where(nu > 0, ratio, np.inf).min(axis=-1)
        lower = np.maximum(np.where(nu < 0, ratio, -np.inf).max(axis=-1), 0.0)
        upper = np.maximum(upper, lower)
        # exp(-l^2/2) (1 - exp(-(u^2 - l^2)/2)) keeps full relative precision for thin chords
        f = np.exp(-0.5 * lower ** 2) * -np.expm1(-0.5 * (upper - lower) * (upper + lower))
        f = np.where(np.isfinite(f), f, 0.0)
        return float(np.sum((0.5 * (hi - lo)) * (f @ weights)) / (2 * math.pi))


@dataclass(eq=False)
class Polytope:
    """A bounded, simple convex polytope in 3 or more dimensions: its vertices, for each the labels
    of the d facets through it, and each label's hyperplane (row ``planes[label] = [n, c]``, the
    facet lying in n x + c = 0)."""
    vertices: np.ndarray   # (n, dim) float64
    facets: np.ndarray     # (n, dim) int64: indices into planes
    planes: np.ndarray     # (labels, dim + 1) float64
    _volume: float | None = field(default=None, repr=False)

    @classmethod
    def box(cls, dim: int, half_side: float) -> "Polytope":
        """The cube [-half_side, half_side]^dim; facet 2i is x_i = half_side, 2i + 1 is x_i = -half_side."""
        low = np.array(np.meshgrid(*[[False, True]] * dim, indexing="ij")).reshape(dim, -1).T
        vertices = np.where(low, -float(half_side), float(half_side))
        facets = 2 * np.arange(dim)[None, :] + low
        planes = np.zeros((2 * dim, dim + 1))
        planes[0::2, :dim], planes[1::2, :dim] = -np.eye(dim), np.eye(dim)
        planes[:, dim] = float(half_side)
        return cls(vertices, facets.astype(np.int64), planes)

    @property
    def dim(self) -> int:
        return self.vertices.shape[1]

    def clip(self, h: np.ndarray, g: float) -> "Polytope | None":
        """The part where h x + g >= 0 (None when no vertex lies strictly inside: no volume left)."""
        h = np.asarray(h, dtype=np.float64)
        g = float(g)
        if not np.any(h):  # constant: the predicates are strict, so h x + g = 0 is outside
            return self if g > 0 else None
        s = self.vertices @ h + g
        # a vertex this close to the hyperplane may sit on the wrong side by rounding: its side,
        # which decides the combinatorial structure, is taken from its exact position instead
        near = np.flatnonzero(np.abs(s) <= _EXACT_SIDE_BAND * (np.abs(self.vertices) @ np.abs(h) + abs(g)))
        if near.size:
            s = s.copy()
            s[near] = [float(_exact_slack(self.planes[self.facets[i]], h, g)) for i in near]
        if s.min() >= 0:
            return self
        if s.max() <= 0:
            return None
        kept, removed = np.flatnonzero(s >= 0), np.flatnonzero(s < 0)
        fk, fr = self.facets[kept], self.facets[removed]
        # in_other[a, b, i]: facet i of kept vertex a is also a facet of removed vertex b
        in_other = (fk[:, None, :, None] == fr[None, :, None, :]).any(axis=3)
        a, b = np.nonzero(in_other.sum(axis=2) == self.dim - 1)  # the edges crossing the hyperplane
        ka, rb = kept[a], removed[b]
        t = s[ka] / (s[ka] - s[rb])  # in [0, 1): s[ka] >= 0 > s[rb]
        crossing = self.vertices[ka] + t[:, None] * (self.vertices[rb] - self.vertices[ka])
        new_label = len(self.planes)
        shared = fk[a][in_other[a, b]].reshape(len(a), self.dim - 1)
        crossing_facets = np.column_stack([shared, np.full(len(a), new_label, dtype=np.int64)])
        return Polytope(np.vstack([self.vertices[kept], crossing]), np.vstack([fk, crossing_facets]),
                        np.vstack([self.planes, np.append(h, g)]))

    def volume(self) -> float:
        """The volume, by a pulling triangulation: each face is coned from its lowest-numbered
        vertex over the triangulations of its facets that miss that vertex. A full flag (vertex w,
        an order of w's d facets) names the chain of faces T_0 (the polytope) > T_1 > ... > T_{d-1}
        (an edge) > {w}, T_k on the first k facets; its simplex (apex T_0, ..., apex T_{d-1}, w) is
        in the triangulation exactly when those apexes increase strictly."""
        if self._volume is None:
            self._volume = _pulling_volume(self.vertices, self.facets)
        return self._volume

    def uniform_measure(self, side: float) -> float:
        return self.volume() / side ** self.dim

    def gaussian_measure(self, **_quad) -> float:
        raise ValueError(_NO_GAUSSIAN_POLYTOPES.format(dim=self.dim))


def _exact_slack(facet_planes: np.ndarray, h: np.ndarray, g: float) -> Fraction:
    """h v + g in exact rational arithmetic, v the intersection of the d facet planes (the vertex
    that a float64 vertex approximates), by Gauss-Jordan elimination on the float inputs' exact values."""
    dim = len(h)
    rows = [[Fraction(float(x)) for x in plane[:dim]] + [-Fraction(float(plane[dim]))] for plane in facet_planes]
    for col in range(dim):
        pivot = next((r for r in range(col, dim) if rows[r][col] != 0), None)
        if pivot is None:
            raise ValueError(f"facet planes {facet_planes.tolist()} do not meet in one vertex: inconsistent polytope")
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(dim):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col] / rows[col][col]
                rows[r] = [x - factor * y for x, y in zip(rows[r], rows[col])]
    vertex = [rows[i][dim] / rows[i][i] for i in range(dim)]
    return sum((Fraction(float(hi)) * vi for hi, vi in zip(h, vertex)), Fraction(g))


_NO_GAUSSIAN_POLYTOPES = ("Gaussian inputs are supported in 1-D and 2-D only: the standard normal mass of a "
                          "{dim}-D polytope has no exact closed form; use input_dist='box' in 3-D and above")


def _face_ids(facets: np.ndarray) -> np.ndarray:
    """face[w, m]: a number for the face through vertex w on the facets picked by bit mask m of
    w's d facets (m = 0: the polytope itself); equal numbers, equal faces."""
    n, dim = facets.shape
    subsets = ((np.arange(1 << dim)[:, None] >> np.arange(dim)[None, :]) & 1).astype(bool)
    labels, compact = np.unique(facets, return_inverse=True)
    compact = compact.reshape(n, dim)
    if len(labels) < 63:  # a face is its set of facets: one int64 bit mask
        keys = (np.left_shift(1, compact)[:, None, :] * subsets[None, :, :]).sum(axis=2).reshape(-1)
        _, face = np.unique(keys, return_inverse=True)
    else:  # sorted facet labels, -1 padding the unused slots
        rows = np.sort(np.where(subsets[None, :, :], compact[:, None, :], -1), axis=2).reshape(-1, dim)
        _, face = np.unique(rows, axis=0, return_inverse=True)
    return face.reshape(n, 1 << dim)


def _pulling_volume(vertices: np.ndarray, facets: np.ndarray) -> float:
    n, dim = vertices.shape
    face = _face_ids(facets)
    lowest = np.full(int(face.max()) + 1, n, dtype=np.int64)
    np.minimum.at(lowest, face, np.arange(n)[:, None])
    apex = lowest[face]                           # apex[w, m]: the face's lowest-numbered vertex
    # grow the chains T_0 > T_1 > ... one facet at a time, keeping those whose apexes increase
    owner = np.arange(n)
    mask = np.zeros(n, dtype=np.int64)
    chain = apex[owner, mask][:, None]
    for _ in range(dim - 1):
        bit = np.left_shift(1, np.arange(dim))[None, :]
        grown = mask[:, None] | bit                                        # (chains, d)
        ok = ((mask[:, None] & bit) == 0) & (apex[owner[:, None], grown] > chain[:, -1:])
        row, col = np.nonzero(ok)
        owner, mask = owner[row], grown[row, col]
        chain = np.column_stack([chain[row], apex[owner, mask]])
    keep = owner > chain[:, -1]                   # the edge's other end, after its apex
    corners = vertices[np.column_stack([chain[keep], owner[keep]])]
    edges = corners[:, 1:] - corners[:, :1]
    return math.fsum(np.abs(np.linalg.det(edges))) / math.factorial(dim)


Cell = Interval | Polygon | Polytope


@dataclass
class LinearRegion:
    cell: Cell
    out_w: np.ndarray   # (k, dim): output = out_w x + out_b on this cell
    out_b: np.ndarray


def root_cells(dim: int, dist: str) -> list[Cell]:
    """The bounded domain, cut by the coordinate axes (Gaussian) into quadrant cells; in 3-D to
    6-D only the box [-1, 1]^dim (see the module docstring)."""
    if dist not in ("gaussian", "box"):
        raise ValueError(f"unknown input distribution {dist!r}; expected 'gaussian' or 'box'")
    r = GAUSS_RADIUS if dist == "gaussian" else 1.0
    if dim == 1:
        return [Interval(-r, 0.0), Interval(0.0, r)] if dist == "gaussian" else [Interval(-r, r)]
    if dim >= 3:
        if dist == "gaussian":
            raise ValueError(_NO_GAUSSIAN_POLYTOPES.format(dim=dim))
        if dim > MAX_POLYTOPE_DIM:
            raise ValueError(f"exact region enumeration is implemented for 1-D to {MAX_POLYTOPE_DIM}-D inputs, "
                             f"not {dim}-D")
        return [Polytope.box(dim, r)]
    if dim != 2:
        raise ValueError(f"input dimension must be at least 1, got {dim}")
    if dist != "gaussian":
        return [Polygon(np.array([[-r, -r], [r, -r], [r, r], [-r, r]]))]
    cells = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            quad = np.array([[0, 0], [sx * r, 0], [sx * r, sy * r], [0, sy * r]], dtype=np.float64)
            if sx * sy < 0:
                quad = quad[::-1]  # keep counter-clockwise order
            cells.append(Polygon(quad))
    return cells


def linear_regions(layers: list[tuple[np.ndarray, np.ndarray]], cells: list[Cell]) -> list[LinearRegion]:
    """Split the cells by every hidden neuron; the last layer is the (affine) output layer."""
    dim = cells[0].vertices.shape[1]
    items = [(c, np.eye(dim), np.zeros(dim)) for c in cells]
    for w, b in layers[:-1]:
        out = []
        for cell, m, c in items:
            z_w, z_b = w @ m, w @ c + b        # pre-activations on this cell
            pieces = [(cell, np.ones(len(b), dtype=bool))]
            for i in range(len(b)):
                nxt = []
                for pc, active in pieces:
                    vals = pc.vertices @ z_w[i] + z_b[i]
                    if vals.min() >= 0:
                        nxt.append((pc, active))
                    elif vals.max() <= 0:
                        off = active.copy()
                        off[i] = False
                        nxt.append((pc, off))
                    else:
                        pos, neg = pc.clip(z_w[i], z_b[i]), pc.clip(-z_w[i], -z_b[i])
                        if pos is not None:
                            nxt.append((pos, active))
                        if neg is not None:
                            off = active.copy()
                            off[i] = False
                            nxt.append((neg, off))
                pieces = nxt
            out += [(pc, z_w * act[:, None], z_b * act) for pc, act in pieces]
        items = out
    w, b = layers[-1]
    return [LinearRegion(cell, w @ m, w @ c + b) for cell, m, c in items]


def predicate_halfspaces(region: LinearRegion, predicate: str, threshold: float, target: int
                         ) -> list[tuple[np.ndarray, float]]:
    """The predicate on one region as halfspaces h x + g >= 0."""
    ow, ob = region.out_w, region.out_b
    if predicate == "threshold":
        return [(ow[0], float(ob[0] - threshold))]
    if predicate == "argmax":
        return [(ow[target] - ow[j], float(ob[target] - ob[j])) for j in range(len(ob)) if j != target]
    raise ValueError(f"unknown predicate {predicate!r}")


def region_probability(region: LinearRegion, predicate: str, threshold: float, target: int, dist: str,
                       **quad) -> float:
    cell: Cell | None = region.cell
    for h, g in predicate_halfspaces(region, predicate, threshold, target):
        cell = cell.clip(h, g)
        if cell is None:
            return 0.0
    if dist == "gaussian":
        return cell.gaussian_measure(**quad)
    return cell.uniform_measure(2.0)  # the box [-1, 1]^dim


def probability(regions: list[LinearRegion], predicate: str, dist: str, threshold: float = 0.0,
                target: int = 0, **quad) -> float:
    """P(predicate) summed over the regions (all terms are >= 0: no cancellation)."""
    return math.fsum(region_probability(r, predicate, threshold, target, dist, **quad) for r in regions)


def log_gauss_tail(t: float) -> float:
    """log P(Z > t) for a standard normal Z."""
    return float(log_ndtr(-t))
