"""Worked answers: does writing the steps before the answer make a stuck family learnable?

Chapter 09's sentiment family is an exclusive-or (the question, the adjective and a negation
each flip which food is the answer), and fine-tuning leaves it at the coin flip. Here the
training replies of chosen families first work the answer out, then give it:

    sentiment   "The pears are stale, but the soup is good. Which food did they not like?"
                -> "bad pears, good soup -> pears"     (each food's verdict, in review order)
    arithmetic  "Hugo has 2 umbrellas. He gets 6 more. How many ...?"
                -> "2 + 6 = 8"

Each step then depends on little: a clause's verdict on its own adjective and negation, the
answer on the question and one written verdict. Exact match is scored on the text after the
last "->" (sentiment) or "=" (arithmetic), so a right answer still has to be the right food or
number; the other families are scored as in chapter 09.

    python benchmarks/worked_answers.py --families sentiment --steps 1200      # one family
    python benchmarks/worked_answers.py --worked sentiment arithmetic          # chapter 09's run
    python benchmarks/worked_answers.py --worked                               # the same, plain

Chapter 09's recipe otherwise (batches of 16, lr 3e-3, 5% warm-up, cosine, length groups of 8,
the output layer at the targets only); the zoo's cached ``tiny-base``; two threads.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import time
from collections import Counter

import torch

from sftlearn import data, zoo
from sftlearn.sft import finetune, generate_answers
from sftlearn.train import TrainConfig

FOODS = [food.name for food in data.lexicon.FOODS]


def worked_sentiment(example) -> str:
    """'bad pears, good soup -> pears': each food of the review with its verdict, then the answer."""
    review, question = example.messages[0]["content"].rsplit("Which food", 1)
    foods = sorted({f for f in FOODS if re.search(rf"\b{f}\b", review)}, key=review.index)
    if len(foods) != 2 or example.answer not in foods:
        raise ValueError(f"expected a review of two foods, one of them the answer: {review!r}")
    liked_asked = "not like" not in question
    verdict = {f: "good" if (f == example.answer) == liked_asked else "bad" for f in foods}
    return ", ".join(f"{verdict[f]} {f}" for f in foods) + f" -> {example.answer}"


def worked_arithmetic(example) -> str:
    """'2 + 6 = 8': the two numbers of the prompt, the operation, the result."""
    prompt = example.messages[0]["content"]
    a, b = (int(n) for n in re.findall(r"\b\d+\b", prompt))
    result = int(example.answer)
    if a + b == result and a - b == result:  # b = 0: the wording says which
        op = "-" if re.search(r" - |left|gives|takes|eats|loses", prompt) else "+"
    else:
        op = "+" if a + b == result else "-"
    return f"{a} {op} {b} = {result}"


WORKED = {"sentiment": (worked_sentiment, "->"), "arithmetic": (worked_arithmetic, "=")}


def with_worked_answer(example, families):
    if example.family not in families:
        return example
    work, _ = WORKED[example.family]
    reply = {"role": "assistant", "content": work(example)}
    return dataclasses.replace(example, messages=[example.messages[0], reply])


def final_answer(family: str, reply: str, families) -> str:
    if family in families:
        return reply.rsplit(WORKED[family][1], 1)[-1].strip()
    return reply.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worked", nargs="*", default=[], choices=sorted(WORKED),
                        help="families whose training replies work the answer out")
    parser.add_argument("--families", nargs="+", default=list(data.TASK_FAMILIES),
                        help="families to train and test on (default: all six)")
    parser.add_argument("--steps", type=int, default=1800)
    parser.add_argument("--test", type=int, default=50, help="test conversations per family")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    worked = set(args.worked)

    train = [with_worked_answer(e, worked) for e in data.sft_examples("train")
             if e.family in args.families]
    test = [e for e in data.sft_examples("test", n_per_family=args.test) if e.family in args.families]
    model, tok = zoo.base_model("tiny-base", progress=False)
    config = TrainConfig(max_steps=args.steps, batch_size=16, lr=3e-3,
                         warmup_steps=max(1, args.steps // 20), eval_interval=0,
                         log_interval=max(1, args.steps // 20), progress=False, length_groups=8,
                         seed=args.seed)
    start = time.perf_counter()
    finetune(model, tok, train, config=config)
    seconds = time.perf_counter() - start
    replies = generate_answers(model.eval(), tok, test, max_new_tokens=40)

    right, count, pads = Counter(), Counter(), Counter()
    for reply, example in zip(replies, test):
        right[example.family] += final_answer(example.family, reply, worked) == example.answer
        count[example.family] += 1
        if example.family in worked:  # is the worked part itself right?
            expected = with_worked_answer(example, worked).messages[1]["content"]
            pads[example.family] += reply.strip() == expected
    print(f"worked: {', '.join(sorted(worked)) or 'none'}; {args.steps} steps, seed {args.seed}, "
          f"{seconds:.0f} s of fine-tuning")
    print(f"exact match: overall {sum(right.values()) / len(test):.1%}; "
          + ", ".join(f"{f} {right[f] / count[f]:.0%}" for f in count))
    for family in sorted(worked & set(count)):
        print(f"  {family}: the whole worked reply right in {pads[family]} of {count[family]}")
    for reply, example in [(r, e) for r, e in zip(replies, test) if e.family in worked][:3]:
        print(f"  {example.messages[0]['content'][-60:]!r} -> {reply!r}")


if __name__ == "__main__":
    main()
