"""Checks for chapter 02, embeddings.

- ``check_embed_one_hot(fn)``: looking embeddings up by multiplying one-hot vectors by ``E``;
- ``check_cosine_similarity(fn)``: cosine similarity along the last dimension, written from
  scratch (with broadcasting, and 0 for a zero vector, as torch does);
- ``check_nearest_neighbours(fn)``: the k rows of ``E`` most similar to row i, by cosine;
- ``check_pca_project(fn)``: principal component analysis (the "spot the mistake" exercise:
  a common mistake forgets to centre the data);
- ``check_odd_one_out(fn)``: the word in a list that fits least with the others (the lowest
  average cosine similarity to them).

The reference versions below are what the checks compare with; ``tests/test_check_ch02.py``
confirms they agree with torch's own functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sftlearn.check._core import (CheckFailure, call_student, checker, compare_arrays, python_number,
                                  short_repr)

# ------------------------------------------------------------------- reference versions


def reference_embed_one_hot(ids: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """``E[ids]``, computed as one-hot vectors times ``E``: (...,) ids -> (..., d)."""
    return F.one_hot(ids, num_classes=E.shape[0]).to(E.dtype) @ E


def reference_cosine_similarity(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """cos(a, b) along the last dimension; lengths below ``eps`` count as ``eps`` (so 0 for 0)."""
    dot = (a * b).sum(dim=-1)
    lengths = a.norm(dim=-1).clamp_min(eps) * b.norm(dim=-1).clamp_min(eps)
    return dot / lengths


def cosine_matrix(E: torch.Tensor) -> torch.Tensor:
    """(n, d) -> (n, n): the cosine similarity of every row with every row."""
    unit = E / E.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    return unit @ unit.T


def _rank_excluding(scores: torch.Tensor, i: int, k: int, largest: bool = True) -> torch.Tensor:
    """The k indices with the largest (or smallest) ``scores``, leaving out index ``i``."""
    scores = scores.clone().double()
    scores[i] = float("-inf") if largest else float("inf")
    return scores.topk(k, largest=largest).indices


def reference_nearest_neighbours(E: torch.Tensor, i: int, k: int) -> torch.Tensor:
    """The k rows of ``E`` most cosine-similar to row ``i`` (not ``i`` itself), best first."""
    return _rank_excluding(cosine_matrix(E)[i], i, k)


def reference_pca_project(X: torch.Tensor, k: int) -> torch.Tensor:
    """Centre ``X`` (n, d), then project it onto its top-k principal directions: (n, k)."""
    Xc = X - X.mean(dim=0, keepdim=True)
    _, _, Vh = torch.linalg.svd(Xc, full_matrices=False)  # rows of Vh: the directions
    return Xc @ Vh[:k].T


# --------------------------------------------------------------------------- embed_one_hot

_g = torch.Generator().manual_seed(2)
ONE_HOT_E = torch.randn(7, 3, generator=_g)
ONE_HOT_CASES = [
    torch.tensor([6, 1, 3, 3]),  # uses the last id, V - 1
    torch.tensor([[1, 6], [3, 3]]),  # a batch of two sequences
    torch.tensor([2, 0, 2, 5]),  # largest id 5 < V - 1: F.one_hot(ids) alone is too short
    torch.tensor([4]),
]


@checker("embed_one_hot")
def check_embed_one_hot(embed_one_hot: Any) -> str:
    """``embed_one_hot(ids, E)``: one-hot vectors of length V = E.shape[0], times E."""
    V = ONE_HOT_E.shape[0]
    for case, ids in enumerate(ONE_HOT_CASES):
        name = f"embed_one_hot(ids={ids.tolist()}, E)"
        try:
            got = call_student(embed_one_hot, ids, ONE_HOT_E)
        except CheckFailure as failure:
            _diagnose_one_hot_error(failure, name, ids, V, first_case=case == 0)
            raise
        one_hot = F.one_hot(ids, V).float()
        if isinstance(got, torch.Tensor) and got.shape == one_hot.shape and torch.equal(got.float(), one_hot):
            raise CheckFailure(
                f"{name} returned the one-hot vectors themselves, shape {tuple(got.shape)}; "
                f"the embeddings have shape {tuple(ids.shape) + (ONE_HOT_E.shape[1],)}.",
                hint="Multiply the one-hot vectors by E: `one_hot @ E`.",
            )
        compare_arrays(
            name,
            got,
            reference_embed_one_hot(ids, ONE_HOT_E),
            hint="Row t of the result must be row ids[t] of E.",
        )
    return (f"correct on {len(ONE_HOT_CASES)} inputs, including a batch of sequences "
            "and ids that do not reach the last row of E.")


# Phrases in torch's errors for matrix products whose shapes do not fit.
_SHAPE_ERRORS = ("cannot be multiplied", "size mismatch", "must match", "Expected size", "shape")


def _diagnose_one_hot_error(failure: CheckFailure, name: str, ids: torch.Tensor, V: int, first_case: bool) -> None:
    """Turn torch's error text into the usual one-hot mistakes (or leave ``failure`` as it is)."""
    if "raised RuntimeError: " not in failure.message:
        return
    # call_student writes "... raised RuntimeError: <torch's words> (on input ...)."
    error = failure.message.split("raised RuntimeError: ", 1)[1].split(" (on input ", 1)[0]
    if "dtype" in error or "scalar type" in error:
        if "bool" in error:
            kind = ("a boolean matrix (True/False, what a comparison such as "
                    "`ids[..., None] == torch.arange(V)` gives)")
        else:
            kind = "an integer matrix (`F.one_hot` returns integers, int64)"
        raise CheckFailure(
            f"{name} tried to multiply {kind} by the float matrix E; a matrix product needs both "
            "of the same type.",
            hint="Convert the one-hot vectors first: `.float()` (or `.to(E.dtype)`).",
        ) from None
    if any(words in error for words in _SHAPE_ERRORS):
        if not first_case and int(ids.max()) < V - 1:
            raise CheckFailure(
                f"{name} made one-hot vectors of the wrong length: the largest id here is "
                f"{int(ids.max())}, and one-hot vectors sized by the ids (`F.one_hot(ids)` on its own, "
                f"or `torch.arange(ids.max() + 1)`) are only {int(ids.max()) + 1} long, but E has "
                f"V = {V} rows.",
                hint="Size them by the vocabulary: `torch.arange(E.shape[0])` "
                "(or `F.one_hot(ids, num_classes=E.shape[0])`).",
            ) from None
        if not first_case and ids.dim() > 1:
            raise CheckFailure(
                f"{name} raised a shape error for a batch of sequences, shape {tuple(ids.shape)}, "
                f"although a single sequence worked: {error}",
                hint="Add the new one-hot dimension at the end for any shape of ids: "
                "`ids[..., None]` (not `ids[:, None]`).",
            ) from None
        raise CheckFailure(
            f"{name} raised a shape error in the matrix product: {error}",
            hint="The one-hot vectors have shape (..., V) and E has shape (V, d): the product is "
            "`one_hot @ E` (not `E @ one_hot`, and not with `E.T`).",
        ) from None


