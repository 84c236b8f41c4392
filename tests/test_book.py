"""The book's build driver, and the built book checked in a headless browser.

The fast tests check the driver's rules (toc against sources, parameters, failures). The test
marked ``book`` builds the whole book in the ``smoke`` profile through the same driver as
``make book``, serves the HTML on 127.0.0.1 and opens every page in headless Chromium
(``scripts/install_chromium.sh`` installs it). Set ``DEEPSTOCK_BOOK_SCREENSHOTS`` to a folder to
keep the screenshots it takes of each page.
"""

from __future__ import annotations

import functools
import html
import http.server
import io
import json
import os
import queue
import re
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from deepstock.tools.book import (
    GENERATED_PREFIX,
    PROFILE_NAMES,
    BookBuildError,
    BookLayout,
    NotebookExecutionError,
    build_book,
    chapter_defaults,
    chapter_sources,
    check_toc,
    execute_chapter,
    parse_override,
    provenance,
    read_chapter,
    toc_files,
)

ROOT = Path(__file__).resolve().parent.parent

_HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3 (ipykernel)
  language: python
  name: python3
---
"""


def _chapter(body: str) -> str:
    return _HEADER + "\n# A test chapter\n\n" + body


_PARAMETERS = """```{code-cell} ipython3
:tags: [parameters]

profile = "quick"
device = "auto"
answer = 1
```
"""


def _toy_project(tmp_path: Path, chapters: dict[str, str], toc_chapters: list[str]) -> BookLayout:
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text("# Intro\n", encoding="utf-8")
    for name, text in chapters.items():
        (tmp_path / "notebooks" / f"{name}.md").write_text(text, encoding="utf-8")
    lines = ["format: jb-book", "root: book/intro", "chapters:"]
    lines += [f"  - file: {GENERATED_PREFIX}{name}" for name in toc_chapters]
    (tmp_path / "_toc.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return BookLayout(tmp_path)


# ---------------------------------------------------------------------- the project's own book
def test_project_toc_lists_every_chapter_source_once() -> None:
    layout = BookLayout(ROOT)
    chapters = check_toc(layout)
    assert sorted(chapters) == sorted(chapter_sources(layout))
    assert len(chapters) == len(set(chapters))
    assert toc_files(layout.toc)[0] == "book/intro"


@pytest.mark.parametrize("name", sorted(chapter_sources(BookLayout(ROOT))))
def test_chapter_sources_have_the_house_shape(name: str) -> None:
    source = ROOT / "notebooks" / f"{name}.md"
    notebook = read_chapter(source)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"({name})=")
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert "profile =" in tagged[0].source and "device =" in tagged[0].source
    # no committed outputs: the sources are text, and jupytext gives no outputs
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert f'provenance(\n    profile, device, chapter="{name}", values=globals()\n)' in code
    # papermill reads each parameter line itself (its help text is the comment); a line it
    # cannot parse (an "=" in the comment) makes it warn that an override is unknown
    from papermill.translators import PythonTranslator

    parsed = {p.name for p in PythonTranslator.inspect({"source": tagged[0].source})}
    assert parsed == set(chapter_defaults(name)), f"papermill cannot parse: {tagged[0].source}"
    # Code wider than this scrolls sideways in the book's text column.
    wide = [line for line in code.splitlines() if len(line) > 79]
    assert not wide, f"code lines over 79 characters: {wide}"


# ---------------------------------------------------------------------- driver rules
def test_check_toc_rejects_a_source_missing_from_the_toc(tmp_path: Path) -> None:
    layout = _toy_project(tmp_path, {"a": _chapter(_PARAMETERS), "b": _chapter(_PARAMETERS)}, ["a"])
    with pytest.raises(BookBuildError, match=r"notebooks/b\.md is not in _toc\.yml"):
        check_toc(layout)


def test_check_toc_rejects_an_entry_without_source(tmp_path: Path) -> None:
    layout = _toy_project(tmp_path, {"a": _chapter(_PARAMETERS)}, ["a", "ghost"])
    with pytest.raises(
        BookBuildError, match=r"book/generated/ghost but there is no chapter source"
    ):
        check_toc(layout)


def test_parse_override_reads_yaml_values() -> None:
    assert parse_override("lead_time", "3") == ("lead_time", 3)
    assert parse_override("h", "0.25") == ("h", 0.25)
    assert parse_override("flag", "true") == ("flag", True)
    assert parse_override("sizes", "[1, 2]") == ("sizes", [1, 2])
    assert parse_override("name", "setting2") == ("name", "setting2")
    with pytest.raises(ValueError, match="identifier"):
        parse_override("lead-time", "3")


def test_provenance_states_profile_date_and_version() -> None:
    line = provenance("smoke", "cpu")
    assert "profile `smoke`" in line and "device `cpu`" in line
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", line)
    assert "deepstock 0.1.0" in line
    with pytest.raises(ValueError, match="profile"):
        provenance("fast")
    assert set(PROFILE_NAMES) >= {"smoke", "quick", "paper"}


def test_provenance_lists_the_parameters_that_differ_from_the_chapter_defaults() -> None:
    defaults = chapter_defaults("settings")
    assert defaults["seed"] == 0 and defaults["lost_sales"] is None
    values = {**defaults, "device": "cpu", "seed": 3, "lost_sales": True}
    line = provenance("smoke", "cpu", chapter="settings", values=values)
    assert "parameters `seed = 3`, `lost_sales = True`" in line
    assert "device `cpu`" in line and "device = " not in line  # shown once, as the device
    line = provenance("smoke", "cpu", chapter="settings", values=defaults)
    assert "default parameters" in line
    with pytest.raises(ValueError, match="unknown chapter 'nowhere'"):
        chapter_defaults("nowhere")


def test_build_book_rejects_unknown_override_and_profile(tmp_path: Path) -> None:
    _toy_project(tmp_path, {"a": _chapter(_PARAMETERS)}, ["a"])
    with pytest.raises(BookBuildError, match="'lead_time' is declared by none"):
        build_book("smoke", "cpu", root=tmp_path, overrides={"lead_time": 2}, html=False)
    with pytest.raises(ValueError, match="profile"):
        build_book("huge", "cpu", root=tmp_path, html=False)
    with pytest.raises(ValueError, match="with --profile"):
        build_book("smoke", "cpu", root=tmp_path, overrides={"profile": "paper"}, html=False)


def test_the_committed_profile_builds_its_chapters_from_the_store_alone(tmp_path: Path) -> None:
    body = _PARAMETERS.replace("answer = 1", "stored_only = False") + (
        "\n```{code-cell} ipython3\nprint('stored_only', stored_only)\n```\n"
    )
    layout = _toy_project(tmp_path, {"a": _chapter(body), "b": _chapter(_PARAMETERS)}, ["a", "b"])

    def printed(profile: str, **options) -> str:
        build_book(profile, "cpu", root=tmp_path, html=False, force=True, **options)
        notebook = nbformat.read(layout.generated_notebook("a"), as_version=4)
        return "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))

    assert "stored_only True" in printed("quick")  # the committed results: never train
    assert "stored_only False" in printed("smoke")  # nothing committed: train
    assert "stored_only False" in printed("quick", stored_only=False)
    with pytest.raises(ValueError, match="with --stored-only"):
        build_book("quick", "cpu", root=tmp_path, overrides={"stored_only": True}, html=False)


_FALLBACK_BODY = """```{code-cell} ipython3
:tags: [parameters]

profile = "quick"
device = "auto"
stored_only = False
```

