"""The paper stage: the benchmark's meets_target rule, the number macros, the paper's figures, the rule
graph's determinism and the paper's compilation, on small tables the tests write."""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest
import yaml

from stemlab.errors import StemlabError
from stemlab.paper import benchmark, compile as compile_paper, numbers, rulegraph
from stemlab.paper.tables import camel, fmt, load_targets, macro_base, read_table

COLUMNS = "model,system,metric,n,mean,ci95_low,ci95_high,n_seeds,n_items,median,seed_sd,better"


def write_model_table(path, model, rows, keys=()):
    """rows: (system, metric, mean, low, high, better[, key values...])."""
    head = COLUMNS.split(",")
    head = head[:7] + list(keys) + head[7:]
    lines = [",".join(head)]
    for system, metric, mean, low, high, better, *cell in rows:
        lines.append(",".join(str(v) for v in [model, system, metric, 10, mean, low, high, *cell, 2, 5, mean, 0, better]))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def tables(tmp_path):
    m = write_model_table(tmp_path / "mymodel.csv", "mymodel", [
        ("mine", "acc", 0.8, 0.7, 0.9, "higher"),
        ("chance", "acc", 0.5, 0.5, 0.5, "higher"),
        ("mine", "err", 1.0, 0.8, 1.3, "lower"),    # CI reaches above the baseline mean: not met
        ("base", "err", 1.2, 1.1, 1.3, "lower"),
        ("base", "acc", 0.85, 0.8, 0.9, "higher"),
        ("mine", "snr", 3.0, 1.0, 5.0, "higher"),
    ])  # fmt: skip
    g = write_model_table(tmp_path / "gridded.csv", "gridded", [
        ("mine", "tpp", 10.0, 8.0, 12.0, "higher", 4),
        ("random", "tpp", 6.0, 5.0, 7.0, "higher", 4),
        ("mine", "tpp", 5.0, 3.0, 7.0, "higher", 16),
        ("random", "tpp", 6.0, 5.0, 7.0, "higher", 16),
    ], keys=("k",))  # fmt: skip
    v = tmp_path / "synth_validity.csv"
    v.write_text("group,n_songs,beat_f,bass_note_accuracy\ngenre=rock,2,0.99,1.0\noverall,3,0.94,0.95\n")
    t = tmp_path / "targets.yaml"
    t.write_text(yaml.safe_dump({
        "mymodel": [
            {"system": "mine", "metric": "acc", "beats": "chance"},
            {"system": "mine", "metric": "acc", "beats": "base"},
            {"system": "mine", "metric": "err", "beats": "base"},
            {"system": "mine", "metric": "snr", "at_least": 0.5},
            {"system": "mine", "metric": "snr", "at_most": 4.0},
            {"system": "mine", "metric": "absent", "beats": "chance"},
        ],
        "gridded": [{"system": "mine", "metric": "tpp", "beats": "random"}],
        "synth_validity": [
            {"system": "overall", "metric": "beat_f", "at_least": 0.95},
            {"system": "overall", "metric": "bass_note_accuracy", "at_least": 0.9},
        ],
    }))  # fmt: skip
    return {"model": m, "grid": g, "validity": v, "targets": t}


