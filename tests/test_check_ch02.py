"""Tests of the chapter 02 checks (sftlearn.check.ch02): right answers, typical wrong ones,
unfinished stubs; and that the checks' references agree with torch's own functions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sftlearn.check import ch02
from conftest import failure_of, stub


# ------------------------------------------------------------- the references are torch's


def test_one_hot_reference_equals_indexing_and_nn_embedding():
    E = ch02.ONE_HOT_E
    layer = torch.nn.Embedding.from_pretrained(E)
    for ids in ch02.ONE_HOT_CASES:
        assert torch.allclose(ch02.reference_embed_one_hot(ids, E), E[ids])
        assert torch.allclose(ch02.reference_embed_one_hot(ids, E), layer(ids))


def test_cosine_reference_equals_torch():
    for _, a, b in ch02.COSINE_CASES:
        assert torch.allclose(ch02.reference_cosine_similarity(a, b), F.cosine_similarity(a, b, dim=-1), atol=1e-6)
    E = ch02.NEIGHBOUR_E_RANDOM
    expected = F.cosine_similarity(E[:, None, :], E[None, :, :], dim=-1)
    assert torch.allclose(ch02.cosine_matrix(E), expected, atol=1e-6)


def test_nearest_neighbours_reference_by_brute_force():
    E = ch02.NEIGHBOUR_E_RANDOM
    for i in range(E.shape[0]):
        sims = [(F.cosine_similarity(E[i], E[j], dim=0).item(), j) for j in range(E.shape[0]) if j != i]
        best = [j for _, j in sorted(sims, reverse=True)[:3]]
        assert ch02.reference_nearest_neighbours(E, i, 3).tolist() == best


def test_pca_reference_matches_torch_pca_lowrank_up_to_sign():
    torch.manual_seed(0)
    for _, X, k in ch02.PCA_CASES:
        _, _, V = torch.pca_lowrank(X, q=X.shape[1], center=True, niter=6)
        theirs = (X - X.mean(dim=0)) @ V[:, :k]
        ours = ch02.reference_pca_project(X, k)
        assert torch.allclose(ch02.align_signs(ours, theirs), theirs, atol=1e-4)
        # the columns are uncorrelated, centred, and in order of decreasing variance
        variances = ours.var(dim=0)
        assert torch.all(variances[:-1] >= variances[1:])
        assert torch.allclose(ours.mean(dim=0), torch.zeros(k), atol=1e-4)


def test_align_signs_flips_only_disagreeing_columns():
    ref = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    got = torch.tensor([[-1.0, 2.0], [-3.0, -1.0]])
    assert torch.equal(ch02.align_signs(got, ref), ref)


# ---------------------------------------------------------------------------- embed_one_hot


def test_embed_one_hot_right(capsys):
    ch02.check_embed_one_hot(lambda ids, E: F.one_hot(ids, E.shape[0]).float() @ E)
    ch02.check_embed_one_hot(lambda ids, E: (ids[..., None] == torch.arange(E.shape[0])).float() @ E)
    out = capsys.readouterr().out
    assert out.count("✓ embed_one_hot: correct on 4 inputs") == 2


def test_embed_one_hot_stub(capsys):
    ch02.check_embed_one_hot(stub)
    assert "embed_one_hot: not done yet" in capsys.readouterr().out


def test_embed_one_hot_integer_one_hot():
    failure = failure_of(ch02.check_embed_one_hot, lambda ids, E: F.one_hot(ids, E.shape[0]) @ E)
    assert failure.message == (
        "embed_one_hot(ids=[6, 1, 3, 3], E) tried to multiply an integer matrix (`F.one_hot` returns "
        "integers, int64) by the float matrix E; a matrix product needs both of the same type."
    )
    assert ".float()" in failure.hint


def test_embed_one_hot_boolean_one_hot():
    failure = failure_of(ch02.check_embed_one_hot, lambda ids, E: (ids[..., None] == torch.arange(E.shape[0])) @ E)
    assert "tried to multiply a boolean matrix (True/False" in failure.message


def test_embed_one_hot_missing_num_classes():
    failure = failure_of(ch02.check_embed_one_hot, lambda ids, E: F.one_hot(ids).float() @ E)
    assert failure.message == (
        "embed_one_hot(ids=[2, 0, 2, 5], E) made one-hot vectors of the wrong length: the largest id "
        "here is 5, and one-hot vectors sized by the ids (`F.one_hot(ids)` on its own, or "
        "`torch.arange(ids.max() + 1)`) are only 6 long, but E has V = 7 rows."
    )
    assert "torch.arange(E.shape[0])" in failure.hint
    sized_by_ids = failure_of(ch02.check_embed_one_hot,
                              lambda ids, E: (ids[..., None] == torch.arange(ids.max() + 1)).float() @ E)
    assert "made one-hot vectors of the wrong length" in sized_by_ids.message


def test_embed_one_hot_only_for_one_sequence():
    failure = failure_of(ch02.check_embed_one_hot,
                         lambda ids, E: (ids[:, None] == torch.arange(E.shape[0])).float() @ E)
    assert failure.message.startswith(
        "embed_one_hot(ids=[[1, 6], [3, 3]], E) raised a shape error for a batch of sequences, shape (2, 2), "
        "although a single sequence worked: "
    )
    assert "`ids[..., None]`" in failure.hint


def test_embed_one_hot_wrong_order_of_product():
    failure = failure_of(ch02.check_embed_one_hot, lambda ids, E: E.T @ F.one_hot(ids, E.shape[0]).float())
    assert failure.message.endswith(
        "raised a shape error in the matrix product: mat1 and mat2 shapes cannot be multiplied (3x7 and 4x7)"
    )
    assert "`one_hot @ E`" in failure.hint


def test_embed_one_hot_returning_the_one_hot_vectors():
    failure = failure_of(ch02.check_embed_one_hot, lambda ids, E: F.one_hot(ids, E.shape[0]).float())
    assert "returned the one-hot vectors themselves, shape (4, 7)" in failure.message
    assert "the embeddings have shape (4, 3)" in failure.message


def test_embed_one_hot_off_by_one_and_none():
    failure = failure_of(ch02.check_embed_one_hot, lambda ids, E: E[(ids + 1) % E.shape[0]])
    assert "embed_one_hot(ids=[6, 1, 3, 3], E) is wrong at" in failure.message
    assert failure.hint == "Row t of the result must be row ids[t] of E."
    assert "is None" in failure_of(ch02.check_embed_one_hot, lambda ids, E: None).message
    failure = failure_of(ch02.check_embed_one_hot, lambda ids, E: E[:, ids])
    assert "raised IndexError: index 6 is out of bounds" in failure.message


# ------------------------------------------------------------------------ cosine_similarity


def right_cosine(a, b):
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-8)


def test_cosine_right(capsys):
    ch02.check_cosine_similarity(right_cosine)
    ch02.check_cosine_similarity(lambda a, b: F.cosine_similarity(a, b, dim=-1))
    ch02.check_cosine_similarity(lambda a, b: (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1))
    assert capsys.readouterr().out.count("✓ cosine_similarity: correct on 6 inputs") == 3


def test_cosine_stub(capsys):
    ch02.check_cosine_similarity(stub)
    assert "cosine_similarity: not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda a, b: (a * b).sum(-1), "it is the plain dot product a·b; it was never divided by the lengths"),
        (lambda a, b: (a * b).sum(-1) / (a.norm(dim=-1) ** 2 * b.norm(dim=-1) ** 2),
         "divided by the squared lengths"),
        (lambda a, b: (a * b).sum(-1) / a.norm(dim=-1), "the length of only one of the two vectors"),
        (lambda a, b: torch.arccos(right_cosine(a, b)), "it is the angle (arccos of the cosine)"),
        (lambda a, b: 1 - right_cosine(a, b), "it is the cosine distance 1 − cos"),
        (lambda a, b: a * b / (a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True)),
         "returned one number per coordinate, shape (2,)"),
    ],
)
def test_cosine_wrong_answers(answer, words):
    failure = failure_of(ch02.check_cosine_similarity, answer)
    assert words in failure.message
    assert failure.message.startswith("cosine_similarity on two vectors")


def test_cosine_normalised_along_the_wrong_dimension():
    failure = failure_of(ch02.check_cosine_similarity,
                         lambda a, b: (F.normalize(a, dim=0) * F.normalize(b, dim=0)).sum(-1))
    assert failure.message.startswith("cosine_similarity on a batch of 4 pairs is wrong: the lengths were "
                                      "measured along the wrong dimension")
    assert "dim=-1" in failure.hint


def test_cosine_zero_vector_gives_nan():
    failure = failure_of(ch02.check_cosine_similarity,
                         lambda a, b: (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)))
    assert failure.message.startswith("cosine_similarity on a zero vector is NaN")
    assert "clamp_min" in failure.hint


def test_cosine_without_broadcasting():
    def pairs_only(a, b):
        if a.shape != b.shape:
            raise ValueError("shapes differ")
        return right_cosine(a, b)

    failure = failure_of(ch02.check_cosine_similarity, pairs_only)
    assert "raised ValueError: shapes differ" in failure.message
    assert "broadcast shapes" not in failure.message or "(3, 1, 5)" in failure.message


# ---------------------------------------------------------------------- nearest_neighbours


def right_neighbours(E, i, k):
    S = F.normalize(E, dim=-1) @ F.normalize(E[i], dim=-1)
    S[i] = float("-inf")
    return S.topk(k).indices


def test_nearest_neighbours_right(capsys):
    ch02.check_nearest_neighbours(right_neighbours)
    ch02.check_nearest_neighbours(lambda E, i, k: right_neighbours(E, i, k).tolist())
    ch02.check_nearest_neighbours(
        lambda E, i, k: F.cosine_similarity(E, E[i : i + 1], dim=-1).topk(k + 1).indices[1:])
    assert capsys.readouterr().out.count("✓ nearest_neighbours: correct on 5 cases") == 3


def test_nearest_neighbours_stub(capsys):
    ch02.check_nearest_neighbours(stub)
    assert "nearest_neighbours: not done yet" in capsys.readouterr().out


def including_self(E, i, k):
    return (F.normalize(E, dim=-1) @ F.normalize(E[i], dim=-1)).topk(k).indices


def least_similar(E, i, k):
    S = F.normalize(E, dim=-1) @ F.normalize(E[i], dim=-1)
    S[i] = float("inf")
    return S.topk(k, largest=False).indices


def by_dot_product(E, i, k):
    S = E @ E[i]
    S[i] = float("-inf")
    return S.topk(k).indices


def by_distance(E, i, k):
    D = (E - E[i]).norm(dim=-1)
    D[i] = float("inf")
    return D.topk(k, largest=False).indices


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (including_self, "returned [0, 1]: the list starts with row 0 itself"),
        (least_similar, "returned [3, 2]: these are the least similar rows"),
        (by_dot_product, "returned [4, 1]: the rows are ranked by the raw dot product"),
        (by_distance, "returned [1, 5]: the rows are ranked by Euclidean distance"),
        (lambda E, i, k: F.cosine_similarity(E, E[i : i + 1], dim=-1).topk(k),
         "returned the whole result of `topk`"),
        (lambda E, i, k: F.cosine_similarity(E, E[i : i + 1], dim=-1).topk(k + 1).values[1:],
         "returned floating-point numbers"),
    ],
)
def test_nearest_neighbours_wrong_answers(answer, words):
    failure = failure_of(ch02.check_nearest_neighbours, answer)
    assert failure.message.startswith("nearest_neighbours(E_small, i=0, k=2)")
    assert words in failure.message


def test_nearest_neighbours_in_the_wrong_order():
    failure = failure_of(ch02.check_nearest_neighbours, lambda E, i, k: right_neighbours(E, i, k).sort().values)
    assert failure.message == (
        "nearest_neighbours(E_small, i=3, k=3) returned the right rows, [2, 4, 5], in the wrong order; "
        "the most similar comes first: [2, 5, 4]."
    )


def test_nearest_neighbours_too_many():
    failure = failure_of(ch02.check_nearest_neighbours, lambda E, i, k: right_neighbours(E, i, k + 1))
    assert "has shape (3,) but should have shape (2,)" in failure.message


# ----------------------------------------------------------------------------- pca_project


def right_pca(X, k):
    Xc = X - X.mean(dim=0)
    _, _, Vh = torch.linalg.svd(Xc, full_matrices=False)
    return Xc @ Vh[:k].T


def pca_by_eigh(X, k):
    Xc = X - X.mean(dim=0)
    _, vectors = torch.linalg.eigh(Xc.T @ Xc / (len(X) - 1))
    return Xc @ vectors[:, -k:].flip(-1)


def test_pca_right(capsys):
    ch02.check_pca_project(right_pca)
    ch02.check_pca_project(pca_by_eigh)
    ch02.check_pca_project(lambda X, k: -right_pca(X, k))  # the sign of a direction is arbitrary
    assert capsys.readouterr().out.count("✓ pca_project: correct on 4 inputs") == 3


def test_pca_stub(capsys):
    ch02.check_pca_project(stub)
    assert "pca_project: not done yet" in capsys.readouterr().out


def pca_not_centred(X, k):
    _, _, Vh = torch.linalg.svd(X, full_matrices=False)
    return X @ Vh[:k].T


def pca_projecting_raw_x(X, k):
    _, _, Vh = torch.linalg.svd(X - X.mean(dim=0), full_matrices=False)
    return X @ Vh[:k].T


def pca_smallest(X, k):
    Xc = X - X.mean(dim=0)
    _, vectors = torch.linalg.eigh(Xc.T @ Xc)
    return Xc @ vectors[:, :k]


def pca_u_only(X, k):
    U, _, _ = torch.linalg.svd(X - X.mean(dim=0), full_matrices=False)
    return U[:, :k]


def pca_columns_of_vh(X, k):
    Xc = X - X.mean(dim=0)
    _, _, Vh = torch.linalg.svd(Xc, full_matrices=False)
    return Xc @ Vh[:, :k]


def pca_eigh_ascending(X, k):
    """The top k eigenvectors of the covariance, but in eigh's ascending order (no flip)."""
    Xc = X - X.mean(dim=0)
    _, vectors = torch.linalg.eigh(torch.cov(Xc.T))
    return Xc @ vectors[:, -k:]


