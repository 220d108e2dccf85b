import json

import pytest

from gspo_repro.cli import main


def test_probe_reports_volatility_and_clip_fractions(capsys):
    assert main(["probe", "--seed", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"expert_volatility", "grpo_clip_frac", "gspo_clip_frac",
                        "gspo_token_clip_frac", "grpo_routing_replay_clip_frac"}
    assert all(0.0 <= v <= 1.0 for v in out.values())
    # with sequence-constant advantages GSPO-token clips exactly what GSPO clips
    assert out["gspo_token_clip_frac"] == out["gspo_clip_frac"]


def test_unknown_verb_fails():
    with pytest.raises(SystemExit):
        main(["no-such-verb"])