# ------------------------------------------------------------------------ cosine_similarity

_g = torch.Generator().manual_seed(3)
COSINE_CASES: list[tuple[str, torch.Tensor, torch.Tensor]] = [
    ("two vectors", torch.tensor([3.0, 4.0]), torch.tensor([4.0, 3.0])),
    ("parallel vectors of different lengths", torch.tensor([1.0, 2.0, 2.0]), torch.tensor([2.0, 4.0, 4.0])),
    ("opposite vectors", torch.tensor([1.0, 0.0]), torch.tensor([-2.0, 0.0])),
    ("a batch of 4 pairs", torch.randn(4, 5, generator=_g) + 0.5, torch.randn(4, 5, generator=_g)),
    ("broadcast shapes (3, 1, 5) and (1, 4, 5)", torch.randn(3, 1, 5, generator=_g),
     torch.randn(1, 4, 5, generator=_g) * 3),
    ("a zero vector", torch.zeros(3), torch.tensor([1.0, 2.0, 3.0])),
]


def _cosine_mistakes(a: torch.Tensor, b: torch.Tensor) -> dict[str, Any]:
    dot = (a * b).sum(dim=-1)
    na, nb = a.norm(dim=-1), b.norm(dim=-1)
    cos = reference_cosine_similarity(a, b)
    mistakes: dict[str, Any] = {
        "it is the plain dot product a·b; it was never divided by the lengths |a| |b|": (
            dot, "Divide the dot product by `a.norm(dim=-1) * b.norm(dim=-1)`."),
        "the dot product was divided by the squared lengths |a|² |b|² instead of the lengths": (
            dot / (na**2 * nb**2), "A length is the square root of the sum of squares: `v.norm(dim=-1)`."),
        "the dot product was divided by the length of only one of the two vectors": (
            dot / na, "Divide by both lengths: |a| · |b|."),
        "it is the angle (arccos of the cosine), not the cosine": (
            torch.arccos(cos.clamp(-1, 1)), "Return the cosine itself; no arccos is needed."),
        "it is the cosine distance 1 − cos, not the similarity": (
            1 - cos, "Return cos itself: 1 for the same direction, −1 for opposite ones."),
    }
    if a.dim() == 2 and a.shape == b.shape:
        wrong_dim = (F.normalize(a, dim=0) * F.normalize(b, dim=0)).sum(dim=-1)
        mistakes["the lengths were measured along the wrong dimension (down each column of "
                  "the batch, not along each vector)"] = (
            wrong_dim, "Measure every vector's length along its own coordinates: `dim=-1`.")
    return mistakes


