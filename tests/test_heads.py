"""sftlearn.heads: sequence and token classification on a GPT body, trained by the Trainer."""

import random

import pytest
import torch
import torch.nn.functional as F

from sftlearn.checkpoint import latest_checkpoint
from sftlearn.config import GPTConfig
from sftlearn.datasets import collate
from sftlearn.heads import (
    ClassificationCollator,
    SequenceClassifier,
    TokenClassifier,
    collate_classification,
    encode_classification,
    encode_tagging,
    last_token_index,
    word_tags,
)
from sftlearn.model import GPT
from sftlearn.tokenizer import CharTokenizer
from sftlearn.train import TrainConfig, Trainer

V = 20  # a small vocabulary: ids 1..19 are "words", 0 is padding
ATOL = 1e-5


def small_body(seed=0, **overrides):
    torch.manual_seed(seed)
    config = dict(vocab_size=V, block_size=16, n_layer=1, n_head=2, n_embd=32)
    return GPT(GPTConfig(**{**config, **overrides}))


def ragged_ids(seed=0, n=3):
    rng = random.Random(seed)
    return [[rng.randrange(1, V) for _ in range(rng.randint(2, 9))] for _ in range(n)]


def pad(seqs, side="right", pad_id=0):
    """Padded batch and mask, written independently of the package's collate."""
    T = max(map(len, seqs))
    ids, mask = [], []
    for s in seqs:
        fill = [pad_id] * (T - len(s))
        ids.append(s + fill if side == "right" else fill + s)
        mask.append([1] * len(s) + [0] * len(fill) if side == "right" else [0] * len(fill) + [1] * len(s))
    return torch.tensor(ids), torch.tensor(mask)


# ---------------------------------------------------------------------- pooling position
def test_last_token_index_by_hand():
    ids = torch.zeros(3, 5, dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 0, 0, 0]])
    assert last_token_index(ids, mask).tolist() == [2, 4, 0]
    assert last_token_index(ids, None).tolist() == [4, 4, 4]


