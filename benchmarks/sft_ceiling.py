"""How far does fine-tuning take the base model, skill by skill?

Fine-tunes a base model on ``sftlearn.data``'s train split for ``--steps`` steps (chapter 09's
recipe: AdamW, 5% warm-up, cosine decay, batches of 16 conversations) and prints exact match
per task family on the test split and on held-out phrasings, with the families split into
the skills they test (a "Who ...?" question or a "What ...?" one; reverse, upper-case or count
a word; a sum written as an expression or as a word problem).

``--pretrain-steps N`` first builds a variant of tiny-base pretrained for N steps (on enough
story text that no block is read twice) instead of loading the zoo's model (``--pretrain-batch``,
``--pretrain-lr`` and the shape options change it further; the zoo caches each variant, so a
rerun loads it); ``--probe`` reads
what pretraining taught straight from the base model: it continues sentences of unseen stories
that state a sum, a word written backwards, a review's verdict..., and counts how often the
greedy continuation is the one the story has, and whether it can copy a list of words it has just
read; ``--families qa`` fine-tunes and tests one family (or several) with the whole budget;
``--copying-base`` starts from a base that can copy (``copying_base.py``). The results are in
``sft_recipe_study.md``.

    python benchmarks/sft_ceiling.py                          # the study's runs: 1,200 random steps
    python benchmarks/sft_ceiling.py --steps 1500 --length-groups 8 --threads 2   # chapter 09's now
    python benchmarks/sft_ceiling.py --steps 10000 --n 3000   # eight times the budget
    python benchmarks/sft_ceiling.py --pretrain-steps 2000 --probe
    python benchmarks/sft_ceiling.py --pretrain-steps 2000 --layers 6 --heads 6 --width 192
    python benchmarks/sft_ceiling.py --pretrain-steps 8000 --lora 16 --threads 2
    python benchmarks/sft_ceiling.py --families qa --probe --threads 2
    python benchmarks/sft_ceiling.py --easy-qa --negated-share 0.25 --lexicon-strings  # task_variants.py
    python benchmarks/sft_ceiling.py --families sentiment --negated-share 0 --liked-only
    python benchmarks/sft_ceiling.py --copying-base --probe --threads 2   # copying_base.py
    bash benchmarks/sft_scale.sh   # on a GPU: an 11.5 M-parameter base on 52 M tokens
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import re
import time

import copying_base
import task_variants
import torch

from sftlearn import data, zoo
from sftlearn.data import lexicon
from sftlearn.device import seed_everything
from sftlearn.freeze import unfreeze
from sftlearn.lora import attach_lora
from sftlearn.probes import copying_accuracy
from sftlearn.sft import evaluate_tasks, finetune
from sftlearn.train import TrainConfig

# Sentences of the stories whose last word pretraining should predict: (name, pattern); the
# pattern's group is the word to predict, everything before it is the prompt.
PROBES = (
    ("sum", r"so now (?:s)?he has (\d+)"),
    ("difference", r"Now (?:s)?he has (\d+)"),
    ("backwards", r'backwards: "(\w+)"'),
    ("letters", r'" has (\d+) letters'),
    ("capitals", r'writes "([A-Z]+)" in big'),
    ("liked food", r"likes the (\w+) best"),
    ("disliked food", r"does not like the (\w+)\."),
)


def base(pretrain_steps: int | None, shape: dict, batch: int | None = None,
         lr: float | None = None, device: str | None = None):
    """The zoo's tiny-base, or its recipe changed: pretrained for ``pretrain_steps`` steps of
    ``batch`` blocks at peak ``lr``, and/or with another model ``shape`` (GPTConfig fields). A
    variant is cached by the zoo like any base model, so a second run with the same settings
    loads it instead of pretraining again."""
    if pretrain_steps is None and not shape and batch is None and lr is None:
        return zoo.base_model("tiny-base", progress=False, device=device)
    rec = zoo.recipe("tiny-base")
    steps, rec_batch = rec.train["max_steps"], rec.train["batch_size"]
    pretrain_steps, batch = pretrain_steps or steps, batch or rec_batch
    # A new zoo name for the variant (tiny-base itself is untouched). Its text grows with the
    # tokens read, so a longer run reads new stories, not old ones again.
    zoo.RECIPES["tiny-base-variant"] = dataclasses.replace(
        rec, corpus_chars=rec.corpus_chars * pretrain_steps * batch // (steps * rec_batch),
        model_overrides={**rec.model_overrides, **shape},
        train={**rec.train, "max_steps": pretrain_steps, "batch_size": batch,
               "lr": lr or rec.train["lr"]})
    start = time.perf_counter()
    model, tok = zoo.base_model("tiny-base-variant", progress=False, device=device)
    print(f"base: {pretrain_steps} steps x {batch} blocks, {model.num_parameters():,} parameters, "
          f"{time.perf_counter() - start:.0f} s (0 if cached): "
          f"{zoo.cached_history('tiny-base-variant').summary()}")
    return model, tok


@torch.no_grad()
def probe(model, tok, per_probe: int = 60) -> None:
    """How often the base model continues a story sentence with the story's own word."""
    stories = data.pretraining_text(300_000, seed=7).split("\n\n")  # a seed training never uses
    for name, pattern in PROBES:
        cases = [(story[: m.start(1)].rstrip(" "), m.group(1))
                 for story in stories for m in re.finditer(pattern, story)][:per_probe]
        right = 0
        for prompt, want in cases:
            ids = tok.encode(prompt)[-(model.config.block_size - 8):]
            ids_t = torch.tensor([ids], device=next(model.parameters()).device)
            out = model.generate(ids_t, 8, greedy=True)  # (1, len(ids) + 8)
            right += tok.decode(out[0, len(ids):].tolist()).lstrip().startswith(want)
        print(f"  {name:<14}{right:>3} / {len(cases)}")
    print(f"  {copying_accuracy(model, tok, lexicon.spelling_words())}")


