"""Loading models: tiny-test built in code, the packaged default (GGUF -> bf16 cache), clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from multiverse.agents.models import ModelNotFoundError, default_gguf_path, ensure_default_model, load_model
from multiverse.agents.policy import Policy, PolicyConfig
from multiverse.agents.prompt import Turn


def test_tiny_test_is_built_in_code_and_seeded() -> None:
    a, b, c = load_model("tiny-test", seed=0), load_model("tiny-test", seed=0), load_model("tiny-test", seed=1)
    wa, wb, wc = (next(m.model.parameters()) for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    tok = a.tokenizer
    text = 'héllo "x"\n'
    assert tok.encode(text, add_special_tokens=False) == list(text.encode())  # token id = byte
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert chat == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert tok.encode(chat, add_special_tokens=False)[0] == tok.convert_tokens_to_ids("<|im_start|>")
    assert sum(p.numel() for p in a.model.parameters()) < 200_000


def test_a_missing_model_offline_says_how_to_provide_it(tmp_path: Path) -> None:
    # HF_HUB_OFFLINE is read when huggingface_hub is imported, so this runs in a fresh interpreter.
    code = (
        "from multiverse.agents.models import load_model, ModelNotFoundError\n"
        "try:\n    load_model('multiverse-tests/no-such-model')\n"
        "except ModelNotFoundError as e:\n    print('ERROR:', e)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert "ERROR: model 'multiverse-tests/no-such-model'" in out.stdout, out.stderr[-2000:]
    assert "HF_HUB_OFFLINE=1 forbids downloading it" in out.stdout and "local folder" in out.stdout


def test_a_folder_that_is_not_a_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"has no config\.json"):
        load_model(str(tmp_path))
    with pytest.raises(ValueError, match="model must be"):
        load_model("")


def test_the_default_model_converts_once_then_loads_fast_and_scores_sensibly(tmp_path: Path) -> None:
    assert default_gguf_path().stat().st_size > 50_000_000
    start = time.perf_counter()
    folder = ensure_default_model(tmp_path)  # GGUF -> bf16 safetensors, in a fresh cache
    converted = time.perf_counter() - start
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert [p.name for p in (tmp_path / "models").iterdir()] == [folder.name]  # no temporary folder left
    start = time.perf_counter()
    loaded = load_model("default", cache_dir=tmp_path)
    assert time.perf_counter() - start < max(10.0, converted / 2)
    assert loaded.model.dtype == torch.bfloat16 and loaded.source == str(folder)
    assert sum(p.numel() for p in loaded.model.parameters()) == 134_515_008
    policy = Policy(loaded.model, loaded.tokenizer, PolicyConfig())
    turn = Turn("Answer the question.", "What is the capital of France?", ["Paris", "London", "Berlin", "Banana"])
    [scores] = policy.score([turn])
    assert torch.isfinite(scores).all() and int(torch.argmax(scores)) == 0, scores
