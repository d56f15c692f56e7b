"""The GPU path: bf16 autocast, TF32, fused AdamW, fused (flash) attention, torch.compile, the
KV cache, measured against the same code in fp32 or on the CPU.

Every test needs a CUDA GPU and is skipped without one (CI has none); on a GPU machine run
``pytest tests/test_cuda.py``. The CPU side of each feature is tested elsewhere
(test_device, test_model, test_generation, test_train).
"""

import pytest
import torch

from sftlearn.config import GPTConfig
from sftlearn.datasets import LMBlockDataset
from sftlearn.device import seed_everything
from sftlearn.model import GPT
from sftlearn.train import TrainConfig, Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

VOCAB = 96


def _micro(**overrides) -> GPT:
    seed_everything(0)
    return GPT(GPTConfig.preset("micro", vocab_size=VOCAB, block_size=64, **overrides))


def _blocks(n_tokens: int = 4096, block: int = 32) -> LMBlockDataset:
    # a repeating pattern the model can learn quickly: losses must fall within a few steps
    ids = [(i * 7) % VOCAB for i in range(n_tokens)]
    return LMBlockDataset(ids, block)


def _trainer(model, **settings) -> Trainer:
    config = TrainConfig(max_steps=60, batch_size=8, lr=3e-3, warmup_steps=2, device="cuda",
                         progress=False, log_interval=10, **settings)
    return Trainer(model, _blocks(), None, config)


def test_trainer_on_cuda_runs_bf16_autocast_tf32_and_fused_adamw():
    trainer = _trainer(_micro())
    assert trainer.device.type == "cuda"
    # bf16 only where the GPU computes it natively (compute capability 8.0+), fp16 below
    native = torch.version.hip or torch.cuda.get_device_capability()[0] >= 8
    assert trainer.precision.name == ("bf16" if native else "fp16")
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert trainer.optimizer.defaults.get("fused") is True
    with trainer.precision.autocast(trainer.device):
        logits, _ = trainer.model(torch.randint(0, VOCAB, (2, 16), device="cuda"))
    assert logits.dtype == trainer.precision.dtype  # the forward really runs in half precision
    trainer.fit()
    losses = trainer.history.train_loss
    assert losses[-1] < 0.5 * losses[0], losses  # it learns, in half precision
    # the weights stay fp32 (autocast casts per operation, the optimizer updates fp32 masters)
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


def test_fused_attention_on_cuda_equals_the_math_path():
    fused = _micro().cuda().eval()
    math = _micro(attention="math").cuda().eval()
    math.load_state_dict(fused.state_dict())
    x = torch.randint(0, VOCAB, (3, 40), device="cuda")
    mask = torch.ones_like(x)
    mask[0, :5] = 0  # a left-padded row takes the masked kernel path
    torch.backends.cuda.matmul.allow_tf32 = False  # compare the attention, not TF32 rounding
    try:
        for attention_mask in (None, mask):
            a, _ = fused(x, attention_mask=attention_mask)
            b, _ = math(x, attention_mask=attention_mask)
            keep = (mask if attention_mask is not None else torch.ones_like(x)).bool()
            torch.testing.assert_close(a[keep], b[keep], atol=1e-4, rtol=1e-4)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = True


def test_training_forward_is_eligible_for_the_flash_kernel():
    # With no padding mask the model asks SDPA for is_causal=True; forcing the flash backend
    # raises if that call could not use it (e.g. an explicit mask tensor sneaked in).
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model = _micro().cuda()
    x = torch.randint(0, VOCAB, (4, 64), device="cuda")
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION), torch.autocast("cuda", dtype=torch.bfloat16):
        _, loss = model(x, targets=x)
        loss.backward()
    assert torch.isfinite(loss)


def test_compiled_training_matches_eager_training():
    eager = _trainer(_micro())
    eager.fit()
    compiled = _trainer(_micro(), compile=True)
    compiled.fit()
    a, b = eager.history.train_loss, compiled.history.train_loss
    # same data order and initialisation; compiled kernels round differently in bf16
    assert b == pytest.approx(a, rel=0.1), (a, b)


def test_cached_generation_on_cuda_picks_what_the_full_forward_picks():
    # Cached and uncached decoding run different kernels (one query row vs all rows), so
    # compare decisions, not bits: every greedy token must be the full forward's best, up to
    # a rounding-sized margin.
    model = _micro().cuda().eval()
    prompt = torch.randint(0, VOCAB, (2, 10), device="cuda")
    out = model.generate(prompt, 20, greedy=True, use_cache=True)  # (2, 30)
    with torch.no_grad():
        logits, _ = model(out[:, :-1])  # (2, 29, V): the scores behind every next token
    chosen = logits[:, 9:].gather(-1, out[:, 10:, None]).squeeze(-1)  # (2, 20)
    best = logits[:, 9:].max(dim=-1).values
    assert (chosen >= best - 1e-3).all()