```{code-cell} ipython3
from pathlib import Path

from deepstock.results.store import MissingRunError
from deepstock.tools.book import provenance

Path("attempts.txt").open("a").write(profile + "\\n")
if profile == "paper" and FAILS:
    raise MissingRunError("tuning setting1-ds-base", 3, 3, Path("store"))
print(provenance(profile, device, values=globals()))
```
"""


def test_paper_pages_fall_back_to_quick_with_a_banner(tmp_path: Path, isolated_results) -> None:
    chapters = {
        "stored": _chapter(_FALLBACK_BODY.replace("FAILS", "True")),
        "computed": _chapter(
            _PARAMETERS + "\n```{code-cell} ipython3\nprint('profile', profile)\n```\n"
        ),
    }
    layout = _toy_project(tmp_path, chapters, list(chapters))

    def outputs(name: str) -> str:
        notebook = nbformat.read(layout.generated_notebook(name), as_version=4)
        return "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))

    attempts = tmp_path / "attempts.txt"
    # an empty paper store: every page is built with quick at once, and says so
    build_book("paper", "cpu", root=tmp_path, html=False)
    assert attempts.read_text().split() == ["quick"]
    assert "Profile `quick`, not `paper`" in outputs("stored")
    assert "profile quick" in outputs("computed")

    # a paper store with some runs: the page is tried with paper, then built with quick
    shard = isolated_results / "results" / "paper" / "runs" / "00"
    shard.mkdir(parents=True)
    (shard / f"{'0' * 32}.json").write_text("{}")
    attempts.unlink()
    build_book("paper", "cpu", root=tmp_path, html=False, force=True, only=["stored"])
    assert attempts.read_text().split() == ["paper", "quick"]
    assert "Profile `quick`, not `paper`" in outputs("stored")

    # the page's paper runs present: built with paper, no banner
    (tmp_path / "notebooks" / "stored.md").write_text(
        _chapter(_FALLBACK_BODY.replace("FAILS", "False"))
    )
    build_book("paper", "cpu", root=tmp_path, html=False, only=["stored"])
    assert "profile `paper`" in outputs("stored") and "not `paper`" not in outputs("stored")

    # without the fallback a missing run fails the page, naming it
    (tmp_path / "notebooks" / "stored.md").write_text(chapters["stored"])
    with pytest.raises(BookBuildError, match="MissingRunError.*setting1-ds-base"):
        build_book("paper", "cpu", root=tmp_path, html=False, only=["stored"], fallback=False)
    # quick asks for no fallback: its pages carry no banner
    build_book("quick", "cpu", root=tmp_path, html=False, only=["stored"])
    assert "not `" not in outputs("stored")


def test_chapter_without_required_parameters_is_rejected(tmp_path: Path) -> None:
    body = "```{code-cell} ipython3\n:tags: [parameters]\n\nanswer = 1\n```\n"
    layout = _toy_project(tmp_path, {"a": _chapter(body)}, ["a"])
    with pytest.raises(BookBuildError, match=r"must assign \['profile', 'device'\]"):
        execute_chapter(
            "a", layout.sources / "a.md", layout.generated_notebook("a"), {}, cwd=tmp_path
        )


def test_execute_chapter_injects_parameters_and_fails_cleanly(tmp_path: Path) -> None:
    good = _chapter(_PARAMETERS + '\n```{code-cell} ipython3\nprint("answer is", answer)\n```\n')
    bad = _chapter(
        _PARAMETERS
        + '\n```{code-cell} ipython3\nraise ValueError(f"boom {answer}")\n```\n'
        + '\n```{code-cell} ipython3\nprint("never runs")\n```\n'
    )
    layout = _toy_project(tmp_path, {"good": good, "bad": bad}, ["good", "bad"])
    parameters = {"profile": "smoke", "device": "cpu", "answer": 42}

    run = execute_chapter(
        "good",
        layout.sources / "good.md",
        layout.generated_notebook("good"),
        parameters,
        cwd=tmp_path,
    )
    assert run.chapter == "good" and run.seconds > 0
    executed = nbformat.read(layout.generated_notebook("good"), as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "hide-input" in injected[0].metadata["tags"]
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("answer is 42" in o.get("text", "") for o in outputs)
    assert executed.metadata["papermill"]["input_path"] == "notebooks/good.md"
    assert executed.metadata["papermill"]["parameters"]["answer"] == 42

    # A stale successful output of the failing chapter must disappear with the failure.
    stale = layout.generated_notebook("bad")
    shutil.copy(layout.generated_notebook("good"), stale)
    with pytest.raises(NotebookExecutionError, match=r"chapter 'bad' failed: ValueError: boom 42"):
        execute_chapter("bad", layout.sources / "bad.md", stale, parameters, cwd=tmp_path)
    assert not stale.exists()
    failed = layout.failed / "bad.ipynb"
    assert failed.is_file()
    leftovers = [p.name for p in layout.generated.iterdir() if p.name.startswith(".")]
    assert leftovers == []


# ---------------------------------------------------------------------- the browser check
_CHECK_SCRIPT = """
<script>
function deepstockReport() {
  var article = document.querySelector("article") || document.body;
  var result = {
    title: document.title,
    h1: Array.from(article.querySelectorAll("h1")).map(function (e) { return e.textContent; }),
    images: Array.from(document.images).map(function (i) {
      return {src: i.getAttribute("src"), complete: i.complete, width: i.naturalWidth};
    }),
    figureImages: article.querySelectorAll("figure img").length,
    tables: article.querySelectorAll("table").length,
    math: article.querySelectorAll(".math").length,
    typeset: article.querySelectorAll("mjx-container").length,
    mathErrors: Array.from(article.querySelectorAll("mjx-merror")).map(function (e) {
      return e.getAttribute("data-mjx-error") || e.textContent;
    }),
    errorOutputs: article.querySelectorAll(
      ".output.error, .output.traceback, .output.stderr, .cell_output .stder").length,
    traceback: article.innerText.indexOf("Traceback (most recent call last)") >= 0,
    textLength: article.innerText.length,
    height: document.documentElement.scrollHeight
  };
  var pre = document.createElement("pre");
  pre.id = "deepstock-browser-check";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
}
window.addEventListener("load", function () {
  if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
    window.MathJax.startup.promise.then(deepstockReport, deepstockReport);
  } else {
    deepstockReport();
  }
});
</script>
"""

#: The pages load MathJax from the book itself (``_static/mathjax``, copied in by the build), so
#: the check needs no network and requires every formula to typeset.


class _CheckingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the built book, adding the check script to every HTML page."""

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            path = path / "index.html"
        if path.suffix != ".html" or not path.is_file():
            return super().send_head()
        text = path.read_text(encoding="utf-8").replace("</body>", _CHECK_SCRIPT + "</body>", 1)
        body = text.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def log_message(self, format, *args):  # keep the test output quiet
        pass