@checker("cosine_similarity")
def check_cosine_similarity(cosine_similarity: Any) -> str:
    """``cosine_similarity(a, b)`` along the last dimension, like ``F.cosine_similarity(a, b, dim=-1)``."""
    for description, a, b in COSINE_CASES:
        name = f"cosine_similarity on {description}"
        got = call_student(cosine_similarity, a, b)
        expected = reference_cosine_similarity(a, b)
        per_coordinate = (a * b).shape
        if isinstance(got, torch.Tensor) and got.shape == per_coordinate and got.shape != expected.shape:
            raise CheckFailure(
                f"{name} returned one number per coordinate, shape {tuple(got.shape)}, instead of "
                f"one number per pair of vectors, shape {tuple(expected.shape)}.",
                hint="The dot product sums the products of the coordinates: `(a * b).sum(dim=-1)`.",
            )
        if description == "a zero vector" and isinstance(got, torch.Tensor) and bool(torch.isnan(got).any()):
            raise CheckFailure(
                f"{name} is NaN: dividing by the zero vector's length 0 gives 0/0. The cosine of "
                "a zero vector is undefined, and torch (and this check) use 0 for it.",
                hint="Keep the lengths away from 0 before dividing: `a.norm(dim=-1).clamp_min(1e-8)`.",
            )
        compare_arrays(name, got, expected, atol=1e-5, rtol=1e-4, mistakes=_cosine_mistakes(a, b))
    return (f"correct on {len(COSINE_CASES)} inputs: parallel, opposite, a batch, broadcast "
            "shapes and a zero vector.")


# ---------------------------------------------------------------------- nearest_neighbours

# A small E where three rankings differ: by cosine (right), by the dot product (row 4 is
# long, so it wins with the raw dot product) and by Euclidean distance.
NEIGHBOUR_E_SMALL = torch.tensor(
    [
        [1.0, 0.0],
        [0.9, 0.2],
        [0.2, 1.0],
        [-1.0, 0.1],
        [5.0, 3.0],
        [0.5, -0.6],
    ]
)
_g = torch.Generator().manual_seed(4)
NEIGHBOUR_E_RANDOM = torch.randn(20, 8, generator=_g) * torch.linspace(0.3, 3.0, 20)[:, None]
NEIGHBOUR_CASES: list[tuple[str, torch.Tensor, int, int]] = [
    ("E_small", NEIGHBOUR_E_SMALL, 0, 2),
    ("E_small", NEIGHBOUR_E_SMALL, 3, 3),
    ("E_random", NEIGHBOUR_E_RANDOM, 5, 4),
    ("E_random", NEIGHBOUR_E_RANDOM, 19, 1),
    ("E_small", NEIGHBOUR_E_SMALL, 2, 5),  # every other row
]


def _neighbour_mistakes(E: torch.Tensor, i: int, k: int) -> dict[str, tuple[torch.Tensor, str]]:
    cos = cosine_matrix(E)[i]
    with_self = cos.double().topk(k).indices
    distances = (E - E[i]).norm(dim=-1)
    return {
        f"the list starts with row {i} itself. Every vector is most similar to itself (cosine 1), "
        "so a word would be its own nearest neighbour": (
            with_self, "Leave row i out, e.g. set its similarity to -inf before `topk`."),
        "these are the least similar rows, not the most similar": (
            _rank_excluding(cos, i, k, largest=False),
            "Sort in descending order: `topk` picks the largest values by default."),
        "the rows are ranked by the raw dot product, which favours long vectors, not by cosine "
        "similarity": (
            _rank_excluding(E @ E[i], i, k),
            "Normalise the rows to length 1 first (or divide by the lengths)."),
        "the rows are ranked by Euclidean distance, not by cosine similarity": (
            _rank_excluding(-distances, i, k),
            "Cosine similarity ignores the lengths of the vectors; distance does not."),
    }


