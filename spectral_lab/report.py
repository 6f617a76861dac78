"""A static HTML page of an output folder: what was run, what came out, and how to run it again.

`write_report(folder, out)` gathers, under ``folder``:

- every experiment output (a folder holding ``results.json``, ``table.md`` or PNG figures,
  e.g. ``figures/<experiment>/``): its title, the command that made it, its configuration,
  its table (``table.md`` rendered), every figure and the numbers of ``results.json``;
- every sweep (a folder holding ``sweep.json``, written by ``spectral-lab sweep``): its
  command, spec and the outcome of each point;
- the catalogue of every trajectory file (`spectral_lab.trajectory_index`) as a table sorted by a
  click on a column and filtered by a text box.

The command of an experiment comes from its ``results.json``: experiments record the
command line they ran (``config.command``); for a file written before they did, the command
is rebuilt from the experiment's name and preset, and the page says that ``--set`` changes
are then unknown. The page is one self-contained file (figures embedded as data URLs, no
script or style from elsewhere), readable from disk without a server.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SpectralLabError

__all__ = ["Section", "find_sections", "experiment_command", "markdown_html", "report_html", "write_report"]

#: results.json larger than this is shown cut (the file itself holds everything)
MAX_JSON_CHARS = 200_000


@dataclass
class Section:
    """One experiment output or sweep folder of a report."""

    path: str  # relative to the report's folder
    kind: str  # "experiment" | "sweep"
    title: str
    command: str = ""
    command_note: str = ""
    config: Any = None
    table_md: str | None = None
    figures: list[Path] = field(default_factory=list)
    numbers: str | None = None
    trajectories: str | None = None  # the catalogue filter that shows this output's files


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def experiment_command(config: Any) -> tuple[str, str]:
    """(command, note) of an experiment's ``results.json`` configuration: the recorded command
    line, or one rebuilt from its name and preset (note saying so), or ``("", why)``."""
    if not isinstance(config, dict):
        return "", "results.json holds no configuration"
    if config.get("command"):
        return str(config["command"]), "recorded by the experiment"
    if config.get("name"):
        preset = config.get("preset")
        cmd = f"python experiments/{config['name']}.py" + (f" --preset {preset}" if preset else "")
        if config.get("out_dir"):
            cmd += f" --out-dir {config['out_dir']}"
        return cmd, ("rebuilt from the configuration's name and preset: this results.json predates recorded "
                     "commands, so --set changes (if any) are not known; compare the configuration below")
    return "", "results.json does not say which experiment wrote it"


def find_sections(directory: str | Path) -> list[Section]:
    """Every experiment output and sweep folder under ``directory`` (hidden folders left out),
    in path order."""
    root = Path(directory)
    folders = set()
    for pattern in ("results.json", "table.md", "*.png", "sweep.json"):
        folders |= {p.parent for p in root.rglob(pattern) if not _hidden(p, root)}
    sections = []
    for folder in sorted(folders):
        rel = folder.relative_to(root).as_posix() or "."
        sweep = folder / "sweep.json"
        if sweep.is_file():
            sections.append(_sweep_section(sweep, rel))
        if (folder / "results.json").is_file() or (folder / "table.md").is_file() or any(folder.glob("*.png")):
            sections.append(_experiment_section(root, folder, rel))
    return sections


def _read_json(path: Path) -> tuple[Any, str]:
    try:
        text = path.read_text()
        return json.loads(text), text
    except (OSError, ValueError) as exc:
        raise SpectralLabError(f"{path} is not readable JSON: {exc}") from None


def _experiment_section(root: Path, folder: Path, rel: str) -> Section:
    sec = Section(rel, "experiment", folder.name)
    results = folder / "results.json"
    if results.is_file():
        numbers, text = _read_json(results)
        sec.config = numbers.get("config") if isinstance(numbers, dict) else None
        sec.command, sec.command_note = experiment_command(sec.config)
        sec.numbers = text if len(text) <= MAX_JSON_CHARS else (
            text[:MAX_JSON_CHARS] + f"\n... cut: {len(text):,} characters in all, see {rel}/results.json")
    else:
        sec.command_note = "no results.json: the command is not known"
    table = folder / "table.md"
    if table.is_file():
        sec.table_md = table.read_text()
        first = sec.table_md.strip().splitlines()[0] if sec.table_md.strip() else ""
        if first.startswith("#"):
            sec.title = first.lstrip("#").strip()
    sec.figures = sorted(folder.glob("*.png"))
    # experiments write figures/<name>/ beside trajectories/<name>/
    if folder.parent.name == "figures" and (folder.parent.parent / "trajectories" / folder.name).is_dir():
        sec.trajectories = (folder.parent.parent / "trajectories" / folder.name).relative_to(root).as_posix() + "/"
    return sec


def _sweep_section(path: Path, rel: str) -> Section:
    record, _ = _read_json(path)
    if not isinstance(record, dict):
        raise SpectralLabError(f"{path} is not a sweep record")
    counts = record.get("counts", {})
    title = f"sweep of {len(record.get('points', []))} point(s): " + ", ".join(f"{v} {k}" for k, v in counts.items())
    sec = Section(rel, "sweep", title, command=str(record.get("command", "")),
                  command_note=f"run in {record.get('cwd', '?')}, executor {record.get('executor')} "
                               f"({record.get('workers')} workers, {record.get('threads')} threads each), "
                               f"{record.get('seconds', 0):.0f} s",
                  config=record.get("spec"))
    rows = ["| file | outcome | seconds | note |", "|---|---|---|---|"]
    for p in record.get("points", []):
        note = p.get("message", "") if p.get("outcome") == "failed" else ""
        rows.append(f"| {p.get('file')} | {p.get('outcome', 'not run')} | {p.get('seconds', '')} | {note} |")
    sec.table_md = "\n".join(rows)
    sec.trajectories = "" if rel == "." else rel + "/"
    return sec


# --------------------------------------------------------------------------- rendering

def _inline(text: str) -> str:
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


def markdown_html(text: str) -> str:
    """The markdown the experiments write (headings, pipe tables, paragraphs, inline code and
    bold) as HTML; anything else is shown as text."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            i += 1
            continue
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 2, 6)
            blocks.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
            i += 1
            continue
        if line.lstrip().startswith("|"):
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            body = [r for r in rows if not all(re.fullmatch(r":?-+:?", c) for c in r if c)]
            head, rest = body[0], body[1:]
            blocks.append("<table class='md'><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head)
                          + "</tr></thead><tbody>" + "".join(
                              "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rest)
                          + "</tbody></table>")
            continue
        para = []
        while i < len(lines) and lines[i].strip() and not lines[i].startswith("#") \
                and not lines[i].lstrip().startswith("|"):
            para.append(lines[i].strip())
            i += 1
        blocks.append(f"<p>{_inline(' '.join(para))}</p>")
    return "\n".join(blocks)


def _png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _catalogue_html(df) -> str:
    from .trajectory_index import varying_columns

    if df is None or df.empty:
        return "<p>No trajectory file under this folder.</p>"
    shown, constant = varying_columns(df)
    head = "".join(f"<th title='click to sort'>{html.escape(c)}</th>" for c in shown)
    body = []
    for _, row in df[shown].iterrows():
        body.append("<tr>" + "".join(f"<td>{html.escape(_cell(row[c]))}</td>" for c in shown) + "</tr>")
    const = ", ".join(f"<code>{html.escape(k)}={html.escape(_cell(v))}</code>" for k, v in constant.items())
    return (f"<p>{len(df)} file(s). Click a column to sort it (again: reverse); the box keeps the rows that "
            f"contain its text. Every column: <code>spectral-lab catalogue DIR -o table.csv</code>.</p>"
            f"<input id='filter' type='search' placeholder='filter rows' size='40'>"
            f"<div class='scroll'><table id='catalogue'><thead><tr>{head}</tr></thead><tbody>"
            + "".join(body) + "</tbody></table></div>"
            + (f"<details><summary>configuration fields equal in every file</summary><p>{const}</p></details>"
               if const else ""))


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; margin-top: 2em; }
code, pre { font-family: ui-monospace, monospace; font-size: 0.9em; background: #f4f4f4; }
pre { padding: 0.6em; overflow-x: auto; max-height: 30em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; }
#catalogue th { cursor: pointer; background: #eef; position: sticky; top: 0; }
#catalogue th.asc::after { content: " \\25B2"; } #catalogue th.desc::after { content: " \\25BC"; }
.scroll { overflow: auto; max-height: 40em; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; } figcaption { font-size: 0.85em; color: #555; }
.command { font-size: 1em; } .note { color: #666; font-size: 0.85em; }
"""

# sorting: numbers as numbers (empty cells last), text as text; the filter hides rows without its text
_SCRIPT = """
(function () {
  var table = document.getElementById("catalogue");
  if (!table) { return; }
  var body = table.tBodies[0];
  function key(cell) {
    var t = cell.textContent.trim();
    var n = Number(t);
    return t === "" ? null : (isNaN(n) ? t.toLowerCase() : n);
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    th.addEventListener("click", function () {
      var asc = !th.classList.contains("asc");
      Array.prototype.forEach.call(th.parentNode.cells, function (c) { c.classList.remove("asc", "desc"); });
      th.classList.add(asc ? "asc" : "desc");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a.cells[col]), y = key(b.cells[col]);
        if (x === null) { return y === null ? 0 : 1; }
        if (y === null) { return -1; }
        if (typeof x !== typeof y) { x = String(x); y = String(y); }
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  var filter = document.getElementById("filter");
  function apply() {
    var text = filter.value.toLowerCase();
    Array.prototype.forEach.call(body.rows, function (r) {
      r.style.display = r.textContent.toLowerCase().indexOf(text) >= 0 ? "" : "none";
    });
  }
  filter.addEventListener("input", apply);
  Array.prototype.forEach.call(document.querySelectorAll("button[data-filter]"), function (b) {
    b.addEventListener("click", function () {
      filter.value = b.getAttribute("data-filter"); apply(); table.scrollIntoView();
    });
  });
})();
"""


def _section_html(sec: Section, anchor: str) -> str:
    parts = [f"<h2 id='{anchor}'>{html.escape(sec.title)} <span class='note'>({html.escape(sec.path)}, "
             f"{sec.kind})</span></h2>"]
    if sec.command:
        parts.append(f"<p>Command: <code class='command'>{html.escape(sec.command)}</code> "
                     f"<span class='note'>{html.escape(sec.command_note)}</span></p>")
    elif sec.command_note:
        parts.append(f"<p class='note'>{html.escape(sec.command_note)}</p>")
    if sec.trajectories is not None:
        parts.append(f"<p><button data-filter='{html.escape(sec.trajectories)}'>show its files in the "
                     f"catalogue</button></p>")
    if sec.table_md:
        parts.append(markdown_html(sec.table_md))
    for fig in sec.figures:
        parts.append(f"<figure><img src='{_png(fig)}' alt='{html.escape(fig.name)}'>"
                     f"<figcaption>{html.escape(fig.name)}</figcaption></figure>")
    if sec.config is not None:
        what = "spec" if sec.kind == "sweep" else "configuration"
        parts.append(f"<details><summary>{what}</summary><pre>"
                     f"{html.escape(json.dumps(sec.config, indent=1, default=str))}</pre></details>")
    if sec.numbers is not None:
        parts.append(f"<details><summary>results.json ({len(sec.numbers):,} characters)</summary><pre>"
                     f"{html.escape(sec.numbers)}</pre></details>")
    return "\n".join(parts)


def report_html(directory: str | Path, *, title: str | None = None, catalogue_df=None) -> str:
    """The report page of ``directory`` (see the module docstring) as one HTML string;
    ``catalogue_df``: the catalogue, if already made (default: `catalogue(directory)`)."""
    from .trajectory_index import catalogue

    root = Path(directory)
    if not root.is_dir():
        raise SpectralLabError(f"{root}: no such folder")
    sections = find_sections(root)
    df = catalogue(root) if catalogue_df is None else catalogue_df
    title = title or f"spectral_lab report: {root.resolve()}"
    toc = "".join(f"<li><a href='#s{i}'>{html.escape(s.title)}</a> <span class='note'>{html.escape(s.path)}"
                  f"</span></li>" for i, s in enumerate(sections))
    made = dt.datetime.now().isoformat(timespec="seconds")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p class='note'>made {made} by <code>spectral-lab report</code>; "
            f"{len(sections)} output folder(s), {0 if df is None else len(df)} trajectory file(s).</p>"
            + (f"<ul>{toc}<li><a href='#catalogue-section'>catalogue</a></li></ul>" if sections else "")
            + "\n".join(_section_html(s, f"s{i}") for i, s in enumerate(sections))
            + "<h2 id='catalogue-section'>Catalogue of the trajectory files</h2>" + _catalogue_html(df)
            + f"<script>{_SCRIPT}</script></body></html>\n")


def write_report(directory: str | Path, out: str | Path, *, title: str | None = None, overwrite: bool = True) -> Path:
    """Write the report page of ``directory`` to ``out`` (an ``.html`` file; an existing one
    only with ``overwrite``), atomically (`spectral_lab.outputs`)."""
    from .outputs import check_output, write_atomically

    check_output(out, (".html", ".htm"), overwrite=overwrite)
    text = report_html(directory, title=title)
    return write_atomically(out, lambda tmp: tmp.write_text(text), overwrite=overwrite)
