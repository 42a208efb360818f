"""The language-model policy: score legal actions, sample one, generate free text where a template asks.

Scoring mode. Every legal action is a candidate reply; its score is the sum of
the log-probabilities of its tokens (then the end-of-turn token) given the
prompt. The policy samples from ``softmax(score / temperature)`` over the
candidates: always a legal action, with an exact probability. The efficient
form puts the prompt once in a row with every candidate packed after it; a
block attention mask lets each candidate see the prompt and itself (causally)
but no other candidate, and explicit position ids restart every candidate right
after the prompt, so each candidate is scored exactly as if it were alone
(:func:`score_naive` is that reference; the tests hold the two equal).

Generation mode. A legal action holding ``<text>`` (``type(7, <text>)``) is a
template: its candidate is the text before the slot plus an opening quote, and
its score is the probability that the reply starts so (the marginal over every
completion, so it competes fairly with the fixed actions). When chosen, the
policy samples the text token by token from the model restricted to the action
language: printable tokens without quotes, backslashes or line breaks, until it
samples a closing-quote token (forced at ``max_text_tokens``). The action is
``prefix + '"' + text + '"' + suffix``; its log-prob adds the constrained,
temperature-scaled token log-probs, which :meth:`Policy.evaluate` recomputes
exactly for training.

Device. The policy runs where its model's weights are (``Policy.device``): every tensor it makes is made
there and autocast runs for that device type; sampling draws on the CPU from the (small) distributions, so a
seeded generator gives the same choices on any device. Which kernels compute the forward is the model's
business (:mod:`multiverse.agents.kernels`); the policy never asks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, Protocol

import torch
from annotated_types import Ge, Gt

from multiverse.agents.kernels import share_weights
from multiverse.agents.prompt import TEXT_SLOT, PromptConfig, Turn, build_prompt

__all__ = ["TEXT_SLOT", "Candidates", "Decision", "Policy", "PolicyConfig", "PolicyOutput", "row_key", "score_naive",
           "share_rows"]

#: a finite stand-in for -inf in padded candidate scores: exp() is 0, and 0 * PAD stays finite in backward
PAD_SCORE = -1e9


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    """How the policy acts."""

    prompt: PromptConfig = dataclasses.field(default_factory=PromptConfig)
    """Prompt rendering and its token budget (see multiverse.agents.prompt)."""
    temperature: Annotated[float, Gt(0)] = 1.0
    """Sampling temperature for the candidate softmax and generated tokens (> 0)."""
    max_text_tokens: Annotated[int, Ge(1)] = 16
    """Most tokens of free text a ``<text>`` template may generate; the closing quote is forced at the last."""
    score_norm: Literal["sum", "mean"] = "sum"
    """Candidate score: summed token log-probs (the sequence likelihood) or their mean (favours long actions less)."""
    compute_dtype: Literal["bfloat16", "float32"] = "bfloat16"
    """Autocast dtype for the transformer's matmuls (on the model's device); float32 for exact comparisons."""
    num_threads: int | None = None
    """torch.set_num_threads for this process (None: leave it). Use 1 when envs run beside the policy."""
    rows_per_forward: Annotated[int, Ge(1)] = 8
    """Turns scored per forward pass; bigger batches are split (bounds activation memory)."""

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}; use greedy=True for argmax")
        if self.max_text_tokens < 1:
            raise ValueError(f"max_text_tokens must be >= 1, got {self.max_text_tokens}")
        if self.score_norm not in ("sum", "mean"):
            raise ValueError(f"score_norm must be 'sum' or 'mean', got {self.score_norm!r}")
        if self.compute_dtype not in ("bfloat16", "float32"):
            raise ValueError(f"compute_dtype must be 'bfloat16' or 'float32', got {self.compute_dtype!r}")


@dataclasses.dataclass(frozen=True)
class Candidates:
    """The legal actions of one turn as token blocks."""

    actions: tuple[str, ...]
    blocks: tuple[tuple[int, ...], ...]
    """Token ids per candidate: its text + end-of-turn, or a template's text up to the slot + opening quote."""
    templates: tuple[bool, ...]
    texts: tuple[str, ...] = ()
    """The reply each block scores (PromptConfig.action_text: the action, or with its description)."""


