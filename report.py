"""One page for the class from many runs: every result JSON in a folder, as HTML and Markdown.

Each script writes `<out>/<script>.json` (config, data, device, per-option statistics,
the lecture's ranges, comparisons) and its plots. This collects every such file in a
folder into one page to show in class:

    python report.py                                  # results/ -> results/report.html, .md
    python report.py --results /tmp/rq                # another results folder
    python report.py --results runs --out site --title "Week 3: transfer learning"

`report.html` is self-contained (inline CSS, plots embedded as base64 data URIs), so it
can be mailed or opened offline; `report.md` has the same tables and links the plots by
relative path. A result file is a `*.json` whose top-level object has "script" and
"summary"; other JSON files are skipped with one line each saying why. Experiments come
in the lecture's order (tl_mnist, mnist_vgg, cifar_vgg), then the others alphabetically;
several runs of one script are all shown, sorted by file name.
"""

import ast
import base64
import datetime
import glob
import html
import json
import math
import mimetypes
import os
import sys
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# The scripts' flags and one-line errors, and their verdicts; none of it loads Keras or
# TensorFlow, so a report takes a blink.
from common.files import atomic_write_text
from common.runs import cli, stats, tables

ROOT = os.path.dirname(os.path.abspath(__file__))
LECTURE_ORDER = ("tl_mnist", "mnist_vgg", "cifar_vgg")  # the lecture's three experiments
MISSING = "—"
# With random VGG16 weights (--weights none) a VGG16 option is a control, not transfer,
# so the lecture's range for it does not apply (the scripts' own tables leave it out).
# "all": every option of that script is a head on VGG16.
VGG16_OPTIONS = {"mnist_vgg": "all", "cifar_vgg": ("vgg16",)}


@dataclass(frozen=True)
class Config:
    """Where to read results and write the report; every field is a command-line flag."""

    results: str = cli.option("results", "folder of result JSONs (the scripts' --out)",
                              group="input")
    out: str | None = cli.shared("out", None)  # report.html and report.md; None: --results
    title: str = cli.option("Transfer learning: results", "the page's title", group="output")


# The page as a list of blocks, so that one set of section functions feeds both renderers.
@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Alert:
    """A warning the reader must not miss (an interrupted run, random weights, a missing plot)."""

    text: str


@dataclass(frozen=True)
class Facts:
    items: tuple[tuple[str, str], ...]  # (label, value)


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    compact: bool = False  # the config: small print


@dataclass(frozen=True)
class Plot:
    path: str  # absolute
    caption: str


@dataclass(frozen=True)
class TableOfContents:
    entries: tuple[tuple[str, str], ...]  # (anchor, text)


Block = Heading | Text | Alert | Facts | Table | Plot | TableOfContents


@dataclass(frozen=True)
class Run:
    """One result file: its path and contents."""

    path: str
    result: dict

    @property
    def script(self) -> str:
        return str(self.result["script"])

    def mapping(self, key: str) -> dict:
        """result[key] if it is an object, else {} (keys are optional and may be null)."""
        value = self.result.get(key)
        return value if isinstance(value, dict) else {}


# 1. Load the results

def read_json(path: str) -> Any:
    """A JSON file's contents. Raises UserInputError naming the file if it is not JSON."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except json.JSONDecodeError as error:
        raise cli.UserInputError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}, "
                                 f"column {error.colno}); fix it or move it out of the folder"
                                 ) from error
    except UnicodeDecodeError as error:
        raise cli.UserInputError(f"{path}: not valid JSON (not UTF-8 text); fix it or move it "
                                 "out of the folder") from error
    except PermissionError as error:
        raise cli.UserInputError(f"{path}: cannot be read ({error.strerror})") from error


def skip_reason(result: Any) -> str | None:
    """Why a JSON file is not a script's result (None: it is one)."""
    if not isinstance(result, dict):
        return "not a JSON object"
    missing = [key for key in ("script", "summary") if key not in result]
    if missing:
        return "no " + " or ".join(f'"{key}"' for key in missing) + " key"
    if not isinstance(result["script"], str) or not result["script"]:
        return '"script" is not a name'
    if not isinstance(result["summary"], dict):
        return '"summary" is not an object of option -> statistics'
    if result.get("shard"):
        return (f"shard {result['shard']} of a run: its trials are in the run's own JSON once "
                "merged (the same command without --shard, with --resume)")
    return None


