"""Documented figures come from result files (issue 27): the campaign page and README's campaign block are exactly what
the generator renders from `benchmarks/results/campaign/*.json`, and every figure in a hand-written paragraph of the
README or the docs that cites a result file is a value of that file. Needs no `../shared` and no models."""

import copy
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import campaign_tables as tables  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
#: pages written by generators (checked against their generator, not here)
GENERATED = {"results.md", "campaign.md"}
NUMBER = re.compile(r"(?<![\w.])(\d+\.\d{2,})(\s*%|×)?")


def test_the_campaign_page_and_the_readme_block_are_what_the_files_give():
    doc, block = tables.render(tables.load())
    assert tables.DOC.read_text() == doc + "\n", "docs/campaign.md differs from its files: python benchmarks/campaign.py report"
    assert block in tables.README.read_text(), "README's campaign block differs from its files: python benchmarks/campaign.py report"


def _result(name, seed, bits, role="kd"):
    return {"name": name, "seed": seed, "row": "minilm", "role": role, "title": name, "target": {"retention": 0.982,
            "paired_gain": 0.015}, "dev": {"rows": len(bits), "value": bits.count("1") / len(bits), "correct": bits},
            "cpu_seconds": 3600.0, "command": f"python benchmarks/campaign.py run {name}", "git_commit": "0" * 40,
            "machine": {"threads": 2}}


def test_the_generator_compares_unrounded_and_a_changed_file_changes_the_page():
    teacher = {"title": "t", "dev": {"rows": 1000, "correct": "1" * 1000}}
    kd = _result("minilm-kd", 42, "1" * 982 + "0" * 18)
    data = {"teacher": teacher, "teachers": {"sst2": teacher}, "runs": {"minilm-kd": {42: kd}, "minilm-gold": {42: _result("minilm-gold", 42, "1" * 900 + "0" * 100, "gold")}},
            "timing": None}
    row = tables.summarize(data)[0]
    assert row["retention"] == pytest.approx(0.982) and row["met"]["retention"]
    assert row["gain"] == pytest.approx(0.082) and row["gain_interval"][0] > 0 and row["met"]["paired_gain"]
    below = copy.deepcopy(data)
    below["runs"]["minilm-kd"][42]["dev"]["correct"] = "1" * 981 + "0" * 19  # 98.1 %: missed
    assert not tables.summarize(below)[0]["met"]["retention"]
    assert tables.render(below)[0] != tables.render(data)[0]
    doc = tables.render(data)[0]
    assert "98.20 %" in doc and "99.0 %" not in doc and "not timed" in doc