def test_meets_target_follows_the_ci_rule(tables):
    targets = load_targets(tables["targets"])
    out = benchmark.benchmark([read_table(tables[k]) for k in ("validity", "model", "grid")], targets,
                              {"mymodel": "synthetic (test)"})  # fmt: skip
    rows = benchmark.target_rows(out)
    got = {(r.model, r.metric, r.cell, r.target): r.meets_target for r in rows.itertuples()}
    assert got == {
        ("synth_validity", "beat_f", "", ">= 0.95"): "no",  # no CI: the value itself, 0.94 < 0.95
        ("synth_validity", "bass_note_accuracy", "", ">= 0.9"): "yes",
        ("mymodel", "acc", "", "beats chance"): "yes",  # low 0.7 > 0.5
        ("mymodel", "acc", "", "beats base"): "no",  # low 0.7 < base mean 0.85
        ("mymodel", "err", "", "beats base"): "no",  # lower is better: high 1.3 > base mean 1.2
        ("mymodel", "snr", "", ">= 0.5"): "yes",
        ("mymodel", "snr", "", "<= 4"): "no",  # high 5.0 > 4
        ("gridded", "tpp", "k=4", "beats random"): "yes",  # matched on its own cell
        ("gridded", "tpp", "k=16", "beats random"): "no",
    }
    # every row of every table is there (a row with two targets once per target), with its corpus
    # validity: 2 groups x 3 numeric columns; model: 6 rows, acc and snr twice (two targets each); grid: 4
    assert len(out) == 6 + 8 + 4
    assert set(out.loc[out["model"] == "mymodel", "corpus"]) == {"synthetic (test)"}
    assert (rows["reference_mean"].loc[rows["target"] == "beats chance"] == 0.5).all()


def test_benchmark_cli_writes_csv_and_tex(tables, tmp_path):
    out, tex = tmp_path / "b.csv", tmp_path / "b.tex"
    rc = benchmark.main(["--tables", str(tables["model"]), str(tables["grid"]), "--targets", str(tables["targets"]),
                         "--corpora", '{"gridded": "moisesdb (test)"}', "--out", str(out), "--tex", str(tex)])  # fmt: skip
    assert rc == 0
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns) == list(benchmark.COLUMNS)
    text = tex.read_text()
    assert r"\begin{tabular}" in text and r"\bottomrule" in text
    assert text.count(r"\\") - 1 == (table["target"] != "").sum()  # one line per target row, plus the header
    assert r"tpp (k=16) & moisesdb (test)" in text and r"\textbf{no}" in text