def run_order(run: Run) -> tuple:
    """The lecture's experiments first, in its order; then other scripts by name; then file."""
    rank = LECTURE_ORDER.index(run.script) if run.script in LECTURE_ORDER else len(LECTURE_ORDER)
    return rank, run.script, os.path.basename(run.path)


def load_results(folder: str) -> tuple[list[Run], list[tuple[str, str]]]:
    """Every result JSON in `folder`, in report order, and (file name, why) per skipped one.

    Raises:
        UserInputError: the folder is missing, a JSON file is malformed, or no file in
            the folder is a result.
    """
    if not os.path.isdir(folder):
        problem = "not a folder" if os.path.exists(folder) else "no such folder"
        raise cli.UserInputError(f"--results {folder}: {problem}; run a script first (e.g. "
                                 "python tl_mnist.py --quick) or pass --results DIR")
    runs, skipped = [], []
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        if not os.path.isfile(path):
            continue  # a folder named *.json
        result = read_json(path)
        reason = skip_reason(result)
        if reason:
            skipped.append((os.path.basename(path), reason))
        else:
            runs.append(Run(path, result))
    if not runs:
        found = "".join(f"; skipped {name}: {reason}" for name, reason in skipped)
        raise cli.UserInputError(f"--results {folder}: no result JSON (a .json with \"script\" "
                                 f"and \"summary\") found; run a script first (e.g. python "
                                 f"tl_mnist.py --quick --out DIR){found}")
    return sorted(runs, key=run_order), skipped


# 2. Format values: accuracies are fractions in the JSON, percentages on the page

def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def percent(value: Any) -> str:
    return f"{100 * value:.1f}%" if is_number(value) else MISSING


def pair(value: Any) -> tuple[float, float] | None:
    """(low, high) from a two-number list, else None (a null or malformed interval)."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(map(is_number, value)):
        return float(value[0]), float(value[1])
    return None


def percent_range(value: Any) -> str:
    bounds = pair(value)
    return f"{100 * bounds[0]:.1f}–{100 * bounds[1]:.1f}%" if bounds else MISSING


def points(value: Any) -> str:
    """A difference of accuracies in percentage points, signed."""
    return f"{100 * value:+.1f} points" if is_number(value) else MISSING


def decimal(value: Any, digits: int) -> str:
    return f"{value:.{digits}f}" if is_number(value) else MISSING


def p_value(value: Any) -> str:
    """As people write p-values: 0.021, 3.1e-09."""
    return stats.format_p(value) if is_number(value) else MISSING


def plain(value: Any) -> str:
    """A config or dataset value as text; null is "—", lists and objects compact."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def seed_list(seeds: Any) -> str:
    """0, 1, ..., 14 as "0–14 (15)"; anything else listed."""
    if not isinstance(seeds, list) or not seeds:
        return MISSING
    first = seeds[0]
    if all(isinstance(s, int) for s in seeds) and seeds == list(range(first, first + len(seeds))):
        return f"{seeds[0]}–{seeds[-1]} ({len(seeds)})" if len(seeds) > 1 else str(seeds[0])
    return ", ".join(map(plain, seeds))


def verdict(mean: Any, lecture: tuple[float, float] | None, chance: Any = None) -> str:
    """Whether our mean lies within, above or below the lecture's min–max, or "at
    chance" (the scripts' own verdict, `tables.lecture_verdict`)."""
    if lecture is None or not is_number(mean):
        return MISSING
    return tables.lecture_verdict(mean, lecture, chance if is_number(chance) else None)


# 3. One function per section of an experiment