@checker("nearest_neighbours")
def check_nearest_neighbours(nearest_neighbours: Any) -> str:
    """``nearest_neighbours(E, i, k)``: indices of the k rows most cosine-similar to row i, best first."""
    for e_name, E, i, k in NEIGHBOUR_CASES:
        name = f"nearest_neighbours({e_name}, i={i}, k={k})"
        got = call_student(nearest_neighbours, E, i, k)
        if isinstance(got, tuple) and hasattr(got, "indices") and hasattr(got, "values"):
            raise CheckFailure(
                f"{name} returned the whole result of `topk` (values and indices).",
                hint="Return only the indices: `.indices`.",
            )
        if isinstance(got, torch.Tensor) and got.is_floating_point():
            raise CheckFailure(
                f"{name} returned floating-point numbers {short_repr(got)}; it should return the "
                "indices (row numbers) of the neighbours, not their similarities.",
                hint="`torch.topk` gives both: take `.indices`.",
            )
        expected = reference_nearest_neighbours(E, i, k)
        for description, (wrong, hint) in _neighbour_mistakes(E, i, k).items():
            if _same_ids(got, wrong) and not _same_ids(got, expected):
                raise CheckFailure(f"{name} returned {_ids_text(got)}: {description}.", hint)
        if _same_ids(got, expected):
            continue
        if _is_id_list(got) and sorted(_ids(got)) == sorted(expected.tolist()):
            raise CheckFailure(
                f"{name} returned the right rows, {_ids_text(got)}, in the wrong order; the most "
                f"similar comes first: {expected.tolist()}.",
                hint="Keep the order `topk` gives (largest first); do not sort the indices.",
            )
        compare_arrays(name, got, expected, hint="Compute the cosine similarity of row i with every "
                       "row, leave out row i, and take the k largest.")
    return (f"correct on {len(NEIGHBOUR_CASES)} cases, including rows that are long (where the "
            "dot product would rank differently) and k = all other rows.")


