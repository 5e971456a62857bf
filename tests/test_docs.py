"""The documentation: the mkdocs site builds strictly, the README's Python example runs, the README stays short, and
the generated pages (CLI reference, results) say what the command line and the result files say."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
ISSUE_NUMBER = re.compile(r"\bissues?\s*#?\s*\d+", re.IGNORECASE)
#: A Markdown table row that starts with an option (``| `--temperature` | ...``): a hand-kept option list.
OPTION_ROW = re.compile(r"^\|\s*`-")


def _hooks():
    """``docs/hooks.py`` (the generators behind the CLI reference and the results page) as a module."""
    spec = importlib.util.spec_from_file_location("kdistill_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _hand_written_pages() -> list[Path]:
    hooks = _hooks()
    generated = {hooks.CLI_PAGE, hooks.RESULTS_PAGE}
    return [p for p in sorted(DOCS.rglob("*.md")) if p not in generated]


def _commands():
    """``{name: click command}`` of the kdistill app, hidden commands included."""
    import typer

    from kdistill.cli import app

    return dict(typer.main.get_command(app).commands)


# ------------------------------------------------------------------------------------------------ (a) the site

def test_mkdocs_build_strict(tmp_path):
    missing = [m for m in ("mkdocs", "material") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not importable: pip install -e '.[dev]' (mkdocs-material) to build the docs")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(site)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for page in ("index.html", "concepts/index.html", "data/index.html", "reference/cli/index.html",
                 "results/index.html", "methods/tinybert/index.html"):
        assert (site / page).is_file(), page
    assert (site / "benchmarks" / "results" / "sst2_l3_kd_holdout.json").is_file()  # the results page's links
    hooks = _hooks()  # the build wrote the generated pages from the app and the result files, not a stale copy
    assert hooks.CLI_PAGE.read_text(encoding="utf-8") == hooks.cli_reference()
    assert hooks.RESULTS_PAGE.read_text(encoding="utf-8") == hooks.results_page()


# ------------------------------------------------------------------------------------------------ (b) README example

def _readme_python() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "the README has no Python example"
    return blocks[0]


def test_readme_python_example_runs(tmp_path, glue_dir, tiny_tokenizer, monkeypatch):
    """The README's Python lines, run as written with two substitutions: its teacher and data paths become a tiny
    random 6-layer BERT (so layers 0,2,5 exist) and the real SST-2 beside the repository, its ``runs/`` a temporary
    folder; each API call gets small-data keywords (64 train rows, 32 dev rows) so it runs in seconds."""
    import kdistill.api as api
    from conftest import make_tiny_bert

    teacher = tmp_path / "teacher"
    make_tiny_bert(layers=6).save_pretrained(teacher)
    tiny_tokenizer.save_pretrained(teacher)
    code = _readme_python()
    assert len(code.strip().splitlines()) <= 10, "the README promises ten lines"
    for literal, value in (("../shared/teachers/minilm-l6-sst2", teacher), ("../shared/data/glue", glue_dir)):
        assert f'"{literal}"' in code
        code = code.replace(f'"{literal}"', repr(str(value)))
    assert '"runs/' in code
    code = code.replace('"runs/', '"' + (tmp_path / "runs").as_posix() + "/")

    def small(fn, **extra):
        def call(*args, **kwargs):
            return fn(*args, **{**kwargs, **extra})
        return call

    data = {"max_eval_samples": 32}
    monkeypatch.setattr(api, "distill", small(api.distill, **data, max_train_samples=64, batch_size=16,
                                              show_progress=False, latency_runs=3))
    monkeypatch.setattr(api, "evaluate", small(api.evaluate, **data))
    # an untrained 32-wide model's predictions sit at the decision boundary: int8 may flip a few of 32 rows
    monkeypatch.setattr(api, "export", small(api.export, **data, max_drop=100.0))
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})

    run = tmp_path / "runs" / "sst2-l3-api"
    report = json.loads((run / "report.json").read_text())
    assert {"retention", "speedup", "teacher_metric", "student_metric"} <= set(report)
    assert json.loads((run / "config.json").read_text())["num_hidden_layers"] == 3  # layers 0, 2, 5 of 6
    assert (run.parent / "sst2-l3-api-onnx" / "model_quantized.onnx").is_file()
    assert (run.parent / "sst2-l3-api-onnx" / "predict.py").is_file()


# ------------------------------------------------------------------------------------------------ (c) README

def test_readme_is_short_and_links_work():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 160
    assert not ISSUE_NUMBER.search(text), ISSUE_NUMBER.search(text).group(0)
    assert not [line for line in text.splitlines() if OPTION_ROW.match(line)], "a hand-kept option list in the README"
    # the two fresh-machine commands
    assert "--student layers-from-teacher --output runs/sst2-l3 --epochs 2 --eval-steps 300 --overwrite" in text
    assert "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 python -m pytest -q" in text
    assert "mkdocs serve" in text
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert any(link.startswith("docs/") for link in local)
    assert [link for link in local if not (ROOT / link).exists()] == []
    assert "docs/data.md#your-own-data-how-labels-are-read" in text
    for page, anchor in re.findall(r"\]\((docs/[^)#\s]+\.md)#([^)\s]+)\)", text):  # anchors as GitHub and mkdocs make them
        headings = re.findall(r"^#+ (.+?)(?:\s*\{[^}]*\})?$", (ROOT / page).read_text(encoding="utf-8"), re.M)
        assert anchor in {_slug(h) for h in headings}, (page, anchor)


def _slug(heading: str) -> str:
    """A heading's anchor (Python-Markdown's toc and GitHub agree on these headings)."""
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "").lower())
    return re.sub(r"[\s]+", "-", text.strip())


def test_docs_pages_have_no_issue_numbers_or_option_lists():
    """Hand-written pages: no internal issue numbers, no hand-kept option tables (the CLI reference is generated), and
    the own-data label rules written once (on the data page)."""
    for page in _hand_written_pages():
        text = page.read_text(encoding="utf-8")
        found = ISSUE_NUMBER.search(text)
        assert not found, f"{page.relative_to(ROOT)}: {found.group(0)}"
        rows = [line for line in text.splitlines() if OPTION_ROW.match(line)]
        assert not rows, f"{page.relative_to(ROOT)}: hand-kept option rows {rows[:2]}"
    rule = "Refused in one line, nothing trained"
    holders = [p.name for p in _hand_written_pages() if rule in p.read_text(encoding="utf-8")]
    assert holders == ["data.md"]
    assert rule not in README.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------------ (d) CLI reference

def _sections(markdown: str) -> dict[str, str]:
    """``{command name: its section}`` of the generated CLI reference (``## kdistill NAME { #anchor }``)."""
    parts = re.split(r"^## kdistill (\S+).*$", markdown, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_cli_reference_lists_every_option_of_every_command():
    sections = _sections(_hooks().cli_reference())
    commands = _commands()
    assert set(sections) == set(commands)
    for name, command in commands.items():
        section = sections[name]
        if getattr(command, "hidden", False):
            assert "Hidden command" in section
        options = [p for p in command.params if getattr(p, "param_type_name", "option") != "argument"]
        rows = [line for line in section.splitlines() if OPTION_ROW.match(line)]
        assert len(rows) == len(options), name
        for param, row in zip(options, rows):
            for spelling in [*param.opts, *getattr(param, "secondary_opts", [])]:
                assert f"`{spelling}`" in row.split("|")[1], (name, spelling)
            assert ("*(hidden)*" in row) == bool(getattr(param, "hidden", False)), (name, param.name)
            words = re.findall(r"[A-Za-z]{4,}", param.help or "")[:3]
            assert all(w in row for w in words), (name, param.name, words)  # its help text is there


# ------------------------------------------------------------------------------------------------ results page

def test_results_page_has_a_row_per_result_file():
    hooks = _hooks()
    page = hooks.results_page()
    files = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
    assert files
    rows = [line for line in page.splitlines() if line.startswith("| [")]
    assert len(rows) == len(files)
    for path, row in zip(files, rows):
        record = json.loads(path.read_text(encoding="utf-8"))
        assert f"({hooks.RESULTS_URI}/{path.name})" in row
        retention = record.get("retention") if isinstance(record, dict) else None
        if isinstance(retention, (int, float)) and math.isfinite(retention):
            assert f"| {retention * 100:.2f} % |" in row, path.name  # unrounded to 2 decimals, never to a whole
        elif not isinstance(record, dict) or "retention" not in record:
            assert row.count(f" {hooks.MISSING} ") >= 1
    assert "planned" in page and "benchmark scripts" in page