def description(run: Run) -> str:
    """The run's "description", else the first paragraph of its script's docstring."""
    if isinstance(run.result.get("description"), str):
        return run.result["description"]
    script_path = os.path.join(ROOT, f"{run.script}.py")
    # The name comes from a file: only a plain name may become a path.
    if not run.script.isidentifier() or not os.path.isfile(script_path):
        return ""
    try:
        with open(script_path, encoding="utf-8") as file:
            docstring = ast.get_docstring(ast.parse(file.read())) or ""
    except (OSError, SyntaxError, UnicodeDecodeError):
        return ""  # a description is a nicety; an unreadable script must not stop the report
    return " ".join(docstring.split("\n\n")[0].split())


def random_weights(run: Run) -> bool:
    """Did VGG16 keep random weights (--weights none)? Then it is a control, not transfer."""
    return (run.mapping("config").get("weights") == "none"
            or str(run.result.get("weights", "")).startswith("random"))


def lecture_ranges(run: Run) -> dict[str, tuple[float, float] | None]:
    """The lecture's (min, max) per option, None where it does not apply (random VGG16)."""
    ranges = {name: pair(value) for name, value in run.mapping("lecture_ranges").items()}
    voided = VGG16_OPTIONS.get(run.script, ()) if random_weights(run) else ()
    return {name: None if voided == "all" or name in voided else bounds
            for name, bounds in ranges.items()}


def finished_trials(run: Run) -> dict[str, int]:
    """Finished trials per option: from the accuracies if present, else the summary's n."""
    accuracies = run.mapping("accuracies")
    if accuracies:
        return {name: len(values) if isinstance(values, list) else 0
                for name, values in accuracies.items()}
    return {name: int(figures["n"])
            if isinstance(figures, dict) and is_number(figures.get("n")) else 0
            for name, figures in run.mapping("summary").items()}


def alerts_section(run: Run) -> list[Block]:
    """What the reader must see first: an interrupted run, a substitute dataset, random weights."""
    blocks: list[Block] = []
    if run.result.get("complete") is False:
        finished = finished_trials(run)
        planned = run.mapping("config").get("trials")
        of = f"; {planned} planned per option" if isinstance(planned, int) else ""
        counts = ", ".join(f"{name} {count}" for name, count in finished.items())
        blocks.append(Alert(f"Interrupted run: only {sum(finished.values())} trials finished "
                            f"({counts}{of}); the statistics below cover those trials only. "
                            "Rerun the script with the same flags and --resume to finish it."))
    warning = run.mapping("dataset").get("warning")
    if warning:
        blocks.append(Alert(f"Dataset: {warning}"))
    if random_weights(run):
        voided = [name for name, bounds in lecture_ranges(run).items()
                  if bounds is None and name in run.result["summary"]]
        applies = f" to {', '.join(voided)}" if voided else ""
        blocks.append(Alert("VGG16 ran with random weights (--weights none): a control, not "
                            f"transfer; the lecture's ranges do not apply{applies}."))
    if run.mapping("config").get("quick") is True:
        blocks.append(Alert("A --quick run: a tiny smoke test of the pipeline, not the "
                            "lecture's protocol; do not compare its numbers with the lecture."))
    return blocks


def run_section(run: Run) -> list[Block]:
    """Dataset and source, weights, device, versions, seeds, time and completeness."""
    dataset = run.mapping("dataset")
    sizes = (("train_images", "training"), ("test_images", "test"))
    images = [f"{dataset[key]:,} {label}" for key, label in sizes if is_number(dataset.get(key))]
    data_text = plain(dataset.get("name")) + (f" ({', '.join(images)} images)" if images else "")
    versions = ", ".join(f"{name} {value}" for name, value in run.mapping("environment").items())
    timings = run.mapping("timings_s")
    phases = ", ".join(f"{name} {value:.1f} s" for name, value in timings.items()
                       if name != "total" and is_number(value))
    total = f"{timings['total']:.1f} s" if is_number(timings.get("total")) else MISSING
    complete = run.result.get("complete")
    status = {True: "complete", False: "interrupted"}.get(complete, "not recorded (older result)")
    items = [("Result file", os.path.basename(run.path)), ("Dataset", data_text),
             ("Source", plain(dataset.get("source")))]
    if "weights" in run.result:
        items.append(("Weights", plain(run.result["weights"])))
    items += [("Device", plain(run.result.get("device"))), ("Versions", versions or MISSING),
              ("Seeds", seed_list(run.result.get("seeds"))),
              ("Wall time", total + (f" ({phases})" if phases else "")), ("Run", status)]
    return [Facts(tuple(items))]