def pca_smallest_by_svd(X, k):
    """The last k rows of Vh, smallest variance first: the least-variance directions."""
    Xc = X - X.mean(dim=0)
    _, _, Vh = torch.linalg.svd(Xc, full_matrices=False)
    return Xc @ Vh.flip(0)[:k].T


def pca_directions(X, k):
    _, _, Vh = torch.linalg.svd(X - X.mean(dim=0), full_matrices=False)
    return Vh[:k].T


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (pca_not_centred, "the data were not centred"),
        (pca_projecting_raw_x, "applied to X instead of the centred X"),
        (pca_smallest, "these are the directions of least variance"),
        (pca_u_only, "each column has length 1"),
        (pca_columns_of_vh, "the columns of Vh were used as directions"),
        (pca_eigh_ascending, "the right components in the wrong order"),
        (pca_directions, "has shape (3, 2): these look like the principal directions"),
        (lambda X, k: torch.linalg.svd(X - X.mean(dim=0), full_matrices=False), "returned 3 tensors"),
    ],
)
def test_pca_wrong_answers(answer, words):
    failure = failure_of(ch02.check_pca_project, answer)
    assert failure.message.startswith("pca_project(X (60 points in 3-D), k=2)")
    assert words in failure.message


@pytest.mark.parametrize("signs", [(1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0)])
@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (pca_eigh_ascending, "the right components in the wrong order"),
        (pca_smallest_by_svd, "these are the directions of least variance"),
        (pca_not_centred, "the data were not centred"),
    ],
)
def test_pca_mistakes_are_named_whatever_the_signs_of_their_columns(answer, words, signs):
    # A wrong column (another direction) is orthogonal to the expected one, so its sign says
    # nothing about the expected column's; the mistake is named for either sign.
    failure = failure_of(ch02.check_pca_project, lambda X, k: answer(X, k) * torch.tensor(signs)[torch.arange(k) % 2])
    assert words in failure.message


