"""Track relationships: the factor oracle and scenario generation against hand-computed results, the
crossfade renderer, TPP/LCP, the decision transformer's decoding, the codebook fit and the whole path
(codebook -> decision model -> evaluation rows -> CLI) on a tiny corpus the test writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stemlab.relations import metrics, oracle, render
from stemlab.relations.decision import DecisionSize, DecisionTransformer, decode, shifted, top_p_sample


# ---------------------------------------------------------------------------------------------- oracle
def test_factor_oracle_of_abbbaab_has_the_hand_computed_transitions_and_suffix_links():
    fo = oracle.FactorOracle("abbbaab")
    # forward transitions i -> i+1 on m[i], plus the external ones added while building (by hand):
    # b: 0->2; a: 3->5, 2->5; a: 1->6
    assert fo.transitions == [
        {"a": 1, "b": 2}, {"b": 2, "a": 6}, {"b": 3, "a": 5}, {"b": 4, "a": 5}, {"a": 5}, {"a": 6}, {"b": 7}, {},
    ]  # fmt: skip
    assert fo.suffix == [-1, 0, 0, 2, 3, 1, 1, 2]
    for factor in ("bba", "aab", "bbaa", "abbbaab", ""):
        assert fo.accepts(factor)
    assert not fo.accepts("aaa") and not fo.accepts("bbbb")


def test_prefix_lengths_are_the_common_prefixes_of_memory_and_scenario_suffixes():
    lengths = oracle.prefix_lengths("abbbaab", "bba")
    assert lengths[:, 0].tolist() == [0, 2, 3, 1, 0, 0, 1]  # "bba" from each memory position
    assert lengths[2, 0] == 3 and lengths[3, 1] == 2


def test_scenario_generation_follows_the_oracle_and_starts_new_phases_by_hand():
    fo = oracle.FactorOracle("abbbaab")
    # t0 'a': longest prefix "abb" at memory 0 -> 0,1,2; 'a' from state 3 jumps to 5 (memory 4), then 5, 6;
    # 'b' at the end (state 7, no transition): new phase "bb" first at memory 1 -> 1, 2; 'x' is nowhere:
    # silence; "ab": longest at memory 0 (ties with 5, earliest first) -> 0, 1
    assert oracle.generate(fo, "abbaabbbxab") == [0, 1, 2, 4, 5, 6, 1, 2, oracle.SILENCE, 0, 1]
    # ties drawn by a generator: the same seed gives the same choice
    a = oracle.generate(fo, "abab", np.random.default_rng(5))
    assert a == oracle.generate(fo, "abab", np.random.default_rng(5))
    assert all(fo.labels[i] == c for i, c in zip(a, "abab"))


def test_generation_from_an_empty_memory_is_silence():
    assert oracle.generate(oracle.FactorOracle(), "ab") == [oracle.SILENCE, oracle.SILENCE]


# ---------------------------------------------------------------------------------------------- render
def test_fades_sum_to_one_and_continuous_runs_copy_the_memory():
    fade_in, fade_out = render.fade_curves(64)
    np.testing.assert_allclose(fade_in + fade_out, 1.0, atol=1e-6)
    memory = np.arange(40, dtype=np.float32)[None, :]
    out = render.render(memory, [0, 1, 2, 3], segment=10, fade=0)
    np.testing.assert_array_equal(out, memory)
    assert render.runs([3, 4, oracle.SILENCE, 0, 1, 7]) == [(0, 3, 2), (3, 0, 2), (5, 7, 1)]


def test_a_jump_is_a_crossfade_on_the_grid_and_silence_is_silent():
    memory = np.concatenate([np.ones(20), 3 * np.ones(20)]).astype(np.float32)[None]
    out = render.render(memory, [0, 2, oracle.SILENCE], segment=10, fade=4)[0]
    assert out.shape == (30,)
    np.testing.assert_allclose(out[:10], 1.0)  # segment 0 as it is
    fade_in, fade_out = render.fade_curves(4)
    # at the boundary, segment 1's start (1.0) fades out while segment 2 (3.0) fades in
    np.testing.assert_allclose(out[10:14], 1.0 * fade_out + 3.0 * fade_in, atol=1e-6)
    np.testing.assert_allclose(out[14:20], 3.0)
    np.testing.assert_allclose(out[20:24], 3.0 * fade_out, atol=1e-6)  # segment 2 continues past into the silence
    np.testing.assert_allclose(out[24:], 0.0)


def test_fractional_segments_stay_on_the_sample_grid():
    memory = np.arange(100, dtype=np.float32)[None]
    out = render.render(memory, [0, 1, 2, 3], segment=2.5, fade=0)
    np.testing.assert_array_equal(out[0], np.arange(10))


# ---------------------------------------------------------------------------------------------- metrics
def test_tpp_and_lcp_by_hand():
    pad = 9
    target = np.array([1, 2, 3, 4, 5, pad])
    predicted = np.array([1, 2, 0, 4, 5, 1])
    assert metrics.tpp(predicted, target, pad) == pytest.approx(80.0)
    assert metrics.lcp_lengths(predicted, target, pad).tolist() == [2, 1, 0, 2, 1]
    assert metrics.lcp_mean(predicted, target, pad) == pytest.approx(1.2)
    assert np.isnan(metrics.tpp(predicted, np.full(6, pad), pad))


# ---------------------------------------------------------------------------------------------- decision
def _decision(k: int = 6, seed: int = 0) -> DecisionTransformer:
    torch.manual_seed(seed)
    size = DecisionSize(layers=1, d_model=16, heads=2, ffn=32, dropout=0.0, embedding="centroid")
    return DecisionTransformer(torch.randn(k, 5), size, max_len=8).eval()


def test_shifted_targets_end_after_the_last_real_symbol():
    model = _decision()
    target = torch.tensor([[1, 2, 3], [4, 5, model.pad]])
    inputs, labels = shifted(model, target)
    assert inputs.tolist() == [[model.start, 1, 2, 3], [model.start, 4, 5, model.pad]]
    assert labels.tolist() == [[1, 2, 3, model.end], [4, 5, model.end, model.pad]]


@pytest.mark.slow
def test_decoding_is_seeded_constrained_and_of_the_asked_length():
    model = _decision()
    guide = torch.tensor([[0, 1, 2, 3, 4, 5, 0, 1], [5, 4, 3, 2, 1, 0, 5, 4]])
    a = decode(model, guide, 8, 0.8, torch.Generator().manual_seed(3))
    b = decode(model, guide, 8, 0.8, torch.Generator().manual_seed(3))
    assert a.shape == (2, 8) and torch.equal(a, b) and int(a.max()) < model.k
    allowed = torch.zeros(2, model.k, dtype=torch.bool)
    allowed[:, [1, 4]] = True
    prefix = torch.tensor([[2, 2], [3, 3]])  # fixed symbols (a sliding window's overlap) are kept as they are
    c = decode(model, guide, 8, 1.0, torch.Generator().manual_seed(3), allowed, prefix)
    assert c[:, :2].tolist() == prefix.tolist() and set(c[:, 2:].flatten().tolist()) <= {1, 4}


def test_top_p_keeps_only_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    draws = {int(top_p_sample(logits, 0.8, torch.Generator().manual_seed(s))) for s in range(200)}
    assert draws == {0, 1}  # 0.5 + 0.3 reaches 0.8: the nucleus is the first two


# ---------------------------------------------------------------------------------------------- on the frame
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from stemlab.train.run import train_job
    from tests.relations_fixture import codebook_job, decision_job, write_corpus

    root = write_corpus(tmp_path_factory.mktemp("relations"))
    train_job(codebook_job(root), root / "codebook")
    train_job(decision_job(root, root / "codebook" / "final.pt"), root / "decision")
    return root


@pytest.mark.slow
def test_codebook_fit_is_deterministic_and_leaves_out_drums(trained, tmp_path):
    from stemlab.train.run import train_job
    from stemlab.train.task import read_final
    from tests.relations_fixture import codebook_job

    train_job(codebook_job(trained), tmp_path / "again")
    a, b = read_final(trained / "codebook" / "final.pt"), read_final(tmp_path / "again" / "final.pt")
    for key in ("centres", "tokens", "mean", "scale"):
        assert torch.equal(a["state_dict"][key], b["state_dict"][key])
    rows = a["export"]["rows"]
    assert "drums" not in rows["stem"] and a["export"]["n_segments"] == 8
    assert a["state_dict"]["tokens"].shape == (len(rows["stem"]), 8)
    assert int(a["state_dict"]["tokens"].max()) < 8


@pytest.mark.slow
def test_evaluation_rows_cover_every_system_and_test_pair_with_the_cell(trained, tmp_path):
    from stemlab.evaluate.run import evaluate_job
    from tests.relations_fixture import codebook_job, decision_job

    job = decision_job(trained, trained / "codebook" / "final.pt")
    rows = evaluate_job(job, trained / "decision", tmp_path)
    assert set(rows["system"]) == {"relations", "relations_constrained", "random", "random_constrained", "unigram", "copy_guide"}
    assert set(rows["metric"]) == {"tpp_mean", "tpp_median", "lcp_mean"}
    assert set(rows["k"]) == {8} and set(rows["segment_s"]) == {0.25}
    # 2 test songs x 5 windows x 3 melodic stems x 2 ordered partners
    assert rows["item"].nunique() == 2 * 5 * 6
    again = evaluate_job(job, trained / "decision", tmp_path / "again")
    assert rows["value"].tolist() == again["value"].tolist()
    tpp = rows[rows["metric"] == "tpp_mean"]
    assert tpp["value"].between(0, 100).all()
    codebook = evaluate_job(codebook_job(trained), trained / "codebook", tmp_path / "codebook")
    means = codebook.groupby("system")["value"].mean()
    assert means["kmeans"] < means["random_pick"]


@pytest.mark.slow
def test_cli_writes_audio_of_the_guides_length_rate_and_channels(trained, tmp_path):
    import soundfile as sf

    from stemlab.relations.__main__ import main

    t = np.arange(int(3.3 * 22_050)) / 22_050
    guide = (0.3 * np.sin(2 * np.pi * 220 * t) * np.exp(-((t % 0.25) * 6))).astype(np.float32)
    sf.write(tmp_path / "guide.wav", np.stack([guide, guide], 1), 22_050)
    t = np.arange(int(4.0 * 48_000)) / 48_000
    memory = (0.3 * np.sin(2 * np.pi * 330 * t * (1 + (t % 1 > 0.5))) * np.exp(-((t % 0.25) * 6))).astype(np.float32)
    sf.write(tmp_path / "memory.wav", memory, 48_000)
    args = ["generate", "--guide", str(tmp_path / "guide.wav"), "--memory", str(tmp_path / "memory.wav"),
            "--model", str(trained / "decision"), "--out", str(tmp_path / "out.wav")]  # fmt: skip
    assert main(args) == 0
    out, rate = sf.read(tmp_path / "out.wav", always_2d=True)
    assert rate == 22_050 and out.shape == (len(guide), 2) and np.abs(out).max() > 0.01
    assert main([*args[:-1], str(tmp_path / "again.wav")]) == 0
    np.testing.assert_array_equal(out, sf.read(tmp_path / "again.wav", always_2d=True)[0])


@pytest.mark.slow
def test_cli_errors_are_one_line(trained, tmp_path, capsys):
    from stemlab.errors import run_cli
    from stemlab.relations.__main__ import main

    code = run_cli(main, ["generate", "--guide", str(tmp_path / "missing.wav"), "--memory", "m.wav", "--model",
                          str(trained / "decision"), "--out", str(tmp_path / "o.wav")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error: ") and "missing.wav" in err and "\n" not in err


def test_baselines_draw_from_their_own_distributions():
    from stemlab.relations.task import baselines

    tokens = np.array([[0, 0, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]])
    guide = np.array([[3, 3, 1, 1], [0, 1, 2, 3]])
    allowed = np.zeros((2, 5), dtype=bool)
    allowed[0, [1, 4]] = True
    allowed[1, 2] = True
    out = baselines(tokens, np.array([[0, 1], [1, 0]]), guide, allowed, 5, np.random.default_rng(0))
    assert set(out["random_constrained"][0]) <= {1, 4} and set(out["random_constrained"][1]) == {2}
    assert set(out["unigram"].flatten()) <= {0, 1, 2}  # the training targets' symbols only
    np.testing.assert_array_equal(out["copy_guide"], guide)
    assert out["random"].min() >= 0 and out["random"].max() < 5


def test_centred_tracks_keep_only_what_changes_within_each_track():
    from stemlab.relations.codebook_task import center

    feats = np.array([[[1.0, 10.0], [3.0, 10.0]], [[5.0, -2.0], [5.0, 2.0]]], dtype=np.float32)
    np.testing.assert_allclose(center(feats), [[[-1.0, 0.0], [1.0, 0.0]], [[0.0, -2.0], [0.0, 2.0]]])


@pytest.mark.slow
def test_examples_render_test_pairs_of_each_cell(trained, tmp_path):
    import soundfile as sf

    from stemlab.relations.examples import write_examples

    table = write_examples([trained / "decision"], [trained / "codebook" / "final.pt"], trained / "stems", 2, tmp_path / "ex")
    assert len(table) == 2 and set(table["cell"]) == {"k~8/segment_s~0.25"}
    folder = tmp_path / "ex" / "k~8/segment_s~0.25" / table["example"].iloc[0]
    lengths = {p.stem: sf.info(folder / f"{p.stem}.flac").frames for p in folder.glob("*.flac")}
    assert set(lengths) == {"guide", "target", "generated", "mix"} and len(set(lengths.values())) == 1
    assert (tmp_path / "ex" / "examples.csv").is_file()


@pytest.mark.slow
def test_figure_writes_pdf_and_png_from_the_item_rows(tmp_path):
    import pandas as pd

    from stemlab.relations.figure import main

    rows = [{"model": "relations", "seed": 1, "k": k, "segment_s": 0.5, "system": system, "metric": metric,
             "value": float(v), "item": f"p{v}"}
            for k in (16, 64) for system in ("relations", "random") for metric in ("tpp_mean", "lcp_mean") for v in range(5)]  # fmt: skip
    pd.DataFrame(rows).to_parquet(tmp_path / "items.parquet")
    assert main(["--items", str(tmp_path / "items.parquet"), "--out", str(tmp_path / "f.pdf")]) == 0
    assert (tmp_path / "f.pdf").stat().st_size > 1000 and (tmp_path / "f.png").stat().st_size > 1000
