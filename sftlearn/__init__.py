"""sftlearn: a small, readable PyTorch package behind a course on language models and SFT.

The package is imported by the course notebooks; each module holds one idea:

- ``sftlearn.device``     where to run and at what precision
- ``sftlearn.tokenizer``  character and byte-pair-encoding tokenizers
- ``sftlearn.data``       the synthetic world: stories, instruction data, labelled sets
- ``sftlearn.datasets``   turning text into training batches
- ``sftlearn.model``      the GPT model
- ``sftlearn.generation`` greedy and sampled decoding, with a KV cache
- ``sftlearn.train``      the Trainer
- ``sftlearn.zoo``        named, cached pretrained models for the later chapters

``import sftlearn`` imports no submodule, so it is fast; import the one you need
(``from sftlearn.zoo import base_model``).
"""

__version__ = "0.1.0"