def test_pca_not_centred_hint_says_how():
    assert "X.mean(dim=0)" in failure_of(ch02.check_pca_project, pca_not_centred).hint


# ------------------------------------------------------------------------------ odd_one_out


def right_odd_one_out(E, ids):
    unit = F.normalize(E[ids], dim=-1)
    mean_cos = (unit @ unit.T).sum(dim=-1) / len(ids)  # including itself: the same +1 for every word
    return ids[int(mean_cos.argmin())]


def test_odd_one_out_right(capsys):
    ch02.check_odd_one_out(right_odd_one_out)
    ch02.check_odd_one_out(lambda E, ids: torch.tensor(ids)[int(F.cosine_similarity(
        E[ids][:, None], E[ids][None], dim=-1).mean(dim=-1).argmin())])  # a 0-d tensor is fine
    assert capsys.readouterr().out.count("✓ odd_one_out: correct on 5 word lists") == 2


def test_odd_one_out_by_distance_is_caught(capsys):
    # a long vector that points like its group is far away, but not odd
    failure = failure_of(ch02.check_odd_one_out,
                         lambda E, ids: ids[int(torch.cdist(E[ids], E[ids]).sum(-1).argmax())])
    assert "farthest from the others by distance" in failure.message


def test_odd_one_out_stub(capsys):
    ch02.check_odd_one_out(stub)
    assert "odd_one_out: not done yet" in capsys.readouterr().out