def test_a_target_can_ask_for_a_multiple_of_the_baseline_and_one_cell(tables, tmp_path):
    t = tmp_path / "times.yaml"
    t.write_text(yaml.safe_dump({
        "mymodel": [{"system": "mine", "metric": "acc", "beats": "chance", "times": 1.2},   # low 0.7 > 0.6
                    {"system": "mine", "metric": "acc", "beats": "chance", "times": 1.5},   # low 0.7 < 0.75
                    {"system": "mine", "metric": "err", "beats": "base", "times": 1.2}],   # lower: high 1.3 < 1.44
        "gridded": [{"system": "mine", "metric": "tpp", "beats": "random", "times": 1.5, "cell": "k=4"}],  # 8 < 9
    }))  # fmt: skip
    targets = load_targets(t)
    out = benchmark.benchmark([read_table(tables[k]) for k in ("model", "grid")], targets, {})
    got = {(r.metric, r.cell, r.target, round(r.reference_mean, 6)): r.meets_target for r in benchmark.target_rows(out).itertuples()}
    assert got == {
        ("acc", "", "beats 1.2x chance", 0.6): "yes",
        ("acc", "", "beats 1.5x chance", 0.75): "no",
        ("err", "", "beats 1.2x base", 1.44): "yes",
        ("tpp", "k=4", "beats 1.5x random", 9.0): "no",  # the k=16 cell is not a target row
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text("mymodel:\n  - {system: mine, metric: acc, at_least: 0.1, times: 2}\n")
    with pytest.raises(StemlabError, match="times must be a positive number"):
        load_targets(bad)


def test_bad_targets_are_one_line_errors(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("mymodel:\n  - {system: mine, metric: acc, beats: chance, at_least: 0.1}\n")
    with pytest.raises(StemlabError, match="exactly one of"):
        load_targets(bad)
    with pytest.raises(StemlabError, match="not found"):
        read_table(tmp_path / "missing.csv")


def test_macro_names_are_letters_only_and_values_come_from_the_table(tables, tmp_path):
    out = tmp_path / "mymodel.tex"
    assert numbers.main(["table", "--table", str(tables["model"]), "--targets", str(tables["targets"]), "--out", str(out)]) == 0
    text = out.read_text()
    macros = dict(re.findall(r"^\\newcommand\{\\([^}]*)\}\{(.*)\}$", text, re.M))
    assert macros and all(re.fullmatch(r"[A-Za-z]+", name) for name in macros)
    assert len(macros) == text.count(r"\newcommand")
    assert macros["slMymodelMineAcc"] == r"\ensuremath{0.800}"
    assert macros["slMymodelMineAccCI"] == r"\ensuremath{0.800} [\ensuremath{0.700}, \ensuremath{0.900}]"
    assert macros["slMymodelMineAccMeets"] == "yes" and macros["slMymodelMineAccMeetsTwo"] == "no"
    assert macros["slMymodelMineAccRefName"] == "chance" and macros["slMymodelMineAccRefTwo"] == r"\ensuremath{0.850}"
    assert macros["slMymodelTargetsMet"] == "2 of 5"  # the absent metric is not counted and macros["slMymodelSeeds"] == "2"
    grid = tmp_path / "gridded.tex"
    numbers.main(["table", "--table", str(tables["grid"]), "--targets", str(tables["targets"]), "--out", str(grid)])
    assert r"\newcommand{\slGriddedMineTppKOneSix}{\ensuremath{5}}" in grid.read_text()


def test_macro_name_pieces():
    assert camel("t2a_r10") == "TTwoAROneZero"
    assert camel("segment_s=0.5") == "SegmentSZeroPointFive"
    assert camel("hip-hop") == "HipMinusHop"
    assert macro_base("fx_encoder", "af_features", "probe_r2_pan") == "slFxEncoderAfFeaturesProbeRTwoPan"
    assert fmt(-5.80211) == r"\ensuremath{-5.80}"
    assert fmt(40.0) == r"\ensuremath{40}" and fmt(1234.5) == r"\ensuremath{1{,}234}"
    assert fmt(0.0000123) == r"\ensuremath{1.2\times 10^{-5}}" and fmt(float("nan")) == "n/a"


def test_two_rows_with_one_macro_name_are_refused(tmp_path):
    t = write_model_table(tmp_path / "m.csv", "m", [("a_b", "c", 1, 0, 2, "higher"), ("a", "b_c", 1, 0, 2, "higher")])
    with pytest.raises(StemlabError, match="two numbers map"):
        numbers.table_macros(read_table(t), [])


def test_numbers_index_inputs_every_table(tmp_path):
    out = tmp_path / "numbers.tex"
    numbers.main(["index", "--names", "clap", "synth_validity", "--out", str(out)])
    text = out.read_text()
    assert r"\input{numbers/clap.tex}" in text and r"\input{numbers/synth_validity.tex}" in text
    assert r"\newcommand{\val}" in text
    with pytest.raises(StemlabError):
        numbers.main(["index", "--names", "../x", "--out", str(out)])


@pytest.mark.slow
def test_paper_figures_draw_from_tables(tables, tmp_path):
    from stemlab.paper import clap_figure, fx_probe_figure, training_figure, validity_figure

    clap = write_model_table(tmp_path / "clap.csv", "clap", [
        ("clap", "a2t_r10", 0.3, 0.2, 0.4, "higher"), ("chance", "a2t_r10", 0.1, 0.1, 0.1, "higher"),
        ("clap", "t2a_median_rank", 4, 4, 4, "lower"), ("clap", "zeroshot_genre_acc", 0.2, 0.1, 0.3, "higher"),
    ])  # fmt: skip
    clap_figure.main(["--table", str(clap), "--out", str(tmp_path / "clap.pdf")])
    fx = write_model_table(tmp_path / "fx_encoder.csv", "fx_encoder", [
        ("fx_encoder", "probe_r2_pan", 0.9, 0.8, 1.0, "higher"), ("chance", "probe_r2_pan", 0.0, -0.2, 0.2, "higher"),
        ("fx_encoder", "triplet_acc", 0.7, 0.6, 0.8, "higher"),
    ])  # fmt: skip
    fx_probe_figure.main(["--table", str(fx), "--out", str(tmp_path / "fx.pdf")])
    songs = tmp_path / "songs.csv"
    songs.write_text("song_id,genre,time_signature,beat_f\ns1,rock,4/4,0.99\ns2,rock,3/4,0.9\n")
    validity = tmp_path / "synth_validity.csv"
    validity.write_text("group,n_songs,beat_f,bass_note_accuracy,melody_note_accuracy\ngenre=rock,2,0.95,1.0,0.9\n"
                        "time_signature=3/4,1,0.9,,\ntime_signature=4/4,1,0.99,,\n")  # fmt: skip
    validity_figure.main(["--table", str(validity), "--songs", str(songs), "--targets", str(tables["targets"]),
                          "--out", str(tmp_path / "validity.pdf")])  # fmt: skip
    logs = []
    for key, seed, steps in (("a", 1, 30), ("a", 2, 30), ("b/k~4", 1, 1)):
        path = tmp_path / "results" / "models" / key / f"seed-{seed}" / "train_log.csv"
        path.parent.mkdir(parents=True)
        rows = [f"{s},train,{1 / s}" for s in range(1, steps + 1)] + ([f"{steps},valid,0.5"] if steps > 1 else [])
        path.write_text("step,split,loss\n" + "\n".join(rows) + "\n")
        logs.append(str(path))
    training_figure.main(["--logs", *logs, "--out", str(tmp_path / "training.pdf")])
    assert training_figure.run_of(logs[2]) == ("b/k=4", 1)
    for name in ("clap", "fx", "validity", "training"):
        assert (tmp_path / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    first = (tmp_path / "training.pdf").read_bytes()
    training_figure.main(["--logs", *logs, "--out", str(tmp_path / "training.pdf")])
    assert (tmp_path / "training.pdf").read_bytes() == first  # same tables, same bytes


def test_rulegraph_colours_by_name_and_drops_the_creation_date(tmp_path):
    dot = 'digraph g {\n\t0[label = "all", color = "0.33 0.6 0.85", style="rounded"];\n}\n'
    assert rulegraph.normalise(dot) == rulegraph.normalise(dot.replace("0.33", "0.66"))
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(b"%PDF-1.5\n<< /CreationDate (D:20261201185041Z) >>\n")
    rulegraph.fix_creation_date(pdf)
    assert pdf.read_bytes() == b"%PDF-1.5\n<< /CreationDate (D:19700101000000Z) >>\n"


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="TeX is not installed (make run installs it)")
def test_paper_compiles_deterministically(tmp_path):
    tex = tmp_path / "main.tex"
    tex.write_text("\\documentclass{article}\\pdfinfoomitdate=1\\pdftrailerid{}\\usepackage{graphicx}\n"
                   "\\input{numbers.tex}\\begin{document}Value \\val{XA}, missing \\val{XB}.\\input{benchmark.tex}"
                   "\\end{document}\n")  # fmt: skip
    (tmp_path / "n").mkdir()
    (tmp_path / "n" / "x.tex").write_text("\\newcommand{\\slXA}{\\ensuremath{0.5}}\n")
    numbers.main(["index", "--names", "x", "--out", str(tmp_path / "numbers.tex")])
    (tmp_path / "b.tex").write_text("table\n")
    args = ["--tex", str(tex), "--index", str(tmp_path / "numbers.tex"), "--numbers", str(tmp_path / "n" / "x.tex"),
            "--benchmark", str(tmp_path / "b.tex")]  # fmt: skip
    assert compile_paper.main([*args, "--out", str(tmp_path / "a.pdf")]) == 0
    assert compile_paper.main([*args, "--out", str(tmp_path / "b.pdf")]) == 0
    assert (tmp_path / "a.pdf").read_bytes()[:5] == b"%PDF-"
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
    tex.write_text("\\documentclass{article}\\begin{document}\\undefinedmacro\\end{document}\n")
    with pytest.raises(StemlabError, match="latexmk failed"):
        compile_paper.main([*args, "--out", str(tmp_path / "c.pdf")])
    assert not (tmp_path / "c.pdf").exists()
