"""mkdocs hooks (``hooks:`` in ``mkdocs.yml``): the two generated pages and the result files.

* ``docs/reference/cli.md`` — the CLI reference, read from the typer app itself (every command, hidden ones
  included, and every option: names, type, default, help, hidden/required), so no option list is kept by hand;
* ``docs/results.md`` — one row per committed ``benchmarks/results/*.json``, its figures printed from the file,
  with links to the ``.json`` and to the ``.md`` / ``.png`` beside it;
* the files of ``benchmarks/results/`` are added to the site under the same path, so those links work.

Both pages are written before every build (only when their text changed, so ``mkdocs serve`` does not rebuild in a
loop) and are git-ignored (``docs/.gitignore``). Run ``python docs/hooks.py`` to write them without building.
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESULTS_DIR = ROOT / "benchmarks" / "results"
CLI_PAGE = DOCS / "reference" / "cli.md"
RESULTS_PAGE = DOCS / "results.md"
RESULTS_URI = "benchmarks/results"  # where the result files sit in the site (and in the repository)

#: The result-file fields the results page shows, in column order.
RESULT_FIELDS = ("task", "teacher", "student", "method", "metric_name", "teacher_metric", "student_metric",
                 "retention", "speedup", "command", "date")
MISSING = "—"  # a field the file does not have
UNDEFINED = "n/a"  # a field the file has as null (an undefined value, e.g. retention over a metric of 0)


# ------------------------------------------------------------------------------------------------ mkdocs events

def on_pre_build(config, **kwargs) -> None:
    write_generated()


def on_files(files, config, **kwargs):
    """Add the files of ``benchmarks/results/`` and ``benchmarks/results/campaign/`` to the site under the same path
    (the results and campaign pages link them); the ``.md`` reports become pages of their own (not in the
    navigation)."""
    from mkdocs.structure.files import File

    for path in sorted([*RESULTS_DIR.glob("*"), *RESULTS_DIR.glob("campaign/*")]) if RESULTS_DIR.is_dir() else ():
        uri = f"{RESULTS_URI}/{path.relative_to(RESULTS_DIR).as_posix()}"
        if path.is_file() and files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def write_generated() -> list[Path]:
    """Write both generated pages (each only if its text changed); returns the paths written."""
    written = []
    for path, text in ((CLI_PAGE, cli_reference()), (RESULTS_PAGE, results_page())):
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


# ------------------------------------------------------------------------------------------------ helpers

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def text(value: Any) -> str:
    """Plain text for Markdown (and a table cell): HTML and Markdown characters escaped, on one line."""
    s = html.escape(str(value), quote=False)
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return " ".join(s.split())


def code(value: Any) -> str:
    """``value`` as an inline code span (safe in a table cell)."""
    s = " ".join(str(value).split()).replace("|", "\\|")
    fence = "``" if "`" in s else "`"
    return f"{fence} {s} {fence}" if fence == "``" else f"`{s}`"


# ------------------------------------------------------------------------------------------------ CLI reference

def cli_commands():
    """``(name, click command)`` for every command of the ``kdistill`` app, visible ones first, then hidden ones."""
    import typer

    from kdistill.cli import app

    group = typer.main.get_command(app)
    commands = dict(getattr(group, "commands", {}) or {})
    return group, sorted(commands.items(), key=lambda kv: (bool(getattr(kv[1], "hidden", False)), _order(group, kv[0])))


def _order(group, name: str) -> int:
    names = list(getattr(group, "commands", {}) or {})
    return names.index(name) if name in names else len(names)


def _context(command, parent=None):
    """A click context for ``command`` (typer ≥ 0.2x vendors click as ``typer._click``; older typer uses click)."""
    ctx_cls = None
    for mod in ("typer._click.core", "click.core"):
        try:
            module = __import__(mod, fromlist=["Context"])
        except ImportError:
            continue
        if isinstance(command, getattr(module, "Command", ())):
            ctx_cls = module.Context
            break
    ctx_cls = ctx_cls or __import__("click").Context
    return ctx_cls(command, info_name=getattr(command, "name", None) or "kdistill", parent=parent)


def option_names(param) -> list[str]:
    """Every spelling of an option (``--temperature``, ``-T``, and a ``--no-x`` secondary name)."""
    return [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]


def param_type(param, ctx) -> str:
    """The option's value type as ``--help`` shows it (``int``, ``float``, ``a|b|c``, ``list[str]``, ``flag``)."""
    if getattr(param, "is_flag", False) and not getattr(param, "secondary_opts", None):
        return "flag"
    if getattr(param, "is_flag", False):
        return "flag pair"
    display = getattr(param, "display_type", None)
    if callable(display):  # typer's own parameters
        try:
            shown = display(ctx)
        except TypeError:
            shown = display()
        if shown:
            return str(shown).strip("<>")
    kind = getattr(param, "type", None)  # click's
    if getattr(kind, "choices", None):
        return "|".join(str(c) for c in kind.choices)
    return str(getattr(kind, "name", "") or "text")


def param_default(param) -> str:
    if getattr(param, "required", False):
        return "**required**"
    default = getattr(param, "default", None)
    if callable(default):
        return "(computed)"
    if default is None or default == () or default == []:
        return MISSING
    if getattr(param, "is_flag", False) and getattr(param, "secondary_opts", None):
        return code(param.opts[0] if default else param.secondary_opts[0])
    if isinstance(default, (list, tuple)):
        return code(",".join(str(d) for d in default))
    return code(default)