@dataclasses.dataclass
class Decision:
    """What :meth:`Policy.act` chose for one turn, with what training needs to re-score it."""

    action: str
    """The env action string (a template's text filled in)."""
    index: int
    """The chosen candidate."""
    logp: float
    """log pi(action | prompt) at the acting temperature, generated text tokens included."""
    probs: list[float]
    """The distribution over the legal actions (candidates)."""
    value: float | None
    prompt_ids: list[int]
    candidates: Candidates
    gen_ids: tuple[int, ...] = ()
    """Generated text tokens (the closing quote last); empty unless a template was chosen."""
    history_dropped: int = 0


class Scorable(Protocol):
    """Anything :meth:`Policy.evaluate` can re-score: a Decision or a training Sample."""

    prompt_ids: Sequence[int]
    candidates: Candidates
    index: int
    gen_ids: Sequence[int]


@dataclasses.dataclass
class PolicyOutput:
    """Differentiable outputs of :meth:`Policy.evaluate` for N scored items."""

    logp_N: torch.Tensor  # (items,) log pi of the chosen action, generated tokens included
    logdist_NA: torch.Tensor  # (items, max candidates) log pi over candidates; padding ~ PAD_SCORE
    mask_NA: torch.Tensor  # (items, max candidates) True where a candidate exists
    values_N: torch.Tensor | None  # (items,) value-head estimates, when the policy has one
    scores_NA: torch.Tensor  # (items, max candidates) candidate log-likelihoods (temperature 1); padding PAD_SCORE
    ref_logdist_NA: torch.Tensor | None = None  # (items, max candidates) the initial policy's, when a loss asks


# --------------------------------------------------------------------------- packing


@dataclasses.dataclass
class _Packed:
    input_ids_BL: torch.Tensor
    position_ids_BL: torch.Tensor
    allowed_B1LL: torch.Tensor  # (rows, 1, L, L) bool: query may attend to key
    last_prompt_B: torch.Tensor  # (rows,) position of each row's last prompt token
    # candidate tokens (full vocabulary): hidden state read at (row, pos), predicting target, for block k
    tok_row_T: torch.Tensor
    tok_pos_T: torch.Tensor
    tok_target_T: torch.Tensor
    tok_block_T: torch.Tensor
    block_item_K: torch.Tensor  # (blocks,) which item (row) each block belongs to
    block_slot_K: torch.Tensor  # (blocks,) candidate index within the item
    block_len_K: torch.Tensor  # (blocks,) scored tokens per block
    # generated text tokens (constrained vocabulary)
    gen_row_G: torch.Tensor
    gen_pos_G: torch.Tensor
    gen_target_G: torch.Tensor
    gen_forced_G: torch.Tensor  # (gen,) bool: the last allowed step, where only the closing quote may come
    max_cands: int


