"""The ``sftlearn`` command (also ``python -m sftlearn``).

    sftlearn doctor            is this machine ready for the course?
    sftlearn demo              pretrain (or load) the tiny base model, fine-tune it, compare
    sftlearn pretrain          train a zoo base model and save it
    sftlearn sft               fine-tune a model on the instruction data and save it
    sftlearn chat MODEL        talk to a saved model (a folder) or a zoo model
    sftlearn data [--stats]    the synthetic world: two stories and one instruction per task
                               family, or (--stats) what it contains, counted
    sftlearn build-exercises   write exercises/ from solutions/

Every sub-command has ``--help``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _cmd_doctor(args) -> int:
    from .doctor import as_json, report, run_checks

    findings = run_checks(speed=not args.quick)
    print(as_json(findings) if args.json else report(findings))
    return 1 if any(f.ok is False for f in findings) else 0


def _load(model_arg: str, device: str | None = None, progress: bool = True):
    """A model and tokenizer from a saved folder, or from the zoo by name (built on first use,
    with progress bars unless ``progress=False``)."""
    from .checkpoint import load_model, load_tokenizer_from
    from .device import get_device
    from .model import GPT
    from .zoo import RECIPES, base_model

    device = get_device(device)  # a ValueError that names the available devices

    if model_arg in RECIPES:
        return base_model(model_arg, device=device, progress=progress)
    path = Path(model_arg)
    if not path.is_dir():
        raise ValueError(
            f"{model_arg!r} is neither a saved model folder nor a zoo model "
            f"({', '.join(RECIPES)})."
        )
    tokenizer = load_tokenizer_from(path)
    if tokenizer is None:
        raise ValueError(f"{path} has no tokenizer.json; save the model with its tokenizer.")
    model = load_model(path, device)
    if not isinstance(model, GPT):  # a task head (chapter 11) labels text but cannot write any
        raise ValueError(
            f"{path} holds a {type(model).__name__}, a GPT with a task head: it labels "
            f"text but does not write it. Give a language model (saved from a GPT without a "
            f"head) or a zoo model ({', '.join(RECIPES)})."
        )
    return model, tokenizer


def _finetune_config(args):
    from .train import TrainConfig
    from .validation import check_int

    check_int("--train-per-family", args.train_per_family)
    check_int("--eval-per-family", args.eval_per_family)
    return TrainConfig(max_steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                       warmup_steps=max(1, args.steps // 20), eval_interval=max(args.steps // 4, 1),
                       eval_batches=4, log_interval=10, device=args.device,
                       progress=not args.quiet, length_groups=args.length_groups)


def _cmd_demo(args) -> int:
    from . import data
    from .sft import evaluate_tasks, finetune, generate_answers

    config = _finetune_config(args)  # first: a bad option fails before any model is loaded
    start = time.perf_counter()
    model, tokenizer = _load(args.model, args.device, progress=not args.quiet)
    print(f"Base model: {args.model}, {model.num_parameters():,} parameters "
          f"({time.perf_counter() - start:.0f} s so far)")
    test = data.sft_examples("test", n_per_family=args.eval_per_family)
    before = evaluate_tasks(model, tokenizer, test, with_loss=False)
    sample = test[:: max(len(test) // 3, 1)][:3]
    before_answers = generate_answers(model, tokenizer, sample)
    print("\nBefore fine-tuning (exact match on the test split):")
    print(before.table())

    train = data.sft_examples("train", n_per_family=args.train_per_family)
    val = data.sft_examples("val", n_per_family=20)
    finetune(model, tokenizer, train, val, config)
    after = evaluate_tasks(model, tokenizer, test, with_loss=False)
    after_answers = generate_answers(model, tokenizer, sample)
    print("\nAfter fine-tuning:")
    print(after.table())
    print("\nSamples:")
    for ex, old, new in zip(sample, before_answers, after_answers):
        print(f"  user:     {ex.messages[0]['content']}")
        print(f"  before:   {old[:60]!r}")
        print(f"  after:    {new[:60]!r}   (reference: {ex.answer!r})\n")
    print(f"Done in {time.perf_counter() - start:.0f} s.")
    return 0


def _cmd_pretrain(args) -> int:
    from .checkpoint import save_model
    from .files import output_folder
    from .zoo import pretrain

    output_folder(args.out, "Give --out a folder to save the model into.")  # before training
    overrides = {"max_steps": args.steps} if args.steps is not None else {}
    model, tokenizer, trainer = pretrain(args.model, progress=not args.quiet,
                                         device=args.device, **overrides)
    if not trainer.is_main:  # under torchrun every process has the same model: one saves it
        return 0
    save_model(model, args.out, tokenizer)
    print(trainer.history.summary())
    print(f"Saved to {args.out}")
    return 0


def _cmd_sft(args) -> int:
    from . import data
    from .checkpoint import save_model
    from .files import output_folder
    from .sft import evaluate_tasks, finetune

    config = _finetune_config(args)  # first: a bad option fails before any model is loaded
    output_folder(args.out, "Give --out a folder to save the model into.")
    model, tokenizer = _load(args.base, args.device, progress=not args.quiet)
    train = data.sft_examples("train", n_per_family=args.train_per_family)
    val = data.sft_examples("val", n_per_family=20)
    trainer = finetune(model, tokenizer, train, val, config)
    print(trainer.history.summary())
    save_model(model, args.out, tokenizer)  # before scoring: minutes of training are never lost
    print(f"Saved to {args.out}")
    print(evaluate_tasks(model, tokenizer, "test", n_per_family=args.eval_per_family).table())
    return 0


def _cmd_chat(args) -> int:
    from .generation import check_sampling
    from .sft import generate_answers
    from .validation import check_int

    check_sampling(args.temperature, top_p=args.top_p)  # before loading, and also when greedy
    check_int("--max-new-tokens", args.max_new_tokens)
    model, tokenizer = _load(args.model, args.device)
    sampling = {} if args.temperature == 0 else {"temperature": args.temperature, "top_p": args.top_p}

    def reply(text: str) -> str:
        return generate_answers(model, tokenizer, [[{"role": "user", "content": text}]],
                                max_new_tokens=args.max_new_tokens, **sampling)[0]

    if args.prompt is not None:
        print(reply(args.prompt))
        return 0
    print("Type a message and press Enter (an empty line or Ctrl-D quits).")
    while True:
        try:
            text = input("you> ").strip()
        except EOFError:
            break
        if not text:
            break
        try:
            print(f"model> {reply(text)}")
        except ValueError as error:  # e.g. a character the tokenizer does not know
            print(f"(cannot answer that: {error})")
    return 0


def _cmd_data(args) -> int:
    from . import data

    if args.stats:
        print(data.format_stats())
        return 0
    # without --stats: a look at the world itself, the start of the corpus and one
    # instruction of each task family
    print("The first two stories of the pretraining corpus:\n")
    stories = data.pretraining_text(2_000, seed=0).split("\n\n")[:2]  # whole stories only
    print("\n\n".join(stories), "\n")
    print("One training instruction of each task family:\n")
    for example in data.sft_examples("train", n_per_family=1):
        prompt = example.prompt.replace("\n", " / ")
        print(f"  {example.family:<11} {prompt!r}\n  {'':<11} -> {example.answer!r}")
    print("\nsftlearn data --stats counts the corpus, the splits and the labelled sets.")
    return 0


def _cmd_build_exercises(args) -> int:
    from .course import build_exercises, check_exercises_in_sync

    if args.check:
        problems = check_exercises_in_sync(args.src, args.dst)
        print("\n".join(problems) if problems else "exercises/ is in sync with solutions/")
        return 1 if problems else 0
    written = build_exercises(args.src, args.dst)
    print(f"Wrote {len(written)} exercise notebook(s) to {args.dst}/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sftlearn", description="A hands-on course on language models and fine-tuning.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    def add_training_options(p, steps):
        p.add_argument("--steps", type=int, default=steps, help="optimizer steps (default %(default)s)")
        p.add_argument("--batch-size", type=int, default=16)
        p.add_argument("--lr", type=float, default=3e-3)  # chapter 09's recipe (benchmarks/sft_recipe_study.md)
        p.add_argument("--train-per-family", type=int, default=1500,
                       help="training conversations per task family (default %(default)s)")
        p.add_argument("--eval-per-family", type=int, default=20)
        p.add_argument("--length-groups", type=int, default=8,
                       help="sort each window of this many batches by length, so batches pad "
                            "little; 0 = random batches (default %(default)s)")

    def add_common(p):
        p.add_argument("--device", default=None, help="cpu, cuda or mps (default: best available)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = add("doctor", _cmd_doctor, "check that this machine is ready for the course")
    p.add_argument("--quick", action="store_true", help="skip the speed measurement")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")

    p = add("demo", _cmd_demo, "pretrain (or load) the tiny base model, fine-tune it, compare")
    p.add_argument("--model", default="tiny-base", help="zoo model or saved folder")
    add_training_options(p, steps=900)  # about 20 s on two cores with a cached base
    add_common(p)

    p = add("pretrain", _cmd_pretrain, "train a zoo base model from scratch and save it")
    p.add_argument("--model", default="tiny-base", help="zoo recipe (default %(default)s)")
    p.add_argument("--steps", type=int, default=None, help="override the recipe's steps")
    p.add_argument("--out", required=True, help="folder to save the model in")
    add_common(p)

    p = add("sft", _cmd_sft, "fine-tune a model on the instruction data and save it")
    p.add_argument("--base", default="tiny-base", help="zoo model or saved folder")
    p.add_argument("--out", required=True, help="folder to save the fine-tuned model in")
    add_training_options(p, steps=1800)  # chapter 09's main run
    add_common(p)

    p = add("chat", _cmd_chat, "talk to a saved model")
    p.add_argument("model", help="saved model folder (with tokenizer.json) or zoo model")
    p.add_argument("--prompt", default=None, help="answer this one message and exit")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--device", default=None)

    p = add("data", _cmd_data, "describe the synthetic world's data")
    p.add_argument("--stats", action="store_true", help="print corpus and dataset statistics")

    p = add("build-exercises", _cmd_build_exercises, "write exercises/ from solutions/")
    p.add_argument("--src", default="solutions")
    p.add_argument("--dst", default="exercises")
    p.add_argument("--check", action="store_true", help="only report whether exercises/ is in sync")
    return parser


def _for_the_user(error: Exception) -> bool:
    """Whether ``error`` carries a message written for the user (a bad option, a missing file,
    a run that diverged and says how to fix it), so that its line is enough: no traceback."""
    if isinstance(error, (ValueError, TypeError, OSError)):
        return True
    train = sys.modules.get("sftlearn.train")  # imported by any command that trains
    return train is not None and isinstance(error, train.NonFiniteLossError)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as error:
        if not _for_the_user(error):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