def _chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _chromium_command(binary: str, profile_dir: Path) -> list[str]:
    return [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        # Anything not on 127.0.0.1 (MathJax's CDN) fails at once instead of waiting on DNS.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={profile_dir}",
        "--virtual-time-budget=8000",
    ]


def _expected_counts(layout: BookLayout, entry: str) -> tuple[int, int, bool]:
    """(tables, figures with an image, has math) that the page ``entry`` must show."""
    if entry.startswith(GENERATED_PREFIX):
        notebook = nbformat.read(layout.root / f"{entry}.ipynb", as_version=4)
        markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
        outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        html_tables = sum(
            "<table" in "".join(o.get("data", {}).get("text/html", "")) for o in outputs
        )
        figures = sum(
            1
            for c in notebook.cells
            if c.cell_type == "code" and "figure" in c.metadata.get("mystnb", {})
            for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})
        )
    else:
        markdown = (layout.root / f"{entry}.md").read_text(encoding="utf-8")
        html_tables, figures = 0, 0
    markdown_tables = len(re.findall(r"^\|[-:| ]+\|\s*$", markdown, flags=re.M))
    prose = re.sub(r"```.*?```", "", markdown, flags=re.S)  # code blocks may hold "$"
    prose = re.sub(r"`[^`]*`", "", prose)
    has_math = "{math}" in markdown or "$" in prose
    return html_tables + markdown_tables, figures, has_math


