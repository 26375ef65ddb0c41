"""Bad input, table by table: every case is refused with its exit code and one line saying why.

The contract each case checks:

* exit 2 for bad input or configuration, 1 for a failure (a dead endpoint, a database file that
  cannot be opened);
* exactly one line on stderr starting with ``error: `` (besides the ``database: ...`` line long
  commands begin with), holding the fragment the case names, usually ``file:line``;
* no traceback on stdout or stderr, no ESC on stderr, and no secret from the environment echoed;
* nothing half-written: the row counts of the database are as they were before the command.

Click's usage errors (an unknown option, a value outside an option's range) print their own
``Usage: ... Error: ...`` block and exit 2; they have a table of their own.

Cases run in-process through the console entry point, ``debate.cli.main``, with ``sys.argv`` and
the environment patched; each gets a private copy of a sample database (the bundled KB and
hypotheses plus one finished offline run). The one case that needs a real process says why.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import private_copy, run_cli, seed_debated_sample

SECRET = "hunter2"  # put where a secret goes (a key, a password); never printed back
DEAD = "http://127.0.0.1:9/v1"  # the discard port: nothing listens, connections are refused
TABLES = ("pages", "chunks", "hypotheses", "runs", "turns", "reviews", "batches")
INFO_LINES = ("database: ", "copying ")  # progress lines some commands print before their work

# -------------------------------------------------------------------------------- sample text

# An invented page (no "Wren kinase" exists) in the wiki export format: banner, title, a
# heading, prose, two facts, a Related Hypotheses list and a metadata table.
PAGE = """📗 Cite This Artifact
Wren Kinase Notes
Overview
Wren kinase is an invented enzyme that exists only to exercise the page reader.
- Role: test fixture
- Location: nowhere in particular
Related Hypotheses
From the [Exchange](/exchange) — scored by multi-agent debate
- [Wren Kinase Inhibition](/hypothesis/h-0a1b2c3d) — 0.42 · Target: SOD1
▸Metadata
| slug | notes-wren-kinase |
| entity_type | gene |
"""
PAGE_NO_SLUG = PAGE.replace("| slug | notes-wren-kinase |\n", "")
RELATED_LINE = "- [Wren Kinase Inhibition](/hypothesis/h-0a1b2c3d) — 0.42 · Target: SOD1"
OPEN_TABLE = 'Overview\n<table class="infobox">\n<tr><td class="label">Gene</td><td>WRN1</td></tr>\n'
NO_VALUE_CELL = 'Overview\n<table class="infobox">\n<tr><td class="label">Gene</td></tr>\n</table>\n'
SECOND_RELATED = "Related Hypotheses\n- [Other](/hypothesis/h-0a1b2c3e) — 0.40\n▸Metadata"


def page(old: str, new: str) -> str:
    """The sample page with one piece of its text replaced."""
    assert old in PAGE
    return PAGE.replace(old, new, 1)


def long_page(n_lines: int) -> str:
    return PAGE + "".join(f"- Note {i}: {'wren ' * 12}\n" for i in range(n_lines))


YAML_OK = "- title: Wren kinase inhibition\n  targets: [SOD1]\n"
JSON_TWO = """[
  {"title": "Wren kinase inhibition", "targets": ["SOD1"]},
  {"title": "Wren kinase activation", "targets": ["%s"]}
]
"""
CSV_HEAD = "title,targets,prior_score\n"
STORED_TITLE = "SOD1 Antisense Knockdown in SOD1-ALS"  # h-9878fd9b in the sample


# -------------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Bad:
    """A command line, the files and environment it runs with, and how it must be refused.

    ``{dir}`` in arguments, file names, environment values and ``says`` is the case's own folder;
    ``{run}`` is the sample's finished run.
    """

    args: tuple[str, ...]
    says: str = ""  # a fragment the error line must hold
    code: int = 2
    files: Mapping[str, str | bytes] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)


def bad(
    case_id: str,
    *args: str,
    says: str,
    code: int = 2,
    files: Mapping[str, str | bytes] | None = None,
    env: Mapping[str, str] | None = None,
):  # type: ignore[no-untyped-def]
    return pytest.param(Bad(args, says, code, files or {}, env or {}), id=case_id)


def ingest(case_id: str, text: str | bytes, says: str, *, name: str = "p.txt", **kw):  # type: ignore[no-untyped-def]
    """``kb ingest`` of one page file holding ``text``."""
    return bad(case_id, "kb", "ingest", f"{{dir}}/{name}", says=says, files={name: text}, **kw)


def ingest_folder(case_id: str, files: Mapping[str, str | bytes], says: str):  # type: ignore[no-untyped-def]
    """``kb ingest`` of a folder ``kb`` holding ``files``."""
    return bad(case_id, "kb", "ingest", "{dir}/kb", says=says, files={f"kb/{k}": v for k, v in files.items()})


def imports(case_id: str, name: str, text: str | bytes, says: str):  # type: ignore[no-untyped-def]
    """``hypotheses import`` of one file holding ``text``."""
    return bad(case_id, "hypotheses", "import", f"{{dir}}/{name}", says=says, files={name: text})


def info_with(case_id: str, says: str, code: int = 2, **env: str):  # type: ignore[no-untyped-def]
    """``info`` (which opens the database) under the environment ``env``."""
    return bad(case_id, "info", says=says, code=code, env=env)


def config_file(case_id: str, text: str | bytes, says: str):  # type: ignore[no-untyped-def]
    """``info`` with ``DEBATE_CONFIG_FILE`` naming a file holding ``text``."""
    return bad(case_id, "info", says=says, files={"c.toml": text}, env={"DEBATE_CONFIG_FILE": "{dir}/c.toml"})


def run_openai(case_id: str, says: str, code: int = 2, **env: str):  # type: ignore[no-untyped-def]
    """``run --backend openai`` of a sample hypothesis under the environment ``env``."""
    return bad(case_id, "run", "--backend", "openai", "h-9878fd9b", "-q", says=says, code=code, env=env)


def check_endpoint(case_id: str, says: str, code: int = 2, **env: str):  # type: ignore[no-untyped-def]
    """``model check`` (of the openai endpoint) under the environment ``env``."""
    return bad(case_id, "model", "check", says=says, code=code, env=env)


# fmt: off
KB_INGEST = [
    bad("missing-path", "kb", "ingest", "{dir}/nope.txt", says="nope.txt: no such file or folder"),
    bad("one-of-two-paths-missing", "kb", "ingest", "{dir}/p.txt", "{dir}/nope", files={"p.txt": PAGE}, says="nope: no such file"),
    ingest("empty-file", "", "p.txt: empty page"),
    ingest("whitespace-only", "  \n\t\n\n", "p.txt: empty page"),
    ingest("bom-only", "\ufeff\n", "p.txt: empty page"),
    ingest("nul-byte", b"Wren Kinase Notes\nOverview\nhalf \x00 binary\n", "p.txt:3: binary file (NUL byte)"),
    ingest("utf16-text", PAGE.encode("utf-16"), "p.txt:1: binary file (NUL byte)"),
    ingest("invalid-utf8", b"Wren Kinase Notes\nOverview\n\xff\xfe wren\n", "p.txt:3: not UTF-8 text"),
    ingest("utf8-encoded-surrogate", b"Wren Kinase Notes\n\xed\xa0\x80\n", "p.txt:2: not UTF-8 text"),
    ingest("hello", "hello", "p.txt:1: not a wiki page"),
    ingest("hello-with-newline", "hello\n", "p.txt:1: not a wiki page"),
    ingest("title-only", "Wren Kinase Notes\n", "p.txt:1: not a wiki page"),
    ingest("title-and-blank-lines", "Wren Kinase Notes\n\n\n", "p.txt:1: not a wiki page"),
    ingest("banner-only", "📗 Cite This Artifact\n\n", "no page title (only banner or blank lines)"),
    ingest("starts-with-a-fact", "- Role: test fixture\nWren\n", "p.txt:1: no page title before this line"),
    ingest("starts-with-a-table", "<table>\n<tr><td>a</td><td>b</td></tr>\n</table>\n", "p.txt:1: no page title"),
    ingest("starts-with-metadata", "▸Metadata\n| slug | wren |\n", "p.txt:1: no page title"),
    ingest("starts-with-a-trailer", "No provenance edges found\n", "p.txt:1: no page title"),
    ingest("unclosed-infobox-table", page("Overview\n", OPEN_TABLE), "p.txt:4: infobox <table> is never closed"),
    ingest("infobox-row-without-value", page("Overview\n", NO_VALUE_CELL), "p.txt:5: infobox row has a label cell but no value cell"),
    ingest("unreadable-related-line", page(RELATED_LINE, "- Wren Kinase Inhibition, 0.42"), "p.txt:9: unreadable Related Hypotheses line"),
    ingest("related-bad-hypothesis-id", page("h-0a1b2c3d", "h-XYZ"), "p.txt:9: bad hypothesis id 'h-XYZ'"),
    ingest("related-score-out-of-range", page("0.42", "1.7"), "p.txt:9: score '1.7' is outside [0, 1]"),
    ingest("related-score-not-a-number", page("0.42", "high"), "p.txt:9: score 'high' is not a number"),
    ingest("second-related-section", page("▸Metadata", SECOND_RELATED), "p.txt:10: second Related Hypotheses section"),
    ingest("slug-climbs-out", page("notes-wren-kinase", "../../etc/passwd"), "p.txt:11: invalid page slug '../../etc/passwd'"),
    ingest("slug-dot-dot", page("notes-wren-kinase", ".."), "p.txt:11: invalid page slug '..'"),
    ingest("slug-with-slash", page("notes-wren-kinase", "notes/wren"), "p.txt:11: invalid page slug 'notes/wren'"),
    ingest("slug-with-space", page("notes-wren-kinase", "Notes Wren"), "p.txt:11: invalid page slug 'Notes Wren'"),
    ingest("no-slug-from-file-name", PAGE_NO_SLUG, "!!!.txt: cannot derive a page slug from the file name", name="!!!.txt"),
    ingest("esc-in-text", page("invented enzyme", "invented \x1b[31menzyme"), "p.txt:4: control character U+001B"),
    ingest("bel-in-text", page("invented enzyme", "invented \x07enzyme"), "p.txt:4: control character U+0007"),
    ingest("del-in-text", page("invented enzyme", "invented \x7fenzyme"), "p.txt:4: control character U+007F"),
    ingest("esc-in-page-title", page("Wren Kinase Notes", "Wren \x1b]0;pwned\x07Notes"), "p.txt:2: control character U+001B"),
    ingest("page-over-max-page-bytes", long_page(20), "page is larger than 1000 bytes (kb.max_page_bytes)", env={"DEBATE_KB__MAX_PAGE_BYTES": "1000"}),
    ingest("line-over-max-line-bytes", page("Overview\n", "Overview\n" + "wren " * 60 + "\n"), "p.txt:4: line of 300 bytes is longer than 200 (kb.max_line_bytes)", env={"DEBATE_KB__MAX_LINE_BYTES": "200"}),
    ingest_folder("folder-without-pages", {"notes.pdf": "%PDF-1.4", "README": "wren"}, "kb: no pages (.txt or .md files) in this folder"),
    ingest_folder("folder-with-empty-subfolder", {"sub/.keep": ""}, "kb: no pages (.txt or .md files) in this folder"),
    ingest_folder("two-pages-one-slug", {"a.txt": PAGE, "b.txt": page("Kinase Notes", "Kinase Notes Again")}, "b.txt: slug 'notes-wren-kinase' also used by a.txt"),
    # All or nothing: the good page beside a bad one is not stored either.
    ingest_folder("good-page-beside-a-bad-one", {"a.txt": PAGE, "b.txt": "hello"}, "b.txt:1: not a wiki page"),
    ingest_folder("esc-in-file-name", {"wren\x1b[2J.txt": PAGE}, "file name holds a control character U+001B"),
    ingest_folder("file-name-not-utf8", {os.fsdecode(b"wren-\xff.txt"): PAGE_NO_SLUG}, "wren-\\xff.txt: file name is not UTF-8 text (byte 0xFF at position 6)"),
]

HYPOTHESES_IMPORT = [
    bad("missing-file", "hypotheses", "import", "{dir}/nope.yaml", says="nope.yaml: no such file"),
    bad("a-directory", "hypotheses", "import", "{dir}", says="{dir}: is a directory, not a file of hypotheses"),
    imports("yaml-not-utf8", "h.yaml", b"- title: Wren \xff\n", "h.yaml: not UTF-8 text"),
    imports("csv-not-utf8", "h.csv", b"title\nWren \xe9\n", "h.csv: not UTF-8 text"),
    imports("empty-yaml", "h.yaml", "", "h.yaml: empty file"),
    imports("empty-json", "h.json", "", "h.json: empty file"),
    imports("empty-csv", "h.csv", "", "h.csv: empty file"),
    imports("whitespace-only-csv", "h.csv", "\n \n", "h.csv: empty file"),
    imports("invalid-json", "h.json", '[{"title": "Wren",]', "h.json:1: invalid JSON"),
    imports("invalid-json-line", "h.json", '[\n  {"title": "Wren"},\n  {"title" "Wren two"}\n]', "h.json:3: invalid JSON"),
    imports("invalid-yaml", "h.yaml", YAML_OK + "- title: [unclosed\n", "h.yaml:4: invalid YAML"),
    imports("yaml-tab-indent", "h.yaml", "- title: Wren\n\t- x\n", "h.yaml:2: invalid YAML"),
    imports("json-nested-100000-deep", "h.json", "[" * 100_000 + "]" * 100_000, "h.json: nested too deeply"),
    imports("yaml-nested-50000-deep", "h.yaml", "- " * 50_000 + "x\n", "h.yaml: nested too deeply"),
    imports("json-object-not-list", "h.json", '{"title": "Wren"}', "h.json: expected a list of hypotheses"),
    imports("yaml-scalar-not-list", "h.yaml", "just some words\n", "h.yaml: expected a list of hypotheses"),
    imports("hypotheses-key-not-list", "h.yaml", "hypotheses: Wren\n", "h.yaml: expected a list of hypotheses"),
    imports("json-record-not-mapping", "h.json", '[{"title": "Wren"}, 7]', "h.json:1: each hypothesis must be a mapping"),
    imports("yaml-record-not-mapping", "h.yaml", YAML_OK + "- just a title\n", "h.yaml:3: each hypothesis must be a mapping"),
    imports("json-unknown-field", "h.json", '[{"title": "Wren", "colour": "red"}]', "h.json:1: colour: Extra inputs are not permitted"),
    imports("yaml-unknown-field", "h.yaml", YAML_OK + "  colour: red\n", "h.yaml:1: colour: Extra inputs are not permitted"),
    imports("csv-unknown-column", "h.csv", "title,colour\nWren,red\n", "h.csv:1: unknown column 'colour'"),
    imports("csv-more-cells-than-header", "h.csv", CSV_HEAD + "Wren one,SOD1,0.5\nWren two,SOD1,0.5,extra\n", "h.csv:3: 1 more cell(s) than the header"),
    imports("yaml-invalid-gene", "h.yaml", YAML_OK + "- title: Wren two\n  targets: ['not a gene!']\n", "h.yaml:3: invalid gene symbol 'not a gene!'"),
    imports("json-invalid-gene", "h.json", JSON_TWO % "not a gene!", "h.json:3: invalid gene symbol 'not a gene!'"),
    imports("csv-invalid-gene", "h.csv", CSV_HEAD + "Wren one,SOD1,\nWren two,x y,\n", "h.csv:3: invalid gene symbol 'x y'"),
    imports("gene-too-long", "h.yaml", "- title: Wren\n  targets: [ABCDEFGHIJKLMNOPQRSTUVWXYZ]\n", "h.yaml:1: invalid gene symbol"),
    imports("targets-not-a-list", "h.json", '[{"title": "Wren", "targets": 5}]', "h.json:1: targets: Input should be a valid list"),
    imports("json-missing-title", "h.json", '[{"statement": "no title here"}]', "h.json:1: title: Field required"),
    imports("csv-missing-title", "h.csv", "statement\nno title here\n", "h.csv:2: title: Field required"),
    imports("empty-title", "h.yaml", '- title: ""\n', "h.yaml:1: title: String should have at least 1 character"),
    imports("title-with-no-letters", "h.yaml", "- title: '!!! ???'\n", "h.yaml:1: title: title has no letters or digits"),
    imports("title-too-long", "h.json", '[{"title": "%s"}]' % ("wren " * 70), "h.json:1: title: String should have at most 300"),
    imports("prior-above-one", "h.json", '[{"title": "Wren", "prior_score": 1.5}]', "h.json:1: prior_score: Input should be less than or equal to 1"),
    imports("prior-below-zero", "h.yaml", "- title: Wren\n  prior_score: -0.1\n", "h.yaml:1: prior_score: Input should be greater than or equal to 0"),
    imports("prior-not-a-number", "h.json", '[{"title": "Wren", "prior_score": "high"}]', "h.json:1: prior_score: Input should be a valid number"),
    imports("csv-prior-not-a-number", "h.csv", CSV_HEAD + "Wren,SOD1,abc\n", "h.csv:2: prior_score: Input should be a valid number"),
    imports("prior-nan", "h.json", '[{"title": "Wren", "prior_score": NaN}]', "h.json:1: prior_score"),
    imports("bad-id-shape", "h.yaml", "- id: h-XYZ\n  title: Wren\n", "h.yaml:1: id: hypothesis id 'h-XYZ' must be h- followed by 8"),
    imports("duplicate-id-in-file", "h.yaml", "- id: h-0000000a\n  title: Wren one\n- id: h-0000000a\n  title: Wren two\n", "h.yaml:3: duplicate hypothesis 'h-0000000a' in file"),
    imports("duplicate-title-in-file", "h.yaml", YAML_OK + "- title: 'WREN kinase: inhibition!'\n", "h.yaml:3: duplicate hypothesis"),
    imports("csv-duplicate-title", "h.csv", "title\nWren one\nwren ONE\n", "h.csv:3: duplicate hypothesis"),
    imports("title-already-stored", "h.yaml", YAML_OK + f"- title: {STORED_TITLE}\n", "h.yaml:3: title: a hypothesis with this title exists: h-9878fd9b"),
    imports("id-already-stored", "h.yaml", "- id: h-9878fd9b\n  title: Wren takes the id\n", "h.yaml:1: id: a hypothesis with this id exists"),
    imports("esc-in-title", "h.yaml", YAML_OK + '- title: "Wren \\e[31m red"\n', "h.yaml:3: title: control character U+001B"),
    imports("nul-in-statement", "h.json", '[{"title": "Wren", "statement": "a \\u0000 b"}]', "h.json:1: statement: control character U+0000"),
    imports("bel-in-csv-mechanism", "h.csv", "title,mechanisms\nWren,auto\x07phagy\n", "h.csv:2: mechanisms: control character U+0007"),
    imports("nul-in-csv", "h.csv", "title\nWren\x00kinase\n", "h.csv:2: title: control character U+0000"),
    imports("lone-surrogate-in-json", "h.json", '[{"title": "Wren \\udcff"}]', "h.json:1: title: Input should be a valid string"),
]

UNKNOWN_IDS = [
    bad("runs-show", "runs", "show", "r-000000000000", says="unknown run id 'r-000000000000'"),
    bad("runs-show-json", "runs", "show", "r-000000000000", "--json", says="unknown run id 'r-000000000000'"),
    bad("runs-cancel", "runs", "cancel", "r-000000000000", says="unknown run id 'r-000000000000'"),
    bad("transcript", "transcript", "r-000000000000", says="unknown run id 'r-000000000000'"),
    bad("transcript-html", "transcript", "r-000000000000", "--format", "html", says="unknown run id"),
    bad("transcript-empty-id", "transcript", "", says="unknown run id ''"),
    bad("hypotheses-show", "hypotheses", "show", "h-00000000", says="unknown hypothesis id 'h-00000000'"),
    bad("hypotheses-show-malformed", "hypotheses", "show", "wren", says="unknown hypothesis id 'wren'"),
    bad("hypotheses-remove", "hypotheses", "remove", "h-00000000", says="unknown hypothesis id 'h-00000000'"),
    bad("review-approve", "review", "r-000000000000", "--approve", says="unknown run id 'r-000000000000'"),
    bad("review-note", "review", "r-000000000000", "--note", "looks fine", says="unknown run id"),
    bad("related-unknown-page", "related", "notes-no-such-page", says="no KB page with slug 'notes-no-such-page'"),
    bad("related-path-as-slug", "related", "../etc/passwd", "--format", "json", says="no KB page with slug '../etc/passwd'"),
    bad("kb-show", "kb", "show", "notes-no-such-page", says="no KB page with slug"),
    bad("kb-remove", "kb", "remove", "notes-no-such-page", says="no KB page with slug"),
    bad("targets-invalid-gene", "targets", "not a gene!", says="invalid gene symbol 'not a gene!'"),
    bad("targets-empty-gene", "targets", "", says="invalid gene symbol ''"),
    bad("targets-gene-too-long", "targets", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", says="invalid gene symbol"),
    bad("run-unknown-hypothesis", "run", "h-00000000", says="unknown hypothesis id 'h-00000000'"),
    bad("run-one-known-one-unknown", "run", "h-9878fd9b", "h-00000000", "-q", says="unknown hypothesis id 'h-00000000'"),
    bad("run-resume-unknown", "run", "--resume", "r-000000000000", says="unknown run id 'r-000000000000'"),
    bad("run-no-ids", "run", says="name at least one hypothesis id"),
    bad("run-ids-and-resume", "run", "h-9878fd9b", "--resume", "{run}", says="give hypothesis ids or --resume, not both"),
    bad("scores-history-unknown", "scores", "--history", "h-00000000", says="unknown hypothesis id 'h-00000000'"),
    bad("batches-show", "batches", "show", "b-000000000000", says="unknown batch id 'b-000000000000'"),
    bad("rescore-resume-unknown", "rescore", "--resume", "b-000000000000", says="unknown batch id 'b-000000000000'"),
    bad("review-two-actions", "review", "{run}", "--approve", "--flag", says="choose one of --approve, --flag, --clear"),
    bad("review-no-action", "review", "{run}", says="give --approve, --flag, --clear or --note"),
]

BAD_VALUES = [
    bad("runs-list-unknown-status", "runs", "list", "--status", "finished", says="unknown run status 'finished'"),
    bad("runs-list-unknown-review", "runs", "list", "--review", "pending", says="unknown review status 'pending'"),
    bad("batches-list-unknown-status", "batches", "list", "--status", "finished", says="unknown batch status 'finished'"),
    bad("add-title-no-letters", "hypotheses", "add", "--title", "!!!", says="title has no letters or digits"),
    bad("add-blank-title", "hypotheses", "add", "--title", "   ", says="title: String should have at least 1 character"),
    bad("add-invalid-gene", "hypotheses", "add", "--title", "Wren", "--target", "x y", says="invalid gene symbol 'x y'"),
    bad("add-bad-id", "hypotheses", "add", "--title", "Wren", "--id", "wren", says="id: hypothesis id 'wren' must be"),
    bad("add-stored-title", "hypotheses", "add", "--title", "sod1 antisense knockdown in SOD1 ALS", says="a hypothesis with this title exists: h-9878fd9b"),
    bad("export-since-not-a-time", "export", "--out", "{dir}/out", "--changed-since", "yesterday", says="--changed-since: not an ISO 8601 time"),
    bad("export-out-is-a-file", "export", "--out", "{dir}/f.json", files={"f.json": "{}"}, says="f.json: not a folder"),
    bad("rescore-stale-after-not-a-duration", "rescore", "--stale-after", "forever", "--dry-run", says="--stale-after 'forever' is not a duration"),
    bad("rescore-ids-missing-file", "rescore", "--ids", "{dir}/ids.txt", "--dry-run", says="ids.txt: no such file"),
    bad("rescore-resume-with-selection", "rescore", "--resume", "b-000000000000", "--limit", "3", says="--resume takes no selection options"),
    bad("queue-on-sqlite", "queue", "status", says="a queue needs PostgreSQL"),
    bad("worker-on-sqlite", "worker", says="a queue needs PostgreSQL"),
    bad("db-copy-unknown-scheme", "db", "copy", "--from", "mysql://x/y", "--to", "sqlite:///{dir}/c.db", says="'mysql://x/y': must start with sqlite:///"),
    bad("db-copy-onto-itself", "db", "copy", "--from", "sqlite:///{dir}/debate.db", "--to", "sqlite:///{dir}/debate.db", says="--from and --to name the same database"),
    bad("nul-in-argument", "hypotheses", "show", "h-\x00", says="command-line argument 3: control character U+0000"),
    bad("nul-in-option-value", "hypotheses", "add", "--title", "Wren\x00", says="command-line argument 4 (after --title): control character U+0000"),
    bad("esc-in-argument", "kb", "search", "sod1\x1b[2J", says="command-line argument 3: control character U+001B"),
    bad("esc-in-note", "review", "{run}", "--flag", "--note", "odd \x1b]8;;x\x1b\\ link", says="command-line argument 5 (after --note): control character U+001B"),
    bad("esc-in-option-equals", "hypotheses", "add", "--title", "Wren", "--target=SOD1\x1b", says="(--target): control character U+001B"),
    bad("esc-in-database-option", "--db", "sqlite:///x\x1b.db", "info", says="command-line argument 2 (after --db): control character U+001B"),
    bad("argument-not-utf8", "hypotheses", "show", os.fsdecode(b"h-\xff"), says="command-line argument 3: not UTF-8 text (byte 0xFF at position 3)"),
    bad("title-not-utf8", "hypotheses", "add", "--title", os.fsdecode(b"Wren \xe9"), says="(after --title): not UTF-8 text (byte 0xE9 at position 6)"),
]

CONFIGURATION = [
    info_with("db-url-empty-sqlite-path", "in-memory SQLite database vanishes", DEBATE_DATABASE_URL="sqlite:///"),
    info_with("db-url-memory", "in-memory SQLite database vanishes", DEBATE_DATABASE_URL="sqlite:///:memory:"),
    info_with("db-url-memory-uri", "in-memory SQLite database vanishes", DEBATE_DATABASE_URL="sqlite:///file:x?mode=memory&uri=true"),
    bad("db-url-not-sqlite-file", "info", code=1, files={"notes.db": "my notes, not a database\n"}, env={"DEBATE_DATABASE_URL": "sqlite:///{dir}/notes.db"}, says="cannot open database sqlite:///{dir}/notes.db: file is not a database"),
    info_with("db-url-a-folder", "cannot open database sqlite:///{dir}: unable to open database file", 1, DEBATE_DATABASE_URL="sqlite:///{dir}"),
    info_with("db-url-folder-missing", "the database folder '{dir}/no/such' does not exist", DEBATE_DATABASE_URL="sqlite:///{dir}/no/such/x.db"),
    info_with("db-url-mysql", "bad setting database_url: must start with sqlite:/// or postgresql", DEBATE_DATABASE_URL="mysql://x/y"),
    info_with("db-url-not-a-url", "bad setting database_url", DEBATE_DATABASE_URL="notaurl"),
    info_with("db-url-empty", "bad setting database_url", DEBATE_DATABASE_URL=""),
    info_with("db-url-unknown-driver", "unusable database URL 'postgresql+nodriver://x/y'", DEBATE_DATABASE_URL="postgresql+nodriver://x/y"),
    info_with("db-url-postgres-dead", "cannot open database postgresql+psycopg://wren:***@127.0.0.1:9/db", 1, DEBATE_DATABASE_URL=f"postgresql+psycopg://wren:{SECRET}@127.0.0.1:9/db"),
    bad("db-option-mysql", "--db", "mysql://x/y", "info", says="bad setting database_url"),
    bad("db-option-memory", "--database-url", "sqlite:///:memory:", "kb", "list", says="in-memory SQLite database vanishes"),
    info_with("rounds-not-a-number", "bad setting debate.rounds: Input should be a valid integer", DEBATE_DEBATE__ROUNDS="two"),
    info_with("rounds-zero", "bad setting debate.rounds: Input should be greater than or equal to 1", DEBATE_DEBATE__ROUNDS="0"),
    info_with("rounds-empty", "bad setting debate.rounds", DEBATE_DEBATE__ROUNDS=""),
    info_with("judges-too-many", "bad setting debate.judges", DEBATE_DEBATE__JUDGES="99"),
    info_with("max-page-bytes-tiny", "bad setting kb.max_page_bytes: Input should be greater than or equal to 1000", DEBATE_KB__MAX_PAGE_BYTES="10"),
    info_with("max-line-bytes-negative", "bad setting kb.max_line_bytes", DEBATE_KB__MAX_LINE_BYTES="-1"),
    info_with("search-limit-float", "bad setting search.default_limit", DEBATE_SEARCH__DEFAULT_LIMIT="1e3"),
    info_with("timeout-zero", "bad setting openai.timeout_s: Input should be greater than 0", DEBATE_OPENAI__TIMEOUT_S="0"),
    info_with("timeout-nan", "bad setting openai.timeout_s", DEBATE_OPENAI__TIMEOUT_S="nan"),
    info_with("transport-attempts-too-many", "bad setting openai.max_transport_attempts", DEBATE_OPENAI__MAX_TRANSPORT_ATTEMPTS="100"),
    info_with("temperature-too-high", "bad setting openai.temperature", DEBATE_OPENAI__TEMPERATURE="5"),
    info_with("heartbeat-negative", "bad setting debate.heartbeat_s", DEBATE_DEBATE__HEARTBEAT_S="-5"),
    info_with("rescore-concurrency-setting-zero", "bad setting rescore.concurrency", DEBATE_RESCORE__CONCURRENCY="0"),
    info_with("unknown-backend", "bad setting backend", DEBATE_BACKEND="gpt"),
    info_with("unknown-nested-key", "bad setting openai.nope: Extra inputs are not permitted", DEBATE_OPENAI__NOPE="1"),
    info_with("rubric-not-json", "bad setting rubric: DEBATE_RUBRIC or a DEBATE_RUBRIC__* variable is not valid JSON", DEBATE_RUBRIC="novelty=1"),
    info_with("prices-not-json", "bad setting openai: DEBATE_OPENAI or a DEBATE_OPENAI__* variable is not valid JSON", DEBATE_OPENAI__PRICES="{m: 1"),
    info_with("rubric-negative-weight", "rubric weight for 'novelty' must be in [0, 1]", DEBATE_RUBRIC='{"novelty": -1}'),
    info_with("rubric-unknown-dimension", "unknown rubric dimension 'colour'", DEBATE_RUBRIC='{"colour": 0.5}'),
    info_with("price-not-a-pair", "bad setting openai.prices", DEBATE_OPENAI__PRICES='{"m": [1]}'),
    info_with("role-sampling-unknown-role", "unknown role 'chef'", DEBATE_OPENAI__ROLE_SAMPLING='{"chef": {}}'),
    info_with("structured-output-unknown", "bad setting openai.structured_output", DEBATE_OPENAI__STRUCTURED_OUTPUT="xml"),
    info_with("checkpoint-url-other-database", "bad setting checkpoint_url: must be a file path or a postgresql:// URL", DEBATE_CHECKPOINT_URL="mysql://x/y"),
    info_with("unknown-preset", "unknown preset 'wren'", DEBATE_PRESET="wren"),
    info_with("config-file-missing", "DEBATE_CONFIG_FILE {dir}/none.toml: no such file", DEBATE_CONFIG_FILE="{dir}/none.toml"),
    info_with("config-file-a-folder", "{dir}: [Errno 21] Is a directory", DEBATE_CONFIG_FILE="{dir}"),
    config_file("config-file-not-toml", "rounds = [\n", "c.toml: "),
    config_file("config-file-not-utf8", b"rounds = '\xff'\n", "c.toml: 'utf-8' codec can't decode byte 0xff"),
    config_file("config-file-holds-a-secret", f'[openai]\napi_key = "{SECRET}"\n', "c.toml: openai.api_key is a secret"),
    config_file("config-file-unknown-key", "colour = 1\n", "bad setting colour: Extra inputs are not permitted"),
    config_file("config-file-wrong-type", '[debate]\nrounds = "x"\n', "bad setting debate.rounds"),
]

MODEL_ENDPOINTS = [
    run_openai("base-url-missing-colon", "bad setting openai.base_url", DEBATE_OPENAI__BASE_URL="http//127.0.0.1:8080/v1"),
    run_openai("base-url-broken-ipv6", "bad setting openai.base_url: must be an http:// or https:// URL", DEBATE_OPENAI__BASE_URL="http://[::1"),
    run_openai("base-url-port-out-of-range", "got 'http://127.0.0.1:99999/v1'", DEBATE_OPENAI__BASE_URL="http://127.0.0.1:99999/v1"),
    run_openai("base-url-with-space", "bad setting openai.base_url", DEBATE_OPENAI__BASE_URL="http://wren host/v1"),
    run_openai("sdk-base-url-malformed", "bad setting OPENAI_BASE_URL: must be an http:// or https:// URL", OPENAI_BASE_URL="wren"),
    run_openai("no-api-key-for-openai", "no API key for OpenAI's API"),
    check_endpoint("check-base-url-ftp", "bad setting openai.base_url", DEBATE_OPENAI__BASE_URL="ftp://127.0.0.1/v1"),
    check_endpoint("check-base-url-no-host", "bad setting openai.base_url", DEBATE_OPENAI__BASE_URL="http://:8080/v1"),
    check_endpoint("check-no-api-key", "no API key for OpenAI's API"),
    check_endpoint("check-dead-endpoint", f"model endpoint {DEAD} unreachable", 1, DEBATE_OPENAI__BASE_URL=DEAD, DEBATE_OPENAI__API_KEY=SECRET),
    bad("local-model-file-missing", "run", "--backend", "local", "h-9878fd9b", "-q", env={"DEBATE_LOCAL__MODEL_PATH": "{dir}/wren.gguf"}, says="local model '{dir}/wren.gguf' is not a file"),
    bad("local-base-url-malformed", "run", "--backend", "local", "h-9878fd9b", "-q", env={"DEBATE_LOCAL__BASE_URL": "http://[::1"}, says="bad setting local.base_url"),
    bad("local-server-dead", "run", "--backend", "local", "h-9878fd9b", "-q", code=1, env={"DEBATE_LOCAL__BASE_URL": DEAD}, says=f"local model server {DEAD} unreachable"),
    bad("local-check-dead", "model", "check", "--backend", "local", code=1, env={"DEBATE_LOCAL__BASE_URL": DEAD}, says=f"local model server {DEAD} unreachable"),
]

USAGE_ERRORS = [
    pytest.param(("transcript", "{run}", "--format", "pdf"), id="transcript-format-pdf"),
    pytest.param(("related", "notes-wren-kinase", "--format", "pdf"), id="related-format-pdf"),
    pytest.param(("runs", "list", "--limit", "0"), id="runs-list-limit-zero"),
    pytest.param(("runs", "list", "--limit", "-5"), id="runs-list-limit-negative"),
    pytest.param(("runs", "list", "--limit", "ten"), id="runs-list-limit-not-a-number"),
    pytest.param(("batches", "list", "--limit", "0"), id="batches-list-limit-zero"),
    pytest.param(("kb", "search", "sod1", "--limit", "0"), id="search-limit-zero"),
    pytest.param(("kb", "search", "sod1", "--limit", "201"), id="search-limit-too-high"),
    pytest.param(("related", "notes-wren-kinase", "--limit", "0"), id="related-limit-zero"),
    pytest.param(("run", "h-9878fd9b", "--concurrency", "0"), id="run-concurrency-zero"),
    pytest.param(("run", "h-9878fd9b", "--rounds", "0"), id="run-rounds-zero"),
    pytest.param(("run", "h-9878fd9b", "--judges", "-1"), id="run-judges-negative"),
    pytest.param(("run", "h-9878fd9b", "--backend", "gpt"), id="run-unknown-backend"),
    pytest.param(("rescore", "--concurrency", "0", "--dry-run"), id="rescore-concurrency-zero"),
    pytest.param(("rescore", "--max-cost", "-1", "--dry-run"), id="rescore-max-cost-negative"),
    pytest.param(("model", "check", "--backend", "offline"), id="model-check-offline"),
    pytest.param(("runs", "show"), id="missing-argument"),
    pytest.param(("export",), id="missing-required-option"),
    pytest.param(("runs", "list", "--colour"), id="unknown-option"),
    pytest.param(("debate-everything",), id="unknown-command"),
]
# fmt: on

REFUSED = [*KB_INGEST, *HYPOTHESES_IMPORT, *UNKNOWN_IDS, *BAD_VALUES, *CONFIGURATION, *MODEL_ENDPOINTS]

# -------------------------------------------------------------------------------- running them


@dataclass
class Result:
    code: int
    out: str
    err: str
    seconds: float

    def error_line(self) -> str:
        """The one ``error: `` line; any other stderr line must be a known progress line."""
        lines = self.err.splitlines()
        errors = [line for line in lines if line.startswith("error: ")]
        assert len(errors) == 1, f"want one error line, got:\n{self.err}"
        others = [line for line in lines if not line.startswith(("error: ", *INFO_LINES))]
        assert not others, f"unexpected stderr lines:\n{self.err}"
        return errors[0]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The sample database (KB, hypotheses, one finished offline run), built once: (path, run id)."""
    from debate.core.config import load_settings

    path = tmp_path_factory.mktemp("sample") / "debate.db"
    url = f"sqlite:///{path}"
    with pytest.MonkeyPatch.context() as mp:
        for name in [k for k in os.environ if k.startswith(("DEBATE_", "OPENAI_"))]:
            mp.delenv(name)
        run_id = seed_debated_sample(url, load_settings(database_url=url))
    return path, run_id