def config_section(run: Run) -> list[Block]:
    config = run.mapping("config")
    if not config:
        return [Text("Config: not recorded.")]
    return [Heading(3, "Config"),
            Table(("setting", "value"), tuple((key, plain(value)) for key, value in config.items()),
                  compact=True)]


def statistics_section(run: Run) -> list[Block]:
    """Per option: trials, min–max, mean, std, the mean's 95% CI, the lecture's range."""
    ranges = lecture_ranges(run)
    rows = []
    for name, figures in run.result["summary"].items():
        figures = figures if isinstance(figures, dict) else {}
        lecture = ranges.get(name)
        where = verdict(figures.get("mean"), lecture, run.result.get("chance"))
        if name in ranges and lecture is None and random_weights(run):
            where = f"{MISSING} (random weights)"
        std = decimal(100 * figures["std"], 1) if is_number(figures.get("std")) else MISSING
        spread = percent_range([figures.get("min"), figures.get("max")])
        rows.append((name, plain(figures.get("n")), spread, percent(figures.get("mean")), std,
                     percent_range(figures.get("ci95")), percent_range(lecture), where))
    if not rows:
        return [Heading(3, "Test accuracy"), Text("No finished trials.")]
    headers = ("option", "trials", "min–max", "mean", "std (points)", "95% CI of the mean",
               "lecture", "mean vs lecture")
    return [Heading(3, "Test accuracy"), Table(headers, tuple(rows))]


def comparisons_section(run: Run) -> list[Block]:
    """Each treatment against the baseline: difference, its CI, Welch's test, Cohen's d.

    Older results have only "gain" (mean paired gain, trials ahead); that is shown instead.
    """
    comparisons = [c for c in run.result.get("comparisons") or [] if isinstance(c, dict)]
    if comparisons:
        rows = []
        for c in comparisons:
            ci = pair(c.get("ci95"))
            welch = (f"{decimal(c.get('welch_t'), 2)} (df {decimal(c.get('welch_df'), 1)})"
                     if is_number(c.get("welch_t")) else MISSING)
            ahead = (f"{plain(c.get('trials_ahead'))} of {c['paired_trials']}"
                     if is_number(c.get("paired_trials")) and c["paired_trials"] else MISSING)
            rows.append((f"{plain(c.get('treatment'))} vs {plain(c.get('baseline'))}",
                         f"{plain(c.get('n_treatment'))} vs {plain(c.get('n_baseline'))}",
                         points(c.get("mean_difference")),
                         f"{100 * ci[0]:+.1f} to {100 * ci[1]:+.1f}" if ci else MISSING,
                         welch, p_value(c.get("p_value")), decimal(c.get("cohens_d"), 2), ahead))
        headers = ("comparison", "trials", "difference of means", "95% CI (points)",
                   "Welch t", "p-value", "Cohen's d", "paired trials ahead")
        return [Heading(3, "Comparisons"), Table(headers, tuple(rows))]
    gain = run.mapping("gain")
    if gain:
        ahead = (f", ahead in {plain(gain.get('trials_ahead'))} of {gain['trials']} paired trials"
                 if is_number(gain.get("trials")) else "")
        return [Heading(3, "Comparisons"),
                Text(f"Gain of transfer: {points(gain.get('mean_gain'))} on average{ahead} "
                     "(an older result: no confidence interval or test recorded).")]
    return []