def test_odd_one_out_reference_on_the_long_vector():
    assert ch02.reference_odd_one_out(ch02.ODD_E, [8, 3, 4, 7]) == 8


def odd_position(E, ids):
    unit = F.normalize(E[ids], dim=-1)
    return int((unit @ unit.T).sum(dim=-1).argmin())


def odd_most_typical(E, ids):
    unit = F.normalize(E[ids], dim=-1)
    return ids[int((unit @ unit.T).sum(dim=-1).argmax())]


def odd_by_dot(E, ids):
    X = E[ids]
    scores = X @ X.T
    return ids[int((scores.sum(dim=-1) - scores.diagonal()).argmin())]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (odd_position, "odd_one_out(E, ids=[4, 7, 1, 3]) returned 2, the position of the odd word in "
                       "the list; return its id, ids[2] = 1."),
        (odd_most_typical, "odd_one_out(E, ids=[4, 7, 1, 3]) returned 7, the word that fits *best* (the "
                           "highest average similarity to the others); the odd one out has the lowest: 1."),
        (odd_by_dot, "odd_one_out(E, ids=[8, 3, 4, 7]) returned 3: the words were compared by the raw dot "
                     "product, which grows with the vectors' lengths, so the long vector of word 8 looked "
                     "similar to everything. By cosine similarity it is the odd one out."),
        (lambda E, ids: ids[0], "odd_one_out(E, ids=[4, 7, 1, 3]) returned 4, but the odd one out is 1."),
        (lambda E, ids: 99, "odd_one_out(E, ids=[4, 7, 1, 3]) returned 99, which is not one of the ids "
                            "in the list."),
    ],
)
def test_odd_one_out_wrong_answers(answer, message):
    assert failure_of(ch02.check_odd_one_out, answer).message == message