def test_last_token_index_bad_masks():
    with pytest.raises(ValueError, match="all zeros.*Drop empty texts"):
        last_token_index(torch.zeros(2, 3, dtype=torch.long), torch.tensor([[1, 1, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match=r"shape \(2, 2\) must equal input_ids shape \(2, 3\)"):
        last_token_index(torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 2))


# ------------------------------------------------------------------- sequence classifier
@pytest.mark.parametrize("side", ["right", "left"])
def test_padded_batch_equals_each_text_alone(side):
    model = SequenceClassifier(small_body(), num_labels=3).eval()
    seqs = ragged_ids()
    ids, mask = pad(seqs, side, pad_id=7)  # a real word id as padding: only the mask may hide it
    with torch.no_grad():
        batch_logits, _ = model(ids, attention_mask=mask)
        for b, s in enumerate(seqs):
            hidden, _ = model.body.hidden_states(torch.tensor([s]))  # (1, T, C), no padding at all
            alone = model.score(hidden[0, -1])  # the last token's state, through the head
            torch.testing.assert_close(batch_logits[b], alone, rtol=0, atol=ATOL)


def test_sequence_loss_is_cross_entropy_and_ignores_minus_100():
    model = SequenceClassifier(small_body(), num_labels=3)
    ids, mask = pad(ragged_ids(n=4))
    targets = torch.tensor([2, 0, -100, 1])
    logits, loss = model(ids, targets=targets, attention_mask=mask)
    assert logits.shape == (4, 3)
    keep = targets != -100
    expected = -F.log_softmax(logits[keep], dim=-1).gather(1, targets[keep, None]).mean()
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize("kind", ["sequence", "token"])
def test_int32_labels_give_the_int64_loss(kind):
    body = small_body()
    ids, mask = pad(ragged_ids(n=3))
    if kind == "sequence":
        model, labels = SequenceClassifier(body, num_labels=3).eval(), torch.tensor([2, 0, 1])
    else:
        model, labels = TokenClassifier(body, num_labels=3).eval(), (ids % 3) * mask - 100 * (1 - mask)
    _, loss64 = model(ids, targets=labels, attention_mask=mask)
    _, loss32 = model(ids, targets=labels.int(), attention_mask=mask)
    assert torch.equal(loss32, loss64)


def test_sequence_classifier_bad_input():
    model = SequenceClassifier(small_body(), num_labels=2)
    ids, mask = pad(ragged_ids(n=2))
    with pytest.raises(ValueError, match=r"label 2 is outside the range 0\.\.1.*num_labels=2"):
        model(ids, targets=torch.tensor([0, 2]), attention_mask=mask)
    with pytest.raises(ValueError, match=r"label -1 is outside"):
        model(ids, targets=torch.tensor([0, -1]), attention_mask=mask)
    with pytest.raises(ValueError, match=r"targets of shape \(2,\).*one class id per example"):
        model(ids, targets=torch.zeros_like(ids), attention_mask=mask)
    with pytest.raises(TypeError, match="integer ids.*argmax"):
        model(ids, targets=torch.tensor([0.0, 1.0]), attention_mask=mask)
    with pytest.raises(TypeError, match="torch.Tensor of token ids"):
        model([[1, 2]])
    with pytest.raises(ValueError, match="num_labels must be an int >= 2"):
        SequenceClassifier(small_body(), num_labels=1)
    with pytest.raises(TypeError, match="sits on a sftlearn GPT"):
        SequenceClassifier(torch.nn.Linear(2, 2), num_labels=2)


def test_collate_classification_pads_right_and_stacks_labels():
    items = [{"input_ids": [5, 6, 7], "label": 1}, {"input_ids": [8], "label": 0}]
    batch = collate_classification(items, pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["targets"].tolist() == [1, 0]
    with pytest.raises(ValueError, match="expected 'input_ids' and 'label'"):
        collate_classification([{"input_ids": [1], "targets": [0]}])
    with pytest.raises(ValueError, match="empty batch"):
        collate_classification([])
    with pytest.raises(ValueError, match="no tokens"):
        collate_classification([{"input_ids": [], "label": 0}])


def test_sequence_classifier_learns_with_the_trainer_and_resumes(tmp_path):
    """Label = does word 7 occur anywhere? The last token must attend back to find it."""
    rng = random.Random(0)

    def example():
        ids = [rng.randrange(1, V) for _ in range(rng.randint(3, 10))]
        return {"input_ids": ids, "label": int(7 in ids)}

    train, test = [example() for _ in range(512)], [example() for _ in range(200)]
    model = SequenceClassifier(small_body(), num_labels=2)
    config = TrainConfig(max_steps=40, batch_size=32, lr=2e-2, progress=False,
                         checkpoint_dir=str(tmp_path))
    trainer = Trainer(model, train, test, config, collate_fn=ClassificationCollator(pad_id=0))
    history = trainer.fit()
    batch = collate_classification(test)
    accuracy = (model.predict(batch["input_ids"], batch["attention_mask"]) == batch["targets"]).float().mean()
    majority = max(batch["targets"].float().mean(), 1 - batch["targets"].float().mean())
    assert accuracy >= 0.95 > majority + 0.2
    assert history.val_loss[-1] < 0.2
    # The Trainer's checkpoints work for a head model too: resume restores the exact weights.
    fresh = SequenceClassifier(small_body(seed=1), num_labels=2)
    again = Trainer(fresh, train, test, config, collate_fn=ClassificationCollator(pad_id=0))
    again.load_checkpoint(latest_checkpoint(tmp_path))
    assert again.step == 40
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name


# ---------------------------------------------------------------------- token classifier
def test_token_logits_of_real_tokens_ignore_right_padding_and_loss_matches_torch():
    model = TokenClassifier(small_body(), num_labels=4).eval()
    seqs = ragged_ids(n=3)
    ids, mask = pad(seqs, "right", pad_id=9)
    targets = torch.where(mask.bool(), ids % 4, torch.full_like(ids, -100))
    logits, loss = model(ids, targets=targets, attention_mask=mask)
    assert logits.shape == (*ids.shape, 4)
    for b, s in enumerate(seqs):
        alone, _ = model(torch.tensor([s]))
        torch.testing.assert_close(logits[b, : len(s)], alone[0], rtol=0, atol=ATOL)
    keep = targets != -100
    torch.testing.assert_close(loss, F.cross_entropy(logits[keep], targets[keep]))


def test_token_classifier_bad_input():
    model = TokenClassifier(small_body(), num_labels=3)
    ids, mask = pad(ragged_ids(n=2))
    with pytest.raises(ValueError, match=r"label 3 is outside the range 0\.\.2"):
        model(ids, targets=torch.full_like(ids, 3), attention_mask=mask)
    with pytest.raises(ValueError, match=r"targets of shape .*not shifted"):
        model(ids, targets=torch.zeros(2, dtype=torch.long), attention_mask=mask)
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(ids, attention_mask=mask[:, :-1])


def test_token_classifier_learns_with_the_trainer():
    """Tag = word id mod 3: learnable from each token itself, in a few steps."""
    rng = random.Random(1)

    def example():
        ids = [rng.randrange(1, V) for _ in range(rng.randint(3, 10))]
        return {"input_ids": ids, "targets": [i % 3 for i in ids]}

    model = TokenClassifier(small_body(), num_labels=3)
    Trainer(model, [example() for _ in range(256)], None,
            TrainConfig(max_steps=20, batch_size=32, lr=2e-2, progress=False),
            collate_fn=collate).fit()
    batch = collate([example() for _ in range(100)])
    predicted = model.predict(batch["input_ids"], batch.get("attention_mask"))
    scored = batch["targets"] != -100
    assert (predicted[scored] == batch["targets"][scored]).float().mean() >= 0.95


# ---------------------------------------------------------------------------- encoding
def test_encode_tagging_labels_the_last_token_of_each_word():
    tok = CharTokenizer("LiNaranoldmil ")
    labels = ["O", "B-PER", "I-PER"]
    (example,) = encode_tagging(tok, [(["Li", "Na", "ran"], ["B-PER", "I-PER", "O"])], labels, max_len=20)
    assert tok.decode(example["input_ids"]) == "Li Na ran"
    # "Li" = tokens 0-1, " Na" = 2-4, " ran" = 5-8: each word's tag sits on its last token.
    assert example["word_ends"] == [1, 4, 8]
    assert example["targets"] == [-100, 1, -100, -100, 2, -100, -100, -100, 0]
    predicted = torch.tensor(example["targets"]).clamp(min=0)
    assert word_tags(predicted, example["word_ends"], labels) == ["B-PER", "I-PER", "O"]


def test_encode_bad_input():
    tok = CharTokenizer("abc ")
    with pytest.raises(ValueError, match="2 words but 1 tags"):
        encode_tagging(tok, [(["a", "b"], ["O"])], ["O"], max_len=10)
    with pytest.raises(ValueError, match=r"tag 'B-PER' is not one of the labels \['O'\]"):
        encode_tagging(tok, [(["a"], ["B-PER"])], ["O"], max_len=10)
    with pytest.raises(ValueError, match="word 1 is empty"):
        encode_tagging(tok, [(["a", ""], ["O", "O"])], ["O"], max_len=10)
    with pytest.raises(ValueError, match="example 0 is 5 tokens long, more than max_len=4"):
        encode_classification(tok, [("abcab", 1)], max_len=4)
    expected = [{"input_ids": tok.encode("ab c"), "label": 1}]
    assert encode_classification(tok, [("ab c", 1)], max_len=4) == expected
    with pytest.raises(ValueError, match=r"one example's predictions \(T,\)"):
        word_tags(torch.zeros(2, 3, dtype=torch.long), [0], ["O"])



@pytest.mark.parametrize("head_class", [SequenceClassifier, TokenClassifier])
def test_predict_leaves_a_frozen_body_in_eval_mode(head_class):
    # A frozen body kept in eval mode under a head trained with dropout: predict used to
    # restore only the head's own flag, which turned the body's dropout back on.
    head = head_class(small_body(dropout=0.3), num_labels=3, dropout=0.2).train()
    head.body.eval()
    before = {name: part.training for name, part in head.named_modules()}
    ids, mask = pad(ragged_ids())
    head.predict(ids, mask)
    assert {name: part.training for name, part in head.named_modules()} == before


# ----------------------------------------------------------------- the body's dtype and device


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
@pytest.mark.parametrize("head_class", [SequenceClassifier, TokenClassifier])
def test_a_head_takes_the_bodys_dtype(head_class, dtype):
    body = small_body().to(dtype)
    head = head_class(body, num_labels=3)
    assert head.score.weight.dtype == dtype and head.score.bias.dtype == dtype
    ids, mask = pad(ragged_ids())
    predicted = head.predict(ids, mask)  # ran before: "mat1 and mat2 must have the same dtype"
    assert predicted.dtype == torch.long and int(predicted.max()) < 3


def test_a_float32_head_is_initialised_as_before():
    # The dtype and device go to nn.Linear, which draws the same numbers: a float32 head on a
    # CPU body is exactly the one the lessons were run with.
    head = SequenceClassifier(small_body(), num_labels=2)
    small_body()  # the same seed and the same draws up to the head
    reference = torch.nn.Linear(32, 2)
    torch.nn.init.normal_(reference.weight, mean=0.0, std=0.02)
    assert torch.equal(head.score.weight, reference.weight)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_head_on_a_gpu_body_is_on_the_gpu():
    head = TokenClassifier(small_body().cuda(), num_labels=3)
    assert head.score.weight.device.type == "cuda"