def _pack(
    prompts: Sequence[Sequence[int]],
    blocks: Sequence[Sequence[Sequence[int]]],
    gens: Sequence[tuple[int, Sequence[int]]] | None,
    pad_id: int,
    max_text_tokens: int,
    device: torch.device,
) -> _Packed:
    """One row per item: prompt, then each candidate block; ``gens[i] = (chosen, gen_ids)`` extends the chosen block.
    Its tensors are made on ``device``."""
    B = len(prompts)
    ids_rows: list[list[int]] = []
    pos_rows: list[list[int]] = []
    seg_rows: list[list[int]] = []  # -1 padding, 0 prompt, k + 1 candidate block k
    tok_row, tok_pos, tok_target, tok_block = [], [], [], []
    gen_row, gen_pos, gen_target, gen_forced = [], [], [], []
    block_item, block_slot, block_len, last_prompt = [], [], [], []
    max_cands = 0
    for b in range(B):
        prompt = list(prompts[b])
        P = len(prompt)
        if P == 0:
            raise ValueError("an empty prompt cannot be scored")
        extra = list(gens[b][1]) if gens is not None and gens[b][1] else []
        chosen = gens[b][0] if gens is not None else -1
        ids, pos, seg = prompt[:], list(range(P)), [0] * P
        last_prompt.append(P - 1)
        max_cands = max(max_cands, len(blocks[b]))
        for k, block in enumerate(blocks[b]):
            n_scored = len(block)
            if n_scored == 0:
                raise ValueError("an empty candidate cannot be scored")
            cand = list(block) + (extra if k == chosen else [])
            start, n = len(ids), len(cand)
            ids += cand
            pos += range(P, P + n)
            seg += [k + 1] * n
            k_global = len(block_item)
            block_item.append(b)
            block_slot.append(k)
            block_len.append(n_scored)
            # token j is predicted by the hidden state before it: the last prompt token for j == 0
            src = [P - 1] + list(range(start, start + n - 1))
            tok_row += [b] * n_scored
            tok_pos += src[:n_scored]
            tok_target += cand[:n_scored]
            tok_block += [k_global] * n_scored
            if n > n_scored:
                gen_row += [b] * (n - n_scored)
                gen_pos += src[n_scored:]
                gen_target += cand[n_scored:]
                gen_forced += [step == max_text_tokens - 1 for step in range(n - n_scored)]
        ids_rows.append(ids)
        pos_rows.append(pos)
        seg_rows.append(seg)
    L = max(len(r) for r in ids_rows)
    pad = lambda rows, value: [r + [value] * (L - len(r)) for r in rows]
    t = functools.partial(torch.tensor, dtype=torch.long, device=device)
    seg = t(pad(seg_rows, -1))
    idx = torch.arange(L, device=device)
    causal_LL = idx[:, None] >= idx[None, :]
    seg_q, seg_k = seg[:, :, None], seg[:, None, :]
    allowed = causal_LL[None] & (seg_k >= 0) & ((seg_k == 0) | (seg_k == seg_q))
    # Padding queries see the prompt and themselves, so no softmax row is empty (their outputs are never read).
    allowed |= torch.eye(L, dtype=torch.bool, device=device)[None] & (seg_q < 0)
    return _Packed(
        t(pad(ids_rows, pad_id)), t(pad(pos_rows, 0)), allowed[:, None], t(last_prompt),
        t(tok_row), t(tok_pos), t(tok_target), t(tok_block),
        t(block_item), t(block_slot), t(block_len),
        t(gen_row), t(gen_pos), t(gen_target), torch.tensor(gen_forced, dtype=torch.bool, device=device),
        max_cands,
    )


def row_key(item: Scorable) -> tuple[Any, ...]:
    """What an item's row in the forward depends on: its prompt and candidates, and its choice only when the choice
    extends the row (generated text). Items with equal keys can share one row."""
    gen = (item.index, tuple(item.gen_ids)) if item.gen_ids else None
    return tuple(item.prompt_ids), item.candidates.blocks, gen


def share_rows(keys: Sequence[Any]) -> tuple[list[int], list[int]]:
    """``(unique, inverse)``: ``unique[j]`` is where the j-th distinct key first occurs in ``keys``, and
    ``inverse[i]`` is the j of ``keys[i]`` (so ``keys[unique[inverse[i]]] == keys[i]``)."""
    seen: dict[Any, int] = {}
    unique, inverse = [], []
    for i, key in enumerate(keys):
        if key not in seen:
            seen[key] = len(unique)
            unique.append(i)
        inverse.append(seen[key])
    return unique, inverse


def _base(model: Any) -> Any:
    """The transformers model under a peft wrapper (LoRA layers stay injected in it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _attention_mask(allowed_B1LL: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The additive mask (0 where allowed, -inf elsewhere) in the attention's dtype, made once per forward.

    sdpa given the boolean mask would convert it to this in every layer, to the same values.
    No row is all -inf: padding queries see themselves (see ``_pack``).
    """
    return torch.zeros(allowed_B1LL.shape, dtype=dtype, device=allowed_B1LL.device).masked_fill_(~allowed_B1LL,
                                                                                                 float("-inf"))


#: positions per chunk of the LM head's log-softmax: a chunk's float32 logits (3 MB for a 49k
#: vocabulary) stay in cache, where one pass over all of them is much slower (bench/README.md)
LOGP_CHUNK = 16