def test_odd_one_out_wrong_types():
    failure = failure_of(ch02.check_odd_one_out, lambda E, ids: E[ids[-1]])
    assert "should return one token id (an int), but returned tensor([0.0, 1.0," in failure.message
    assert "returned None" in failure_of(ch02.check_odd_one_out, lambda E, ids: None).message


def test_pca_projection_returned_as_a_numpy_array_is_compared_up_to_sign(capsys):
    def with_numpy(X, k):  # what scikit-learn's PCA would give: NumPy, any sign per column
        Xc = X - X.mean(dim=0)
        _, _, Vh = torch.linalg.svd(Xc, full_matrices=False)
        return (-(Xc @ Vh[:k].T)).numpy()

    ch02.check_pca_project(with_numpy)
    assert "✓ pca_project" in capsys.readouterr().out


def test_pca_projection_returned_as_a_list_is_compared_up_to_sign(capsys):
    def as_list(X, k):  # .tolist(), with the first column flipped: still the right projection
        Xc = X - X.mean(dim=0)
        _, _, Vh = torch.linalg.svd(Xc, full_matrices=False)
        projected = Xc @ Vh[:k].T
        projected[:, 0] *= -1
        return projected.tolist()

    ch02.check_pca_project(as_list)
    assert "✓ pca_project" in capsys.readouterr().out