def skill(example) -> str:
    """The finer skill an example tests (the family name where there is only one)."""
    if example.family == "qa":
        return "qa.who" if re.search(r"\bWho\b[^?]*\?", example.prompt) else "qa.what"
    if example.family in ("arithmetic", "strings"):
        return ".".join(example.template.split(".")[:2])  # e.g. "strings.reverse"
    return example.family


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1200, help="fine-tuning steps")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--n", type=int, default=1500, help="training conversations per family")
    parser.add_argument("--test", type=int, default=50, help="test conversations per family")
    parser.add_argument("--batch", type=int, default=16, help="conversations per fine-tuning step")
    parser.add_argument("--pretrain-steps", type=int, default=None)
    parser.add_argument("--pretrain-batch", type=int, default=None,
                        help="blocks of 128 tokens per pretraining step (tiny-base: 8)")
    parser.add_argument("--pretrain-lr", type=float, default=None, help="(tiny-base: 3e-3)")
    parser.add_argument("--probe", action="store_true", help="probe the base model first")
    parser.add_argument("--layers", type=int, default=None, help="model shape (default tiny's)")
    parser.add_argument("--heads", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--lora", type=int, default=None,
                        help="fine-tune LoRA adapters of this rank on every linear layer, and the "
                             "embeddings, instead of every parameter")
    parser.add_argument("--families", default=None,
                        help="comma-separated task families to fine-tune and test on (default all)")
    parser.add_argument("--easy-qa", action="store_true",
                        help="qa passages with one fact of each kind, every sentence naming its person")
    parser.add_argument("--negated-share", type=float, default=None,
                        help="share of negated clauses in the sentiment reviews (about 0.55 as it is)")
    parser.add_argument("--lexicon-strings", action="store_true", help="string tasks on lexicon words only")
    parser.add_argument("--liked-only", action="store_true",
                        help="every sentiment question asks for the liked food")
    parser.add_argument("--copying-base", action="store_true",
                        help="a base that can copy (smeared keys, copying drills; ~100 s)")
    parser.add_argument("--length-groups", type=int, default=0,
                        help="sort each window of this many batches by length (chapter 09: 8)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default=None, help="cpu, cuda... (default: the best available)")
    args = parser.parse_args(argv)
    if args.copying_base:
        # copying_base.build() has its own fixed recipe (and runs on the CPU)
        ignored = [f"--{name.replace('_', '-')}" for name in
                   ("pretrain_steps", "pretrain_batch", "pretrain_lr", "layers", "heads", "width", "device")
                   if getattr(args, name) not in (None, parser.get_default(name))]
        if ignored:
            parser.error(f"--copying-base builds its own base: drop {', '.join(ignored)}")
    torch.set_num_threads(args.threads)

    shape = {k: v for k, v in (("n_layer", args.layers), ("n_head", args.heads),
                               ("n_embd", args.width)) if v is not None}
    model, tok = (copying_base.build() if args.copying_base else
                  base(args.pretrain_steps, shape, args.pretrain_batch, args.pretrain_lr, args.device))
    if args.probe:
        print("base model, story sentences continued correctly:")
        probe(model.eval(), tok)
    # The task variants only after the base (its stories) and the probes are made.
    if args.easy_qa:
        task_variants.easy_qa()
    if args.negated_share is not None:
        task_variants.rarer_negation(args.negated_share)
    if args.lexicon_strings:
        task_variants.lexicon_strings()
    if args.liked_only:
        task_variants.liked_only()
    if args.lora:
        attach_lora(model, r=args.lora, alpha=2 * args.lora, target_modules=("c_attn", "c_proj", "c_fc"))
        unfreeze(model.transformer.wte)  # the chat tokens' embeddings must be learned
    families = args.families.split(",") if args.families else None
    train = data.sft_examples("train", n_per_family=args.n, families=families)
    seed_everything(0)
    config = TrainConfig(max_steps=args.steps, batch_size=args.batch, lr=args.lr, device=args.device,
                         warmup_steps=max(1, args.steps // 20), eval_interval=0, progress=False,
                         length_groups=args.length_groups)
    start = time.perf_counter()
    finetune(model, tok, train, config=config)
    seconds = time.perf_counter() - start

    test = data.sft_examples("test", n_per_family=args.test, families=families)
    report = evaluate_tasks(model, tok, test, max_new_tokens=40, with_loss=False)
    heldout = evaluate_tasks(model, tok, data.sft_examples("test_heldout", n_per_family=args.test,
                                                           families=families),
                             max_new_tokens=40, with_loss=False)
    where = f"{args.threads} thread(s)" if next(model.parameters()).device.type == "cpu" else \
        str(next(model.parameters()).device)
    print(f"{args.steps} steps x {args.batch}, lr {args.lr}, {seconds:.0f} s on {where}")
    print(report.table())
    print(f"held-out phrasings: {heldout.overall:.1%}")
    if args.probe:
        print(f"fine-tuned model: {copying_accuracy(model, tok, lexicon.spelling_words())}")
    tally = collections.defaultdict(lambda: [0, 0])
    for example, row in zip(test, report.rows):
        tally[skill(example)][0] += row["correct"]
        tally[skill(example)][1] += 1
    print("by skill: " + ", ".join(f"{k} {right}/{n}" for k, (right, n) in sorted(tally.items())))
    wrong_qa = [row for row in report.rows if row["family"] == "qa" and not row["correct"]]
    if wrong_qa:  # a wrong reply that is a word of the passage was copied, from the wrong place
        copied = sum(bool(re.search(rf"\b{re.escape(row['prediction'])}\b", row["prompt"]))
                     for row in wrong_qa)
        print(f"wrong qa replies that are words of the passage: {copied} / {len(wrong_qa)}")


if __name__ == "__main__":
    main()