def _is_id_list(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.dim() == 1 and not value.is_floating_point()
    return isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def _ids(value: Any) -> list[int]:
    return value.tolist() if isinstance(value, torch.Tensor) else list(value)


def _same_ids(got: Any, wanted: torch.Tensor) -> bool:
    return _is_id_list(got) and _ids(got) == wanted.tolist()


def _ids_text(value: Any) -> str:
    return str(_ids(value))


# ----------------------------------------------------------------------------- pca_project


def _pca_data(n: int, spreads: list[float], mean: list[float], seed: int) -> torch.Tensor:
    """n points whose spread along orthogonal (rotated) directions is ``spreads``, around ``mean``."""
    g = torch.Generator().manual_seed(seed)
    d = len(spreads)
    Z = torch.randn(n, d, generator=g, dtype=torch.float64)
    Z = Z - Z.mean(dim=0)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    return (Z * torch.tensor(spreads, dtype=torch.float64) @ Q.T + torch.tensor(mean, dtype=torch.float64)).float()


PCA_X3 = _pca_data(60, [3.0, 1.0, 0.3], [5.0, -2.0, 4.0], seed=5)
PCA_X5 = _pca_data(40, [2.0, 1.5, 0.7, 0.4, 0.1], [1.0, 6.0, -3.0, 0.0, 2.0], seed=6)
PCA_CASES: list[tuple[str, torch.Tensor, int]] = [
    ("X (60 points in 3-D)", PCA_X3, 2),
    ("X (40 points in 5-D)", PCA_X5, 3),
    ("X (40 points in 5-D)", PCA_X5, 1),
    ("X (60 points in 3-D)", PCA_X3, 3),
]


def align_signs(got: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Flip each column of ``got`` whose sign disagrees with ``reference``'s.

    A principal direction v and -v are equally good, so PCA projections are only defined up
    to the sign of each column; checks compare after aligning.
    """
    signs = torch.sign((got * reference).sum(dim=0))
    signs[signs == 0] = 1.0
    return got * signs


def _pca_mistakes(X: torch.Tensor, k: int) -> dict[str, tuple[torch.Tensor, str]]:
    Xc = X - X.mean(dim=0, keepdim=True)
    U, S, Vh = torch.linalg.svd(Xc, full_matrices=False)
    _, _, Vh_raw = torch.linalg.svd(X, full_matrices=False)
    eigvals, eigvecs = torch.linalg.eigh(Xc.T @ Xc)  # ascending order
    mistakes = {
        "the data were not centred. Without subtracting the mean, the first direction lies "
        "along the line from the origin through the middle of the cloud instead of along its "
        "widest spread": (
            X @ Vh_raw[:k].T, "Subtract the mean of each column first: `X - X.mean(dim=0)`."),
        "the directions are right, but they were applied to X instead of the centred X, so "
        "every column is shifted by a constant (its mean is not 0)": (
            X @ Vh[:k].T, "Project the centred data: `(X - mean) @ V`."),
        "these are the directions of least variance (`torch.linalg.eigh` returns the eigenvalues "
        "in ascending order, so its first columns belong to the smallest ones)": (
            Xc @ eigvecs[:, :k], "Take the last k eigenvectors, largest first: `eigvecs[:, -k:].flip(-1)`."),
        "each column has length 1, so these are the columns of U from the SVD, not yet scaled by "
        "the singular values": (U[:, :k], "The projection is `U[:, :k] * S[:k]`, which equals `Xc @ Vh[:k].T`."),
        "the columns of Vh were used as directions, but torch.linalg.svd returns Vh = Vᵀ, whose "
        "*rows* are the principal directions": (Xc @ Vh[:, :k], "Use `Vh[:k].T` (the first k rows, transposed)."),
    }
    if k >= 2:
        mistakes["it has the right components in the wrong order (the first column must have the "
                 "largest variance)"] = (
            (Xc @ Vh[:k].T).flip(-1), "Sort the directions by decreasing variance (eigenvalue).")
    return mistakes


@checker("pca_project")
def check_pca_project(pca_project: Any) -> str:
    """``pca_project(X, k)``: centred X projected on its top-k principal directions, (n, k)."""
    for description, X, k in PCA_CASES:
        name = f"pca_project({description}, k={k})"
        got = call_student(pca_project, X, k)
        n, d = X.shape
        if isinstance(got, (tuple, list)) and len(got) in (2, 3) and all(isinstance(t, torch.Tensor) for t in got):
            raise CheckFailure(
                f"{name} returned {len(got)} tensors; it should return one: the projected data, "
                f"shape ({n}, {k}).",
                hint="Return `Xc @ directions`, the coordinates of each point along the k directions.",
            )
        if isinstance(got, torch.Tensor) and tuple(got.shape) in {(d, k), (k, d)} and (d, k) != (n, k):
            raise CheckFailure(
                f"{name} has shape {tuple(got.shape)}: these look like the principal directions, "
                f"not the projected data, which has one row per point: shape ({n}, {k}).",
                hint="Multiply the centred data by the directions: `Xc @ V[:, :k]`.",
            )
        expected = reference_pca_project(X, k)
        if isinstance(got, np.ndarray) and got.dtype.kind == "f":
            got = torch.from_numpy(got).to(expected.dtype)  # e.g. scikit-learn's PCA: fine too
        elif isinstance(got, list):  # nested lists of numbers (e.g. .tolist()): signs aligned too
            try:
                got = torch.tensor(got, dtype=expected.dtype)
            except (TypeError, ValueError):
                pass  # ragged or not numbers: compare_arrays explains
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and got.is_floating_point():
            got = align_signs(got.detach(), expected)
            # Each mistake's columns take the signs of the student's own columns: a wrong column
            # (a direction of least variance, the components in the wrong order) is orthogonal to
            # the expected one, so its sign cannot be read off the expected answer.
            mistakes = {words: (align_signs(value, got.to(value.dtype)), hint)
                        for words, (value, hint) in _pca_mistakes(X, k).items()}
        else:
            mistakes = {}
        compare_arrays(name, got, expected, atol=1e-3, rtol=1e-3, mistakes=mistakes,
                       hint="Centre X, find the directions of largest variance (SVD of the centred "
                       "data, or eigenvectors of its covariance), and project the centred data on them.")
    return (f"correct on {len(PCA_CASES)} inputs (each column compared up to its sign, since "
            "v and -v are the same direction), including k = d.")


# ------------------------------------------------------------------------------ odd_one_out

# Three directions (A: rows 0-2, B: rows 3, 4, 7, C: rows 5, 6) and one long vector, row 8,
# at 60° from B: it is the odd one among B words by cosine, but the raw dot product, which
# grows with length, would keep it and throw out a B word instead.
ODD_E = torch.tensor(
    [
        [1.0, 0.0, 0.0],
        [0.9, 0.2, 0.0],
        [0.8, -0.1, 0.1],
        [0.0, 1.0, 0.1],
        [0.1, 0.9, 0.0],
        [0.0, 0.2, 1.0],
        [0.3, 0.0, 0.9],
        [0.2, 1.0, -0.1],
        [8.7, 5.0, 0.0],
        [9.0, 0.5, 0.0],
    ]
)
# Row 9 is a long A word: ranking by distance instead of direction would call it the odd one
# in the last list, where the B word (row 3) is.
ODD_CASES: list[list[int]] = [[4, 7, 1, 3], [8, 3, 4, 7], [6, 5, 2], [3, 4, 7, 6, 0], [0, 1, 9, 3]]


def _mean_similarity_to_others(scores: torch.Tensor) -> torch.Tensor:
    """(n, n) pairwise scores -> (n,): each row's mean score with the *other* rows."""
    n = scores.shape[0]
    return (scores.sum(dim=-1) - scores.diagonal()) / (n - 1)


def reference_odd_one_out(E: torch.Tensor, ids: list[int]) -> int:
    """The id in ``ids`` whose mean cosine similarity to the other words is lowest."""
    mean_cos = _mean_similarity_to_others(cosine_matrix(E[ids]))
    return int(ids[int(mean_cos.argmin())])


@checker("odd_one_out")
def check_odd_one_out(odd_one_out: Any) -> str:
    """``odd_one_out(E, ids)``: the id (one of ``ids``) that fits least with the others, by cosine."""
    for ids in ODD_CASES:
        name = f"odd_one_out(E, ids={ids})"
        got = call_student(odd_one_out, ODD_E, list(ids))
        if not (isinstance(got, torch.Tensor) and got.is_floating_point()):
            got = python_number(got)  # a one-element tensor or a NumPy integer is an id too
        if isinstance(got, bool) or not isinstance(got, int):
            raise CheckFailure(
                f"{name} should return one token id (an int), but returned {short_repr(got)}.",
                hint="Find the position of the lowest average similarity with `argmin()`, then "
                "return `ids[position]`.",
            )
        expected = reference_odd_one_out(ODD_E, ids)
        if got == expected:
            continue
        _diagnose_odd_one_out(name, ids, got, expected)
    return (f"correct on {len(ODD_CASES)} word lists, including a long vector that the raw dot "
            "product would misjudge.")


def _diagnose_odd_one_out(name: str, ids: list[int], got: int, expected: int) -> None:
    position = ids.index(expected)
    mean_cos = _mean_similarity_to_others(cosine_matrix(ODD_E[ids]))
    mean_dot = _mean_similarity_to_others(ODD_E[ids] @ ODD_E[ids].T)
    if got == position:
        raise CheckFailure(
            f"{name} returned {got}, the position of the odd word in the list; return its id, "
            f"ids[{position}] = {expected}.",
            hint="`argmin()` gives a position in the list: look the id up with `ids[position]`.",
        )
    if got == ids[int(mean_cos.argmax())]:
        raise CheckFailure(
            f"{name} returned {got}, the word that fits *best* (the highest average similarity "
            f"to the others); the odd one out has the lowest: {expected}.",
            hint="Use `argmin()`, not `argmax()`.",
        )
    if got == ids[int(mean_dot.argmin())]:
        raise CheckFailure(
            f"{name} returned {got}: the words were compared by the raw dot product, which grows "
            f"with the vectors' lengths, so the long vector of word {expected} looked similar to "
            "everything. By cosine similarity it is the odd one out.",
            hint="Normalise the vectors to length 1 before comparing them.",
        )
    distance = torch.cdist(ODD_E[ids], ODD_E[ids]).sum(dim=-1)  # (n,): how far from the others
    if got == ids[int(distance.argmax())]:
        raise CheckFailure(
            f"{name} returned {got}, the word farthest from the others by distance; but distance "
            f"grows with a vector's length, and {got} is just a long vector pointing the same way "
            f"as its group. By direction (cosine similarity) the odd one out is {expected}.",
            hint="Compare directions: cosine similarity, not Euclidean distance.",
        )
    if got not in ids:
        raise CheckFailure(f"{name} returned {got}, which is not one of the ids in the list.")
    raise CheckFailure(f"{name} returned {got}, but the odd one out is {expected}.",
                       hint="For each word, average its cosine similarity with the other words; "
                       "the odd one out has the lowest average.")