def plot_files(run: Run) -> tuple[list[str], list[str]]:
    """(existing, missing) plots: "plots" relative to the JSON's folder, else <script>.png."""
    folder = os.path.dirname(os.path.abspath(run.path))
    if "plots" in run.result:
        # Plain file names only: a result file must not pull in files from elsewhere.
        listed = [name for name in run.result.get("plots") or []
                  if isinstance(name, str) and name == os.path.basename(name)]
    else:  # older results list no plots; the scripts wrote <script>.png beside the JSON
        fallback = f"{run.script}.png"
        listed = [fallback] if run.script.isidentifier() and os.path.isfile(
            os.path.join(folder, fallback)) else []
    paths = [os.path.join(folder, name) for name in listed]
    return ([path for path in paths if os.path.isfile(path)],
            [path for path in paths if not os.path.isfile(path)])


def plots_section(run: Run) -> list[Block]:
    existing, missing = plot_files(run)
    blocks: list[Block] = [Plot(path, os.path.basename(path)) for path in existing]
    blocks += [Alert(f"Plot {os.path.basename(path)} is listed but missing.") for path in missing]
    return ([Heading(3, "Plots")] + blocks) if blocks else []


def experiment(run: Run, anchor: str) -> list[Block]:
    """Every section of one result, in reading order."""
    about = description(run)
    return [Heading(2, run.script + (f" — {about}" if about else ""), anchor),
            *alerts_section(run), *run_section(run), *statistics_section(run),
            *comparisons_section(run), *plots_section(run), *config_section(run)]


def document(runs: Sequence[Run], skipped: Sequence[tuple[str, str]], folder: str
             ) -> list[Block]:
    """The whole page: a line on where it comes from, contents, experiments, skipped files."""
    anchors = [f"run-{index}" for index in range(1, len(runs) + 1)]
    generated = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    blocks: list[Block] = [
        Text(f"{len(runs)} result{'s' if len(runs) != 1 else ''} from {os.path.abspath(folder)}, "
             f"generated {generated}. Accuracies are on each experiment's test images; the "
             "lecture's ranges are the min–max of its trials."),
        TableOfContents(tuple((anchor, f"{run.script} ({os.path.basename(run.path)})")
                              for anchor, run in zip(anchors, runs)))]
    for anchor, run in zip(anchors, runs):
        blocks += experiment(run, anchor)
    if skipped:
        blocks += [Heading(2, "Skipped files"), Facts(tuple(skipped))]
    return blocks


# 4. Render: HTML (self-contained) and Markdown

CSS = """
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.4; }
h2 { border-top: 2px solid #ccc; padding-top: 1rem; margin-top: 2.5rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }
th { background: #f2f2f2; }
table.compact { font-size: 0.8rem; }
table.compact td, table.compact th { padding: 0.1rem 0.4rem; }
.alert { background: #fff3cd; border: 1px solid #e0b000; padding: 0.5rem 0.8rem; font-weight: 600; }
ul.facts { list-style: none; padding-left: 0; }
figure { margin: 1rem 0; }
img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85rem; color: #555; }
"""


def data_uri(path: str) -> str:
    """The file as a data: URI, so that the page needs nothing beside it."""
    kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
    with open(path, "rb") as file:
        return f"data:{kind};base64,{base64.b64encode(file.read()).decode('ascii')}"


def html_block(block: Block) -> str:
    e = html.escape
    if isinstance(block, Heading):
        anchor = f' id="{e(block.anchor)}"' if block.anchor else ""
        return f"<h{block.level}{anchor}>{e(block.text)}</h{block.level}>"
    if isinstance(block, Text):
        return f"<p>{e(block.text)}</p>"
    if isinstance(block, Alert):
        return f'<p class="alert">⚠ {e(block.text)}</p>'
    if isinstance(block, Facts):
        items = "".join(f"<li><b>{e(label)}:</b> {e(value)}</li>" for label, value in block.items)
        return f'<ul class="facts">{items}</ul>'
    if isinstance(block, Table):
        head = "".join(f"<th>{e(cell)}</th>" for cell in block.headers)
        body = "".join("<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>"
                       for row in block.rows)
        css = ' class="compact"' if block.compact else ""
        return f"<table{css}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Plot):
        return (f'<figure><img src="{data_uri(block.path)}" alt="{e(block.caption)}">'
                f"<figcaption>{e(block.caption)}</figcaption></figure>")
    if isinstance(block, TableOfContents):
        items = "".join(f'<li><a href="#{e(anchor)}">{e(text)}</a></li>'
                        for anchor, text in block.entries)
        return f"<ul>{items}</ul>"
    raise AssertionError(f"unknown block {block!r}")


