"""The text the course's world tokenizer is trained on.

A tokenizer should see the kind of text its model will read. For the course that is the
stories (pretraining) and the instruction conversations (fine-tuning), so the training text
is a slice of each: story text from the train split, and prompts with their answers from the
SFT train split. Nothing from a validation or test split is used.
"""

from __future__ import annotations

from .sft import sft_examples
from .stories import pretraining_text

STORY_CHARS = 400_000  # enough for every word of the world to be seen many times
SFT_PER_FAMILY = 300  # instruction examples per task family


def tokenizer_training_text(seed: int = 0) -> str:
    """Stories, then instruction prompts and answers, all from train splits (deterministic)."""
    stories = pretraining_text(STORY_CHARS, seed=seed)
    examples = sft_examples("train", n_per_family=SFT_PER_FAMILY, seed=seed)
    instructions = "\n".join(f"{ex.prompt}\n{ex.answer}" for ex in examples)
    return stories + "\n\n" + instructions