def _numbers(obj, out):
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        out.append(float(obj))
    elif isinstance(obj, dict):
        for v in obj.values():
            _numbers(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _numbers(v, out)
    elif isinstance(obj, str):
        out.extend(float(m) for m in re.findall(r"-?\d+\.\d+", obj))


def _mismatches(text: str, names: set[str]) -> list[str]:
    """Figures (two or more decimals; % and × read as such) of each paragraph that cites a result file and that no
    value of the cited files gives at that precision."""
    bad = []
    for para in re.split(r"\n\s*\n", text):
        cited = {n for n in names if re.search(rf"\b{re.escape(n)}\b", para)}
        if not cited:
            continue
        values = []
        for n in cited:
            _numbers(json.loads((RESULTS / f"{n}.json").read_text()), values)
        for m in NUMBER.finditer(para):
            figure, unit = float(m.group(1)), (m.group(2) or "").strip()
            digits = len(m.group(1).split(".")[1])
            if not any(abs((100 * v if unit == "%" else v) - figure) <= 0.5 * 10 ** -digits + 1e-12 for v in values):
                bad.append(f"{m.group(0)} (cites {', '.join(sorted(cited))})")
    return bad


def test_every_figure_next_to_a_cited_result_file_is_in_that_file():
    names = {p.stem for p in RESULTS.glob("*.json")}
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    bad = [f"{p.relative_to(ROOT)}: {b}" for p in pages if p.name not in GENERATED and "reference" not in p.parts
           for b in _mismatches(p.read_text(), names)]
    assert not bad, "figures no cited result file holds (drift):\n" + "\n".join(bad)


def test_the_figure_check_catches_a_drifted_figure():
    names = {p.stem for p in RESULTS.glob("*.json")}
    assert _mismatches("measured: 0.8796 vs the teacher's 0.8922, `sst2_l3_kd_holdout`", names) == []
    assert _mismatches("measured: 0.8797 vs the teacher's 0.8922, `sst2_l3_kd_holdout`", names)
    assert _mismatches("a re-run gave 4.81× (`sst2_l3_kd_holdout`)", names)


def test_the_int8_row_takes_the_most_accurate_student_among_the_fast_enough():
    teacher = {"title": "t", "dev": {"rows": 10, "correct": "1111111110"}}
    rows = {"teacher": {"dev_accuracy": 0.9, "correct": "1111111110", "speedup_over_teacher_int8": 1.0},
            "fast": {"dev_accuracy": 0.8, "correct": "1111111100", "speedup_over_teacher_int8": 4.5},
            "faster": {"dev_accuracy": 0.7, "correct": "1111111000", "speedup_over_teacher_int8": 9.0},
            "slow": {"dev_accuracy": 1.0, "correct": "1111111111", "speedup_over_teacher_int8": 3.9}}
    row = tables.int8_summary({"teacher": teacher, "runs": {}, "timing": {"int8": rows}})
    assert row["chosen"] == "fast" and row["retention"] == pytest.approx(0.8 / 0.9) and not row["met"]  # 88.9 % < 97 %
    rows.pop("fast"), rows.pop("faster")
    assert tables.int8_summary({"teacher": teacher, "runs": {}, "timing": {"int8": rows}})["chosen"] is None


def test_an_entity_f1_row_is_made_from_per_sentence_counts():
    """A token-classification row: dev values are per-sentence (tp, predicted, gold) counts; the metric is the F1 of
    their sums, intervals resample sentences, and no McNemar test is claimed."""
    def res(name, role, counts):
        return {**_result(name, 42, "1", role), "task": "conll2003",
                "dev": {"rows": len(counts), "value": 0.0, "metric": "f1", "counts": counts}}

    teacher = {"title": "t", "task": "conll2003", "dev": {"rows": 4, "metric": "f1",
                                                          "counts": [[2, 2, 2], [1, 1, 1], [1, 2, 1], [0, 0, 1]]}}
    kd = res("minilm-kd", "kd", [[2, 2, 2], [1, 1, 1], [0, 1, 1], [0, 0, 1]])
    gold = res("minilm-gold", "gold", [[1, 2, 2], [0, 1, 1], [0, 1, 1], [0, 0, 1]])
    data = {"teacher": None, "teachers": {"conll2003": teacher}, "runs": {"minilm-kd": {42: kd},
                                                                          "minilm-gold": {42: gold}}, "timing": None}
    row = tables.summarize(data)[0]
    assert row["teacher_accuracy"] == pytest.approx(2 * 4 / (5 + 5)) and row["accuracy"] == pytest.approx(2 * 3 / (4 + 5))
    assert row["retention"] == pytest.approx((6 / 9) / 0.8) and row["mcnemar_p"] == {}
    assert row["gain"] == pytest.approx(6 / 9 - 2 * 1 / (4 + 5))


def test_each_task_gets_its_own_table_against_its_own_teacher():
    """SST-2 and CoNLL-2003 rows are never mixed in one table: each task has a heading naming its split and metric,
    and the non-SST-2 teacher is stated with its file."""
    teacher = {"title": "t", "dev": {"rows": 1000, "correct": "1" * 1000}}
    counts = [[2, 2, 2], [1, 1, 1], [1, 2, 1], [0, 0, 1]]
    ner_teacher = {**_result("conll-teacher", 42, "1", "teacher"), "task": "conll2003", "title": "NER teacher",
                   "dev": {"rows": 4, "metric": "f1", "counts": counts}}
    ner_kd = {**_result("conll-l6-kd", 42, "1"), "task": "conll2003", "title": "NER student",
              "dev": {"rows": 4, "metric": "f1", "value": 0.0, "counts": counts[:3] + [[0, 1, 1]]}}
    data = {"teacher": teacher, "teachers": {"sst2": teacher, "conll2003": ner_teacher},
            "runs": {"minilm-kd": {42: _result("minilm-kd", 42, "1" * 990 + "0" * 10)}, "conll-l6-kd": {42: ner_kd}},
            "timing": None}
    doc, block = tables.render(data)
    assert "### SST-2 (dev accuracy)" in doc and "### CoNLL-2003 (test entity F1)" in doc
    sst2_part, ner_part = doc.split("### CoNLL-2003")
    assert "| minilm-kd |" in sst2_part and "| minilm-kd |" not in ner_part
    assert "| NER student |" in ner_part and "NER student" not in sst2_part
    assert "NER teacher, test entity F1 **80.00 %**" in doc and "`conll-teacher-s42.json`" in doc
    assert "### CoNLL-2003 (test entity F1)" in block


def test_the_new_machine_section_says_how_long_and_whether_it_reproduced(tmp_path):
    assert "Not measured yet" in "\n".join(tables.recreation(tmp_path))
    record = {"experiment": "bilstm-kd", "seed": 42, "machine": {"threads": 1}, "invocations": 2,
              "setup_seconds": 180.0, "wall_seconds_with_setup": 3 * 3600.0, "re_created": {"teacher": 7200.0},
              "run_wall_seconds": 3000.0, "dev_value": 0.8807, "committed_dev_value": 0.8807,
              "same_dev_predictions": False, "teacher_dev_value": 0.93, "committed_teacher_dev_value": 0.93}
    (tmp_path / "campaign_recreate_bilstm-kd.json").write_text(json.dumps(record))
    text = "\n".join(tables.recreation(tmp_path))
    assert "**3.00 h**" in text and "2 invocation(s)" in text and "teacher 2.00 h" in text
    assert "predictions that differ from the committed run" in text and "Not measured yet" not in text
    assert "Machine load not recorded." in text
    record["load_average_1min"] = [{"start": 2.04, "end": 1.97}, {"start": 1.1}]
    (tmp_path / "campaign_recreate_bilstm-kd.json").write_text(json.dumps(record))
    text = "\n".join(tables.recreation(tmp_path))
    assert "start and end): 2.0, 2.0, 1.1 — other jobs shared the machine." in text
    record["load_average_1min"] = [{"start": 1.2, "end": 1.3}]
    (tmp_path / "campaign_recreate_bilstm-kd.json").write_text(json.dumps(record))
    assert "no other job to speak of" in "\n".join(tables.recreation(tmp_path))


def test_a_projection_says_flat_when_one_doubling_s_rate_would_need_more_than_32_times_the_steps():
    """A miss with a nearly flat learning curve is not projected as "about 22 more doublings (≈ 3,679,927× the steps)"
    but said to be out of reach of more steps; a steep curve still gets its number of doublings."""
    s = {"row": "squad-l3", "task": "squad", "met": {"retention": False}, "target": {"retention": 0.97},
         "teacher_accuracy": 0.70, "accuracy": 0.60, "retention": 0.60 / 0.70, "cpu_hours": 0.76,
         "curve": [{"points": [[100, 0.50], [200, 0.560], [400, 0.563]]}]}
    flat = tables.projection(s)
    assert "more than 5 doublings away" in flat and "not projected to reach" in flat and "twin not run yet" in flat
    s["curve"] = [{"points": [[100, 0.50], [200, 0.54], [400, 0.58]]}]  # +4 pt per doubling: 7.9 pt short -> ~2.0
    steep = tables.projection(s)
    assert "about 2.0 more doublings" in steep
    s["gain"] = 0.01
    assert "(KD run and twin)" in tables.projection(s)


def test_a_row_with_more_kd_seeds_than_twins_says_which_seeds_the_gain_covers():
    teacher = {"title": "t", "dev": {"rows": 4, "correct": "1110"}}
    runs = {"minilm-kd": {42: _result("minilm-kd", 42, "1100", "kd"), 43: _result("minilm-kd", 43, "1110", "kd")},
            "minilm-gold": {42: _result("minilm-gold", 42, "1000", "gold")}}
    rows = tables.summarize({"teacher": teacher, "teachers": {"sst2": teacher}, "runs": runs, "timing": None})
    line = [r for r in tables._table(rows) if "minilm" in r or "| 2 |" in r][-1]
    assert "25.00 % (seed 42)" in line and "+25.00 pt" in line and line.count("(seed 42)") == 2


def test_each_seed_says_whether_the_twin_started_from_the_kd_students_weights():
    teacher = {"title": "t", "dev": {"rows": 4, "correct": "1110"}}
    kd42, kd43 = _result("minilm-kd", 42, "1100"), _result("minilm-kd", 43, "1110")
    g42, g43 = _result("minilm-gold", 42, "1000", "gold"), _result("minilm-gold", 43, "1100", "gold")
    kd42["student_init_sha256"], g42["student_init_sha256"] = "a" * 64, "a" * 64
    kd43["student_init_sha256"], g43["student_init_sha256"] = "a" * 64, "b" * 64
    g43["invocation_commits"] = ["1" * 40, "2" * 40]
    data = {"teacher": teacher, "teachers": {"sst2": teacher}, "timing": None,
            "runs": {"minilm-kd": {42: kd42, 43: kd43}, "minilm-gold": {42: g42, 43: g43}}}
    assert tables.summarize(data)[0]["same_init"] == {42: True, 43: False}
    doc = tables.render(data)[0]
    assert "| minilm | 42 |" in doc and "yes (weights hash) |" in doc and "the weights differed" in doc
    assert "*not recorded*:" not in doc and "commits 111111111111, 222222222222 (resumed across them)" in doc
    del g42["student_init_sha256"]
    assert tables.summarize(data)[0]["same_init"][42] is None and "*not recorded*:" in tables.render(data)[0]