def _check_page(
    binary: str, url: str, entry: str, layout: BookLayout, shots: Path, profile: Path
) -> None:
    """Open one page of the built book in headless Chromium and check what a reader sees."""
    command = _chromium_command(binary, profile)
    dom = subprocess.run(
        [*command, "--dump-dom", url], capture_output=True, text=True, timeout=120
    ).stdout
    found = re.search(r'<pre id="deepstock-browser-check"[^>]*>(.*?)</pre>', dom, flags=re.S)
    assert found, f"{entry}: the page did not finish loading in Chromium"
    check = json.loads(html.unescape(found.group(1)))

    assert check["title"].strip(), f"{entry}: empty <title>"
    assert len(check["h1"]) == 1 and check["h1"][0].strip(), f"{entry}: {check['h1']}"
    assert check["textLength"] > 300, f"{entry}: almost no text"
    assert not check["traceback"], f"{entry}: shows a traceback"
    assert check["errorOutputs"] == 0, f"{entry}: shows error or stderr output"
    broken = [i["src"] for i in check["images"] if not i["complete"] or i["width"] == 0]
    assert not broken, f"{entry}: images that did not load: {broken}"
    tables, figures, has_math = _expected_counts(layout, entry)
    assert check["tables"] >= tables, f"{entry}: {check['tables']} tables < {tables}"
    assert check["figureImages"] >= figures, f"{entry}: {check['figureImages']} figures < {figures}"
    if has_math:
        assert check["math"] > 0, f"{entry}: math expected, none in the page"
        assert check["typeset"] >= check["math"], f"{entry}: math not typeset"
    assert not check["mathErrors"], f"{entry}: TeX errors {check['mathErrors']}"

    shot = shots / f"{entry.replace('/', '__')}.png"
    height = min(max(int(check["height"]), 800), 12_000)  # the whole page
    subprocess.run(
        [*command, f"--window-size=1280,{height}", f"--screenshot={shot}", url],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.is_file() and shot.stat().st_size > 10_000, f"{entry}: no screenshot"


@pytest.mark.book
def test_smoke_book_renders_in_chromium(tmp_path: Path) -> None:
    binary = _chromium()
    if binary is None:
        pytest.skip("no Chromium on PATH; install it with scripts/install_chromium.sh")

    # Build a copy of the book's sources, so the test never touches the checkout's build.
    root = tmp_path / "project"
    root.mkdir()
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("generated"))
    # two chapters at a time: CI and this machine have two cores (a chapter uses one thread)
    index = build_book("smoke", "cpu", root=root, jobs=2)
    layout = BookLayout(root)
    assert index == layout.html / "index.html"

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_CheckingHandler, directory=str(layout.html))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    shots = Path(os.environ.get("DEEPSTOCK_BOOK_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        # Chromium mostly waits on a page (its virtual time budget), so two pages at a time;
        # each worker has a profile folder of its own (Chromium locks the one it uses)
        profiles: queue.Queue[Path] = queue.Queue()
        for number in range(2):
            profiles.put(tmp_path / f"chromium-profile-{number}")

        def check(entry: str) -> None:
            profile = profiles.get()
            try:
                _check_page(binary, f"{base}/{entry}.html", entry, layout, shots, profile)
            finally:
                profiles.put(profile)

        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(check, toc_files(layout.toc)))  # re-raises a page's failed check
    finally:
        server.shutdown()
        server.server_close()
