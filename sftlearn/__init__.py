"""sftlearn: a small, readable PyTorch package behind a course on language models and SFT.

The package is imported by the course notebooks; each module holds one idea:

- ``sftlearn.device``     where to run and at what precision
- ``sftlearn.tokenizer``  character and byte-pair-encoding tokenizers
- ``sftlearn.data``       the synthetic world: stories, instruction data, labelled sets
- ``sftlearn.datasets``   turning text into training batches
- ``sftlearn.model``      the GPT model and text generation
- ``sftlearn.train``      the Trainer
- ``sftlearn.zoo``        named, cached pretrained models for the later chapters

Heavy submodules are imported lazily, so ``import sftlearn`` is fast.
"""

__version__ = "0.1.0"