def cli_reference() -> str:
    group, commands = cli_commands()
    out = ["# CLI reference", "",
           "<!-- Generated by docs/hooks.py from the typer app (kdistill.cli) at every docs build: do not edit. -->", "",
           "Generated from the `kdistill` command line itself at every docs build, so it lists exactly what "
           "`kdistill COMMAND --help` shows. A default of " + MISSING + " means the option is not set and the run's "
           "typed config supplies the value (see each method's page and `kdistill_run.json`).", ""]
    if getattr(group, "help", None):
        out += [text(group.help), ""]
    out += ["| command | what it does |", "|---|---|"]
    for name, command in commands:
        hidden = " *(hidden)*" if getattr(command, "hidden", False) else ""
        summary = (getattr(command, "help", None) or "").strip().split("\n")[0]
        out.append(f"| [`kdistill {name}`](#{_anchor(name)}){hidden} | {text(summary)} |")
    out.append("")
    root_ctx = _context(group)
    for name, command in commands:
        ctx = _context(command, parent=root_ctx)
        hidden = getattr(command, "hidden", False)
        out += [f"## kdistill {name} {{ #{_anchor(name)} }}", ""]
        if hidden:
            out += ["*Hidden command: not listed by `kdistill --help`, kept for old scripts.*", ""]
        if getattr(command, "deprecated", False):
            out += ["*Deprecated.*", ""]
        help_text = (getattr(command, "help", None) or "").strip()
        for para in re.split(r"\n\s*\n", help_text):
            if para.strip():
                out += [text(para.replace("\b", "")), ""]
        args = [p for p in command.params if getattr(p, "param_type_name", "option") == "argument"]
        opts = [p for p in command.params if getattr(p, "param_type_name", "option") != "argument"]
        usage = " ".join([f"kdistill {name}", *(p.name.upper() for p in args), "[OPTIONS]"])
        out += [f"Usage: `{usage}`", ""]
        if args:
            out += ["| argument | type | description |", "|---|---|---|"]
            for p in args:
                out.append(f"| `{p.name.upper()}` | {text(param_type(p, ctx))} | {text(getattr(p, 'help', '') or '')} |")
            out.append("")
        out += ["| option | type | default | description |", "|---|---|---|---|"]
        for p in opts:
            names = ", ".join(f"`{n}`" for n in option_names(p))
            notes = []
            if getattr(p, "hidden", False):
                notes.append("*(hidden)*")
            if getattr(p, "multiple", False):
                notes.append("*(repeatable)*")
            desc = " ".join([*notes, text(getattr(p, "help", None) or "")]).strip()
            out.append(f"| {names} | {text(param_type(p, ctx))} | {param_default(p)} | {desc} |")
        out.append("")
    return "\n".join(out)


def _anchor(name: str) -> str:
    return "kdistill-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# ------------------------------------------------------------------------------------------------ results page

def fmt_field(key: str, record: dict) -> str:
    """One result field as printed on the results page (numbers straight from the file)."""
    if key not in record:
        return MISSING
    value = record[key]
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return UNDEFINED
    if isinstance(value, bool):
        return text(value)
    if isinstance(value, (int, float)):
        if key == "retention":
            return f"{value * 100:.2f} %"
        if key == "speedup":
            return f"{value:.2f}×"
        if key in ("teacher_metric", "student_metric"):
            return f"{value:.4f}"
        return text(value)
    if key == "command":
        return code(value)
    if isinstance(value, (dict, list)):
        return code(json.dumps(value, ensure_ascii=False))
    return text(value)


def result_rows() -> list[tuple[str, dict]]:
    """``(stem, record)`` for every ``benchmarks/results/*.json`` (a file that is not a JSON object: an empty record)."""
    rows = []
    for path in sorted(RESULTS_DIR.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            record = {}
        rows.append((path.stem, record if isinstance(record, dict) else {}))
    return rows


def results_page() -> str:
    rows = result_rows()
    out = ["# Results", "",
           "<!-- Generated by docs/hooks.py from benchmarks/results/*.json at every docs build: do not edit. -->", "",
           "!!! note \"Where these figures come from\"",
           "    Every figure on this page is printed from the committed result files in `benchmarks/results/`, as the "
           "benchmark scripts in `benchmarks/` wrote them: one row per `.json` file, nothing typed by hand. The runs "
           "behind them had different budgets (data, epochs, machine load); each file's own `.md` report says how it "
           "was run, and its `command` re-runs it. A reproducible benchmark campaign — every benchmark re-run by one "
           "script on one machine, with intervals — is planned; it will regenerate these tables.",
           "",
           f"Retention is the student's metric over the teacher's; speedup the teacher's CPU batch-1 latency over the "
           f"student's, as each file records it. {MISSING}: the file has no such field; {UNDEFINED}: the file records "
           f"the value as undefined (`null`).",
           "",
           f"{len(rows)} result files.", "",
           "| file | " + " | ".join(RESULT_FIELDS) + " | report | plot |",
           "|" + "---|" * (len(RESULT_FIELDS) + 3)]
    for stem, record in rows:
        md = RESULTS_DIR / f"{stem}.md"
        png = RESULTS_DIR / f"{stem}.png"
        cells = [f"[{text(stem)}]({RESULTS_URI}/{stem}.json)",
                 *(fmt_field(k, record) for k in RESULT_FIELDS),
                 f"[md]({RESULTS_URI}/{stem}.md)" if md.exists() else MISSING,
                 f"[png]({RESULTS_URI}/{stem}.png)" if png.exists() else MISSING]
        out.append("| " + " | ".join(cells) + " |")
    others = sorted(p for p in RESULTS_DIR.glob("*") if p.suffix in (".md", ".png")
                    and not (RESULTS_DIR / f"{p.stem}.json").exists())
    if others:
        out += ["", "Result files without a `.json` beside them: "
                + ", ".join(f"[{text(p.name)}]({RESULTS_URI}/{p.name})" for p in others) + "."]
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    for written in write_generated():
        print(written.relative_to(ROOT))
