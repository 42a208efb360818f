"""Actions scored with their descriptions: exact scores and log-probs, bare actions returned, and the
descriptions kept by recording, replay and the Minari export."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import multiverse.envs as menvs
from multiverse.agents import episodes as episodes_mod
from multiverse.agents.episodes import EpisodeMeta, EpisodeWriter, RecordEpisodes, read_episodes
from multiverse.agents.policy import score_naive
from multiverse.agents.prompt import PromptConfig, Turn, build_prompt
from multiverse.agents.replay import verify_dataset
from multiverse.agents.rollout import EpisodeSpec, run_episodes
from multiverse.envs.play import oracle_agent, play_episode

from agent_helpers import FP32, tiny_policy

CATCH_OBS = "Catch the falling ball with your paddle.\n..o..\n.....\n..=..\nBalls left: 1 (caught 0)."
CATCH = {"params": {"balls": 1, "width": 5, "height": 6, "action_words": "compass"}}


def _described(form: str = "action_then_description"):
    return dataclasses.replace(FP32, prompt=dataclasses.replace(FP32.prompt, action_text=form))


def _turns() -> list[Turn]:
    catch = Turn("Catch the falling ball with your paddle.", CATCH_OBS, ["west", "hold", "east"],
                 action_descriptions=["the paddle goes one column west", "the paddle holds",
                                      "the paddle goes one column east"])
    web = Turn("Save it.", "Save it.\n[1] textbox \"Name\"\n[2] button \"Save\"",
               ["type(1, <text>)", "click(1)", "click(2)", 'press("Enter")'],
               action_descriptions=['textbox "Name"', 'textbox "Name"', 'button "Save"', "press the Enter key"])
    only_type = Turn("Name it.", "Name it.\n[1] textbox \"Name\"", ["type(1, <text>)"],
                     action_descriptions=['textbox "Name"'])
    return [catch, web, only_type]


def test_the_default_scores_each_action_with_its_description() -> None:
    """The form that won the zero-shot comparison (bench/README.md) is the default."""
    assert PromptConfig().action_text == "action_then_description"
    policy = tiny_policy()
    assert policy.encode(_turns()[0])[1].texts[0] == "west the paddle goes one column west"


def test_turn_from_env_carries_the_descriptions_and_rejects_misaligned_ones() -> None:
    info = {"mission": "m", "legal_actions": ["a", "b"], "action_descriptions": ["first", "second"]}
    assert Turn.from_env({"text": "m\nobs"}, info).action_descriptions == ("first", "second")
    assert Turn.from_env({"text": "m"}, {"mission": "m", "legal_actions": ["a"]}).action_descriptions is None
    with pytest.raises(ValueError, match="2 legal actions but 1 action_descriptions"):
        Turn.from_env({"text": "m"}, {**info, "action_descriptions": ["first"]})


@pytest.mark.parametrize("form", ["action_then_description", "description_then_action"])
def test_described_candidates_score_exactly_and_act_returns_the_bare_action(form: str) -> None:
    policy = tiny_policy(config=_described(form))
    turns = _turns()
    decisions = policy.act(turns * 16, temperature=5.0, generator=torch.Generator().manual_seed(0))
    for d, turn in zip(decisions, turns * 16):
        assert d.action in turn.legal_actions or d.action.startswith('type(1, "')
        assert d.candidates.actions == tuple(turn.legal_actions)
    # the candidate scored holds the description (its tokens are longer than the bare action's)
    for d, turn in zip(decisions, turns):
        plain = policy.encode(dataclasses.replace(turn, action_descriptions=None))[1]
        assert all(len(b) > len(p) for b, p in zip(d.candidates.blocks, plain.blocks)), turn
    # packed scores equal one forward per candidate, and training re-scores exactly what act sampled
    out = policy.evaluate(decisions, temperature=5.0)
    naive = torch.cat([score_naive(policy, d.prompt_ids, d.candidates) for d in decisions])
    assert torch.allclose(out.scores_NA[out.mask_NA], naive, atol=1e-5, rtol=1e-6)
    assert out.logp_N.tolist() == pytest.approx([d.logp for d in decisions], abs=1e-4)
    assert any(d.action.startswith('type(1, "') and d.gen_ids for d in decisions)  # the generated text path too


def test_the_bare_form_ignores_descriptions() -> None:
    policy = tiny_policy(config=_described("action"))
    turn = _turns()[0]
    assert policy.encode(turn)[1] == policy.encode(dataclasses.replace(turn, action_descriptions=None))[1]


def test_a_listed_action_set_shows_what_is_scored() -> None:
    policy = tiny_policy()
    config = PromptConfig(list_legal_actions=True, action_text="action_then_description")
    text = build_prompt(policy.tokenizer, _turns()[0], config).text
    assert "Legal actions: west the paddle goes one column west; hold the paddle holds;" in text


def _record(out: Path) -> None:
    with EpisodeWriter(out) as writer:
        env = RecordEpisodes(menvs.make("games/Catch-v0"), writer, EpisodeMeta(agent="oracle"))
        for seed in range(2):
            play_episode(env, oracle_agent(), seed=seed, options=CATCH)
        env.close()


def test_recorded_episodes_keep_the_descriptions_and_replay(tmp_path: Path) -> None:
    _record(tmp_path)
    recs = list(read_episodes(tmp_path))
    for rec in recs:
        for step in rec.episode.steps:
            assert step.action_descriptions == ["the paddle goes one column west", "the paddle holds",
                                                "the paddle goes one column east"]
            assert "action_descriptions" not in step.info  # a column of its own, not repeated in info
    report = verify_dataset(read_episodes(tmp_path))
    assert report.ok and report.episodes == 2, [d.describe() for d in report.divergences]
    # a tampered description is a divergence replay names
    table = pq.read_table(next(tmp_path.glob("*.parquet")))
    rows = table.to_pylist()
    rows[0]["steps"][0]["action_descriptions"] = ["x", "y", "z"]
    bad = tmp_path / "bad"
    bad.mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), bad / "part-0.parquet")
    report = verify_dataset(read_episodes(bad))
    assert not report.ok and report.divergences[0].field == "action_descriptions"


def test_rollout_episodes_keep_the_descriptions(tmp_path: Path) -> None:
    policy = tiny_policy(config=_described())
    episodes = run_episodes(policy, [menvs.make("games/Catch-v0")], [EpisodeSpec("games/Catch-v0", 0, CATCH)],
                            seed=0, max_steps=3)
    assert episodes[0].steps[0].action_descriptions[0] == "the paddle goes one column west"
    with EpisodeWriter(tmp_path) as writer:
        writer.write(episodes[0], EpisodeMeta(agent="policy", max_steps=3))
    (rec,) = read_episodes(tmp_path)
    assert [s.action_descriptions for s in rec.episode.steps] == [s.action_descriptions for s in episodes[0].steps]


def test_an_episode_file_without_the_column_still_reads_and_verifies(tmp_path: Path) -> None:
    _record(tmp_path / "new")
    table = pq.read_table(next((tmp_path / "new").glob("*.parquet")))
    old_step = pa.struct([f for f in episodes_mod.STEP_TYPE if f.name != "action_descriptions"])
    old_schema = pa.schema([pa.field("steps", pa.list_(old_step)) if f.name == "steps" else f
                            for f in episodes_mod.SCHEMA], metadata=episodes_mod.SCHEMA.metadata)
    rows = table.to_pylist()
    for row in rows:
        for s in row["steps"]:
            del s["action_descriptions"]
    (tmp_path / "old").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=old_schema), tmp_path / "old" / "part-0.parquet")
    recs = list(read_episodes(tmp_path / "old"))
    assert len(recs) == 2 and all(s.action_descriptions is None for r in recs for s in r.episode.steps)
    report = verify_dataset(read_episodes(tmp_path / "old"))
    assert report.ok and report.episodes == 2, [d.describe() for d in report.divergences]


def test_the_minari_export_keeps_the_descriptions_in_infos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import minari

    from multiverse.agents.export import to_minari

    _record(tmp_path / "ds")
    to_minari(read_episodes(tmp_path / "ds"), "multiverse/catch-described-v0", path=tmp_path / "minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    ep = next(iter(minari.load_dataset("multiverse/catch-described-v0").iterate_episodes()))
    described = [json.loads(x) for x in ep.infos["action_descriptions"]]
    assert described[0] == ["the paddle goes one column west", "the paddle holds", "the paddle goes one column east"]
    assert described[-1] == [] and len(described) == len(ep.infos["legal_actions"])