@dataclass
class Cli:
    """Runs ``debate ARGS`` in this process against a private copy of the sample database."""

    folder: Path
    db: Path
    run_id: str
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]

    def fill(self, text: str) -> str:
        return text.replace("{dir}", str(self.folder)).replace("{run}", self.run_id)

    def __call__(self, args: tuple[str, ...], env: Mapping[str, str] | None = None) -> Result:
        from debate.cli import main

        for name, value in (env or {}).items():
            self.monkeypatch.setenv(name, self.fill(value))
        self.monkeypatch.setattr(sys, "argv", ["debate", *(self.fill(a) for a in args)])
        self.capsys.readouterr()
        start = time.monotonic()
        with pytest.raises(SystemExit) as exit_:
            main()
        seconds = time.monotonic() - start
        out, err = self.capsys.readouterr()
        code = exit_.value.code
        return Result(code if isinstance(code, int) else int(code is not None), out, err, seconds)

    def counts(self) -> dict[str, int]:
        with sqlite3.connect(self.db) as conn:
            return {name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in TABLES}

    def write(self, files: Mapping[str, str | bytes]) -> None:
        for name, content in files.items():
            path = self.folder / self.fill(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")


@pytest.fixture
def cli(
    sample: tuple[Path, str],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    # A short folder name keeps the "database: ..." line on one line of stderr.
    folder = tmp_path_factory.mktemp("case")
    src, run_id = sample
    url = private_copy(src, folder / "debate.db")
    for name in [k for k in os.environ if k.startswith(("DEBATE_", "OPENAI_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DEBATE_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")
    return Cli(folder, folder / "debate.db", run_id, monkeypatch, capsys)


def assert_clean(result: Result) -> None:
    both = result.out + result.err
    assert "Traceback" not in both, both
    assert SECRET not in both, both
    assert "\x1b" not in result.err, result.err


# -------------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("case", REFUSED)
def test_bad_input_is_refused_with_one_error_line_and_nothing_written(cli: Cli, case: Bad) -> None:
    cli.write(case.files)
    before = cli.counts()

    result = cli(case.args, case.env)

    assert_clean(result)
    assert result.code == case.code, result.err
    assert cli.fill(case.says) in result.error_line()
    assert cli.counts() == before, "a refused command changed the database"


@pytest.mark.parametrize("args", USAGE_ERRORS)
def test_usage_errors_exit_2_with_clicks_message(cli: Cli, args: tuple[str, ...]) -> None:
    before = cli.counts()

    result = cli(args)

    assert_clean(result)
    assert result.code == 2, result.err
    assert "Usage:" in result.err and "Error" in result.err, result.err
    assert cli.counts() == before


def test_a_dead_endpoint_fails_the_run_fast_without_retrying(cli: Cli) -> None:
    import debate.engine.runs  # noqa: F401  (imported up front: the import is not what is timed)
    import debate.llm.client  # noqa: F401

    before = cli.counts()

    result = cli(
        ("run", "--backend", "openai", "h-9878fd9b", "-q"),
        {"DEBATE_OPENAI__BASE_URL": DEAD, "DEBATE_OPENAI__API_KEY": SECRET},
    )

    assert_clean(result)
    assert result.code == 1, result.err
    line = result.error_line()
    assert f"model endpoint {DEAD} unreachable" in line and " after " not in line, line
    assert result.seconds < 5, f"took {result.seconds:.1f} s: a refused connection must not be retried"
    with sqlite3.connect(cli.db) as conn:
        [(run_id, status, error)] = conn.execute(
            "SELECT id, status, error FROM runs WHERE backend = 'openai'"
        ).fetchall()
        calls = conn.execute("SELECT role, kind, outcome FROM attempts WHERE run_id = ?", (run_id,)).fetchall()
    assert status == "failed" and DEAD in error  # recorded as failed, not left queued
    assert calls == [("proposer", "first", "connection_error")]  # one call: no retry, no further turn
    assert cli.counts() == before | {"runs": before["runs"] + 1}


def test_skip_bad_ingests_the_good_pages_and_lists_the_bad(cli: Cli) -> None:
    cli.write({"kb/good.txt": PAGE, "kb/hello.txt": "hello", "kb/esc.txt": page("invented", "\x1b[8minvented")})
    before = cli.counts()

    result = cli(("kb", "ingest", "{dir}/kb", "--skip-bad"))

    assert_clean(result)
    assert result.code == 1, result.err
    assert "pages: 1 added" in result.out
    skipped = [line for line in result.err.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 2, result.err
    assert skipped[0].startswith("skipped esc.txt:4: control character U+001B")
    assert skipped[1].startswith("skipped hello.txt:1: not a wiki page")
    assert cli.counts()["pages"] == before["pages"] + 1


def test_a_refused_import_keeps_none_of_the_good_records(cli: Cli) -> None:
    # All or nothing: the first two records are new, the third repeats a stored title.
    trem2 = "TREM2 Agonism to Boost Microglial Plaque Containment"
    cli.write({"h.yaml": f"{YAML_OK}- title: Wren two\n- title: {trem2}\n"})
    before = cli.counts()

    result = cli(("hypotheses", "import", "{dir}/h.yaml"))

    assert result.code == 2 and "h.yaml:4: title: a hypothesis with this title exists" in result.error_line()
    assert cli.counts() == before
    again = cli(("hypotheses", "import", "{dir}/h.yaml", "--update"))  # the same file, allowed to update
    assert again.code == 0, again.err
    assert cli.counts()["hypotheses"] == before["hypotheses"] + 2


def test_the_tables_hold_over_100_distinct_cases_mostly_not_usage_errors() -> None:
    ids = [p.id for p in [*REFUSED, *USAGE_ERRORS]]
    assert len(ids) == len(set(ids)) >= 100
    cases = [p.values[0] for p in REFUSED]
    keys = {(c.args, tuple(sorted(c.files.items())), tuple(sorted(c.env.items()))) for c in cases}
    assert len(keys) == len(cases)
    assert len(USAGE_ERRORS) * 4 < len(ids)


def test_argument_bytes_that_are_not_utf8_are_refused_by_the_real_entry_point(
    sample: tuple[Path, str], tmp_path: Path
) -> None:
    # Only a real process gets its arguments from the OS as bytes (decoded with surrogates).
    url = private_copy(sample[0], tmp_path / "debate.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEBATE_", "OPENAI_"))}
    title = os.fsdecode(b"Wren \xff kinase")

    proc = run_cli("hypotheses", "add", "--title", title, env={**env, "DEBATE_DATABASE_URL": url}, check=False)

    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "error: command-line argument 4 (after --title): not UTF-8 text (byte 0xFF at position 6)"
    ]