def render_html(title: str, blocks: Sequence[Block]) -> str:
    """One self-contained page: inline CSS, images as data URIs, no external resources."""
    body = "\n".join(html_block(block) for block in blocks)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n")


def md_text(text: str) -> str:
    """Text that Markdown shows as is: no emphasis, links, HTML or table breaks from data.

    `_` is left alone (GitHub's Markdown does not emphasize inside words like tl_mnist),
    so that the file stays readable as plain text.
    """
    for char in "\\`*[]|":
        text = text.replace(char, "\\" + char)
    return text.replace("<", "&lt;").replace("\n", " ")


def md_link(path: str, base: str) -> str:
    """`path` relative to the folder `base`, as a URL path (spaces and the like quoted)."""
    return urllib.parse.quote(os.path.relpath(path, base).replace(os.sep, "/"))


def md_block(block: Block, base: str) -> str:
    if isinstance(block, Heading):
        anchor = f'<a id="{block.anchor}"></a>\n' if block.anchor else ""
        return f"{anchor}{'#' * block.level} {md_text(block.text)}"
    if isinstance(block, Text):
        return md_text(block.text)
    if isinstance(block, Alert):
        return f"> **⚠ Warning:** {md_text(block.text)}"
    if isinstance(block, Facts):
        return "\n".join(f"- **{md_text(label)}:** {md_text(value)}"
                         for label, value in block.items)
    if isinstance(block, Table):
        lines = ["| " + " | ".join(map(md_text, block.headers)) + " |",
                 "|" + " --- |" * len(block.headers)]
        lines += ["| " + " | ".join(map(md_text, row)) + " |" for row in block.rows]
        return "\n".join(lines)
    if isinstance(block, Plot):
        return f"![{md_text(block.caption)}]({md_link(block.path, base)})"
    if isinstance(block, TableOfContents):
        return "\n".join(f"- [{md_text(text)}](#{anchor})" for anchor, text in block.entries)
    raise AssertionError(f"unknown block {block!r}")


def render_markdown(title: str, blocks: Sequence[Block], base: str) -> str:
    """The same page in Markdown; plots linked relative to `base`, the .md file's folder."""
    return "\n\n".join([f"# {md_text(title)}", *(md_block(block, base) for block in blocks)]) + "\n"


def main(config: Config) -> tuple[str, str]:
    # 1. Read every result (bad input stops here, before anything is written)
    out = config.out or config.results
    if os.path.exists(out) and not os.path.isdir(out):
        raise cli.UserInputError(f"--out {out}: a file, not a folder; pass a folder")
    runs, skipped = load_results(config.results)
    for name, reason in skipped:
        print(f"report.py: skipped {name}: {reason}", file=sys.stderr)
    for run in runs:
        for path in plot_files(run)[1]:
            print(f"report.py: warning: {os.path.basename(run.path)} lists the plot {path}, "
                  "which is missing; the report leaves it out", file=sys.stderr)

    # 2. Lay out the page once, then write it as HTML and as Markdown
    blocks = document(runs, skipped, config.results)
    html_path, md_path = os.path.join(out, "report.html"), os.path.join(out, "report.md")
    atomic_write_text(html_path, render_html(config.title, blocks))
    atomic_write_text(md_path, render_markdown(config.title, blocks,
                                                           os.path.abspath(out)))
    print(f"report of {len(runs)} result{'s' if len(runs) != 1 else ''}: wrote {html_path} "
          f"and {md_path}")
    return html_path, md_path


def run(argv: Sequence[str] | None = None) -> int:
    """The command line: flags -> config -> report; returns the exit status."""
    return cli.run_script(main, cli.parse_config(Config, argv, __doc__, {}), "report.py",
                          stop_at_epoch_end=False)  # (nothing trains: Ctrl-C stops at once)


if __name__ == "__main__":
    sys.exit(run())