def _target_logp(logits_TV: torch.Tensor, target_T: torch.Tensor,
                 prepare: Callable[[torch.Tensor, slice], torch.Tensor] = lambda x, rows: x) -> torch.Tensor:
    """``log_softmax(prepare(logits.float()))[t, target[t]]``, computed a chunk of positions at a time."""
    out = []
    for start in range(0, logits_TV.shape[0], LOGP_CHUNK):
        rows = slice(start, start + LOGP_CHUNK)
        logp = prepare(logits_TV[rows].float(), rows).log_softmax(-1)
        out.append(logp.gather(1, target_T[rows, None]).squeeze(1))
    return torch.cat(out) if out else logits_TV.new_zeros(0, dtype=torch.float32)


# --------------------------------------------------------------------------- the policy


class Policy:
    """A causal LM with a chat tokenizer that acts in Multiverse envs (see the module docstring)."""

    def __init__(self, model: Any, tokenizer: Any, config: PolicyConfig = PolicyConfig(), value_head: bool = False) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        #: where the model's weights are, and so every tensor the policy makes
        self.device: torch.device = next(model.parameters()).device
        if config.num_threads:
            torch.set_num_threads(int(config.num_threads))
        hidden = _base(model).config.hidden_size
        # The value head reads the LM's final hidden state at the last prompt token; zero-init so V starts at 0.
        self.value_head: torch.nn.Linear | None = None
        if value_head:
            self.value_head = torch.nn.Linear(hidden, 1, dtype=torch.float32, device=self.device)
            torch.nn.init.zeros_(self.value_head.weight)
            torch.nn.init.zeros_(self.value_head.bias)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.eot_ids = self._end_of_turn_ids()
        self._text_masks: tuple[torch.Tensor, torch.Tensor] | None = None
        self._encode_actions = functools.lru_cache(maxsize=4096)(self._encode_actions_uncached)

    # -- encoding

    def _end_of_turn_ids(self) -> list[int]:
        """The tokens the chat template puts after an assistant reply (ChatML: ``<|im_end|>``)."""
        marker = "\x00ACTION\x00"
        messages = [{"role": "user", "content": "u"}, {"role": "assistant", "content": marker}]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False)
        after = text.split(marker, 1)[1].rstrip() if marker in text else ""
        ids = self.tokenizer.encode(after, add_special_tokens=False) if after else []
        if not ids:
            if self.tokenizer.eos_token_id is None:
                raise ValueError("the tokenizer's chat template ends no assistant turn and it has no eos token")
            ids = [self.tokenizer.eos_token_id]
        return ids[:1]

    def _encode_actions_uncached(self, actions: tuple[str, ...], texts: tuple[str, ...]) -> Candidates:
        """Candidates that return ``actions`` and score ``texts`` (each ends with its action, or is it)."""
        if not actions:
            raise ValueError(
                "the legal-action list is empty: the policy needs at least one action to choose from "
                "(an env must list its legal actions in info['legal_actions'])"
            )
        blocks, templates = [], []
        for action, text in zip(actions, texts):
            if not isinstance(action, str) or not action.strip():
                raise ValueError(f"a legal action must be a non-empty string, got {action!r} in {list(actions)}")
            if action.count(TEXT_SLOT) > 1:
                raise ValueError(f"legal action {action!r} has more than one {TEXT_SLOT} slot; one is supported")
            if TEXT_SLOT in action:
                # the text up to the action's own slot (a description before it may hold '<text>' itself)
                prefix = text[: len(text) - len(action)] + action[: action.index(TEXT_SLOT)] + '"'
                blocks.append(tuple(self.tokenizer.encode(prefix, add_special_tokens=False)))
                templates.append(True)
            else:
                blocks.append(tuple(self.tokenizer.encode(text, add_special_tokens=False) + self.eot_ids))
                templates.append(False)
        return Candidates(actions, tuple(blocks), tuple(templates), texts)

    def encode(self, turn: Turn) -> tuple[list[int], Candidates, int]:
        """(prompt ids, candidates, history entries dropped to fit) for one turn."""
        candidates = self._encode_actions(tuple(turn.legal_actions),
                                          tuple(turn.candidate_texts(self.config.prompt.action_text)))
        prompt = build_prompt(self.tokenizer, turn, self.config.prompt)
        return prompt.ids, candidates, prompt.history_dropped

    def text_masks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(text_V, close_V) bool masks over the vocabulary: tokens allowed inside free text, closing quotes."""
        if self._text_masks is None:
            V = _base(self.model).get_output_embeddings().weight.shape[0]
            text, close = [False] * V, [False] * V  # filled here, then made on the device in one copy
            special = set(self.tokenizer.all_special_ids) | set(getattr(self.tokenizer, "added_tokens_decoder", {}) or {})
            for i in range(min(V, len(self.tokenizer))):
                if i in special:
                    continue
                s = self.tokenizer.decode([i])
                if s == '"':
                    close[i] = True
                elif s and s.isprintable() and not any(c in s for c in '"\\\ufffd'):
                    text[i] = True
            if not any(close):
                raise ValueError("the tokenizer has no token for a lone '\"', so <text> templates cannot be closed")
            self._text_masks = (torch.tensor(text, dtype=torch.bool, device=self.device),
                                torch.tensor(close, dtype=torch.bool, device=self.device))
        return self._text_masks

    # -- forward passes

    def _autocast(self) -> contextlib.AbstractContextManager:
        enabled = self.config.compute_dtype == "bfloat16"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def _forward(self, packed: _Packed, temperature: float, chosen: Sequence[int] | None) -> PolicyOutput:
        base = _base(self.model)
        decoder, head = base.get_decoder(), base.get_output_embeddings()
        kind = self.device.type
        with self._autocast():
            dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else head.weight.dtype
            mask = _attention_mask(packed.allowed_B1LL, dtype)
            hidden_BLH = decoder(
                input_ids=packed.input_ids_BL, attention_mask=mask, position_ids=packed.position_ids_BL, use_cache=False
            ).last_hidden_state
            # The LM head runs only where a candidate token is predicted: on the prompt it would cost more
            # than the whole transformer for a 49k vocabulary.
            logits_TV = head(hidden_BLH[packed.tok_row_T, packed.tok_pos_T])
        tok_logp_T = _target_logp(logits_TV, packed.tok_target_T)
        K = packed.block_item_K.shape[0]
        scores_K = torch.zeros(K, dtype=torch.float32, device=self.device).index_add(0, packed.tok_block_T, tok_logp_T)
        if self.config.score_norm == "mean":
            scores_K = scores_K / packed.block_len_K.clamp(min=1)
        N = packed.input_ids_BL.shape[0]
        scores_NA = torch.full((N, packed.max_cands), PAD_SCORE, dtype=torch.float32, device=self.device)
        scores_NA = scores_NA.index_put((packed.block_item_K, packed.block_slot_K), scores_K)
        mask_NA = torch.zeros((N, packed.max_cands), dtype=torch.bool, device=self.device)
        mask_NA[packed.block_item_K, packed.block_slot_K] = True
        logdist_NA = (scores_NA / temperature).log_softmax(-1)
        if chosen is not None:
            logp_N = logdist_NA[torch.arange(N, device=self.device),
                                torch.tensor(list(chosen), dtype=torch.long, device=self.device)]
        else:
            logp_N = torch.zeros(N, device=self.device)
        if packed.gen_row_G.numel():
            with self._autocast():
                gen_logits_GV = head(hidden_BLH[packed.gen_row_G, packed.gen_pos_G])
            text_V, close_V = self.text_masks()
            allowed_GV = torch.where(packed.gen_forced_G[:, None], close_V[None], (text_V | close_V)[None])
            gen_logp_G = _target_logp(gen_logits_GV, packed.gen_target_G,
                                      lambda x, rows: (x / temperature).masked_fill(~allowed_GV[rows], float("-inf")))
            logp_N = logp_N.index_add(0, packed.gen_row_G, gen_logp_G)
        values_N = None
        if self.value_head is not None:
            h_BH = hidden_BLH[torch.arange(N, device=self.device), packed.last_prompt_B].float()
            values_N = self.value_head(h_BH).squeeze(-1)
        return PolicyOutput(logp_N, logdist_NA, mask_NA, values_N, scores_NA)

    def evaluate(self, items: Sequence[Scorable], *, temperature: float | None = None) -> PolicyOutput:
        """Re-score chosen actions (differentiable; call under torch.no_grad() when no gradient is needed).

        Items that score the same row (:func:`row_key`: the same prompt and candidates, e.g. a group's first turn)
        share one row of the forward; each still gets its own chosen action's log-prob, and the shared row's
        gradient is the sum of theirs, as if each had its own row."""
        T = temperature or self.config.temperature
        unique, inverse = share_rows([row_key(it) for it in items])
        rows = [items[u] for u in unique]
        packed = _pack(
            [it.prompt_ids for it in rows],
            [it.candidates.blocks for it in rows],
            [(it.index, tuple(it.gen_ids)) for it in rows],
            self.pad_id,
            self.config.max_text_tokens,
            self.device,
        )
        out = self._forward(packed, T, [it.index for it in rows])
        if len(rows) == len(items):
            return out
        inv = torch.tensor(inverse, dtype=torch.long, device=self.device)
        logdist_NA = out.logdist_NA[inv]
        chosen = torch.tensor([it.index for it in items], dtype=torch.long, device=self.device)
        # a row with generated text is shared only by items with the same choice and text (row_key): its logp holds
        has_gen = torch.tensor([bool(it.gen_ids) for it in items], dtype=torch.bool, device=self.device)
        logp_N = torch.where(has_gen, out.logp_N[inv], logdist_NA[torch.arange(len(items), device=self.device), chosen])
        return PolicyOutput(logp_N, logdist_NA, out.mask_NA[inv], None if out.values_N is None else out.values_N[inv],
                            out.scores_NA[inv])

    def score(self, turns: Sequence[Turn]) -> list[torch.Tensor]:
        """Each turn's candidate scores (summed or mean token log-likelihood of each legal action), no gradient."""
        out = []
        with torch.inference_mode():
            for start in range(0, len(turns), self.config.rows_per_forward):
                chunk = [self.encode(t) for t in turns[start:start + self.config.rows_per_forward]]
                packed = _pack([c[0] for c in chunk], [c[1].blocks for c in chunk], None, self.pad_id, 1, self.device)
                res = self._forward(packed, 1.0, None)
                out += [res.scores_NA[i, : len(c[1].blocks)] for i, c in enumerate(chunk)]
        return out

    @torch.inference_mode()
    def act(
        self,
        turns: Sequence[Turn],
        *,
        greedy: bool = False,
        temperature: float | None = None,
        generator: torch.Generator | None = None,
    ) -> list[Decision]:
        """Choose an action for each turn: one batched packed forward per ``rows_per_forward`` turns."""
        T = temperature or self.config.temperature
        decisions: list[Decision] = []
        for start in range(0, len(turns), self.config.rows_per_forward):
            encoded = [self.encode(t) for t in turns[start:start + self.config.rows_per_forward]]
            # equal turns (a group's envs at their first step) are scored once, and each samples on its own
            unique, inverse = share_rows([(tuple(e[0]), e[1].blocks) for e in encoded])
            packed = _pack([encoded[u][0] for u in unique], [encoded[u][1].blocks for u in unique], None,
                           self.pad_id, 1, self.device)
            out = self._forward(packed, T, None)
            logdist_NA = out.logdist_NA.cpu()  # sampled on the CPU: the same draws on every device
            for i, (prompt_ids, cands, dropped) in enumerate(encoded):
                logdist_A = logdist_NA[inverse[i], : len(cands.blocks)]
                probs_A = logdist_A.exp()
                k = int(torch.argmax(logdist_A)) if greedy else int(torch.multinomial(probs_A, 1, generator=generator))
                action, gen_ids, logp = cands.actions[k], (), float(logdist_A[k])
                if cands.templates[k]:
                    gen_ids, gen_logp, text = self._generate(prompt_ids, cands.blocks[k], T, greedy, generator)
                    head, tail = action.split(TEXT_SLOT, 1)
                    action, logp = f'{head}"{text}"{tail}', logp + gen_logp
                value = float(out.values_N[inverse[i]]) if out.values_N is not None else None
                decisions.append(Decision(action, k, logp, probs_A.tolist(), value, list(prompt_ids), cands,
                                          tuple(gen_ids), dropped))
        return decisions

    def _generate(
        self, prompt_ids: Sequence[int], prefix_ids: Sequence[int], temperature: float, greedy: bool,
        generator: torch.Generator | None,
    ) -> tuple[tuple[int, ...], float, str]:
        """Sample free text in the action language after a template's prefix, with a KV cache."""
        base = _base(self.model)
        decoder, head = base.get_decoder(), base.get_output_embeddings()
        text_V, close_V = self.text_masks()
        ids = torch.tensor([list(prompt_ids) + list(prefix_ids)], dtype=torch.long, device=self.device)
        past, out_ids, logp = None, [], 0.0
        for step in range(self.config.max_text_tokens):
            with self._autocast():
                res = decoder(input_ids=ids, past_key_values=past, use_cache=True)
                logits_V = head(res.last_hidden_state[0, -1]).float()
            past = res.past_key_values
            allowed_V = close_V if step == self.config.max_text_tokens - 1 else (text_V | close_V)
            logp_V = (logits_V / temperature).masked_fill(~allowed_V, float("-inf")).log_softmax(-1).cpu()
            tok = int(torch.argmax(logp_V)) if greedy else int(torch.multinomial(logp_V.exp(), 1, generator=generator))
            logp += float(logp_V[tok])
            out_ids.append(tok)
            if close_V[tok]:
                break
            ids = torch.tensor([[tok]], dtype=torch.long, device=self.device)
        return tuple(out_ids), logp, self.tokenizer.decode(out_ids[:-1])

    # -- weights

    def trainable_parameters(self) -> dict[str, torch.nn.Parameter]:
        """The tensors training changes: LoRA adapters when LoRA is on (else every weight), and the value head."""
        params = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        if self.value_head is not None:
            params.update({f"value_head.{n}": p for n, p in self.value_head.named_parameters()})
        return params

    def for_rollout(self) -> Policy:
        """Make this policy an acting-only replica: adapters in bf16, each weight held once.

        The adapters are stored in bf16, which bf16 autocast computes with anyway, and the kernels hold
        the weights once in the layout they compute with (:func:`multiverse.agents.kernels.share_weights`:
        the fused CPU kernels make base weights views of their joint weights, which a learner keeps
        beside its own). Scores are bit-identical to the learner's on the same kernels (a test compares
        ``act``). Not for a policy that trains. Returns ``self``; a no-op without LoRA, with float32
        compute or float32 base weights.
        """
        if self.config.compute_dtype != "bfloat16":
            return self
        base = {p.dtype for n, p in self.model.named_parameters() if "lora_" not in n}
        if base != {torch.bfloat16}:
            return self
        with torch.no_grad():
            for name, param in self.model.named_parameters():
                if "lora_" in name and param.dtype != torch.bfloat16:
                    param.data = param.data.to(torch.bfloat16)
        share_weights(self.model, torch.bfloat16)
        return self

    def get_weights(self) -> dict[str, torch.Tensor]:
        """A copy of the trainable tensors on the CPU, by name (what a learner broadcasts to rollout replicas)."""
        return {n: p.detach().to("cpu", copy=True) for n, p in self.trainable_parameters().items()}

    def set_weights(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Load trainable tensors from :meth:`get_weights` of a policy built the same way."""
        params = self.trainable_parameters()
        missing, unexpected = sorted(set(params) - set(weights)), sorted(set(weights) - set(params))
        if missing or unexpected:
            raise ValueError(
                f"set_weights: the weights do not match this policy's trainable tensors (missing {missing[:5]}"
                f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}); "
                f"build both policies from the same model config (model, LoRA settings, value head)"
            )
        for name, p in params.items():
            w = weights[name]
            if tuple(w.shape) != tuple(p.shape):
                raise ValueError(f"set_weights: {name} has shape {tuple(w.shape)}, this policy expects {tuple(p.shape)}")
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(weights[name])


def score_naive(policy: Policy, prompt_ids: Sequence[int], candidates: Candidates) -> torch.Tensor:
    """Reference form: one plain causal forward per candidate; returns each candidate's summed token log-prob.

    Used by the tests to check the packed form, and to read when in doubt. Differentiable.
    """
    base = _base(policy.model)
    scores = []
    P = len(prompt_ids)
    for block in candidates.blocks:
        ids = torch.tensor([list(prompt_ids) + list(block)], dtype=torch.long, device=policy.device)
        with policy._autocast():
            logits_LV = base(input_ids=ids).logits[0]
        logp_LV = logits_LV.float().log_softmax(-1)
        targets = torch.tensor(list(block), dtype=torch.long, device=policy.device)
        scores.append(logp_LV[P - 1 : P - 1 + len(block)].gather(1, targets[:, None]).sum())
    return torch.stack(scores)
