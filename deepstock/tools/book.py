"""Build the companion book: execute the chapter notebooks, then render the HTML.

``python -m deepstock.tools.book --profile paper --device auto`` (what ``make book`` runs):

1. checks ``_toc.yml`` against the chapter sources (see *Layout* below);
2. converts each chapter source ``notebooks/<name>.md`` (a MyST Markdown notebook, jupytext) to a
   notebook and executes it with papermill, in a kernel running this interpreter, with the
   parameters ``profile``, ``device``, ``stored_only`` (when the chapter declares it: build the
   tables from the result store alone; on by default for the committed profiles ``quick`` and
   ``paper``) and any ``-p NAME VALUE`` override the chapter declares in its cell tagged
   ``parameters``. With ``paper`` (the default), a page whose paper-profile runs are not in the
   store is built with ``quick`` and shows a banner saying so (:data:`PROFILE_FALLBACKS`);
3. runs ``jupyter-book build . -W -n --keep-going --all`` (every warning is an error, every page is
   rebuilt so that no warning hides in an unchanged page) and prints where the HTML is.

Layout. The chapter sources live in ``notebooks/`` with no outputs; their executed notebooks go
to ``book/generated/<name>.ipynb`` (git-ignored), which is what ``_toc.yml`` lists (as
``book/generated/<name>``) and what Jupyter Book renders, with Jupyter Book's own execution
switched off. Static pages (intro, prose chapters) live in ``book/``. The toc is kept valid by
:func:`check_toc`: every ``book/generated/<name>`` entry must have a source ``notebooks/<name>.md``
and every source must be listed, so a chapter is added by writing its source and one toc line.

A notebook that raises fails the command with the chapter's name and the error. It never reaches
the book: papermill writes to a temporary file that replaces ``book/generated/<name>.ipynb`` only
after a clean run; a failed run is kept as ``book/generated/_failed/<name>.ipynb`` for inspection
and the chapter's previous output is deleted, so that a stale page cannot pass for a fresh one.

:func:`provenance` gives the line (profile, date, code version) that every results page shows.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepstock import __version__
from deepstock.core.files import atomic_write, checkout_root
from deepstock.model.simulator import resolve_device
from deepstock.results.store import ResultStore
from deepstock.tuning.profiles import PROFILES as _PROFILE_TABLE

__all__ = [
    "CHAPTER_SUFFIX",
    "COMMITTED_PROFILES",
    "DRIVER_PARAMETERS",
    "INJECTED_PARAMETERS",
    "PROFILE_FALLBACKS",
    "GENERATED_PREFIX",
    "PROFILE_NAMES",
    "REQUIRED_PARAMETERS",
    "BookBuildError",
    "BookLayout",
    "ChapterRun",
    "NotebookExecutionError",
    "build_book",
    "build_html",
    "chapter_cache_key",
    "chapter_sources",
    "chapter_defaults",
    "check_toc",
    "code_version",
    "execute_chapter",
    "main",
    "parse_override",
    "provenance",
    "toc_files",
]

#: The run profiles a chapter accepts; their budgets are defined in :mod:`deepstock.tuning.profiles`.
PROFILE_NAMES: tuple[str, ...] = tuple(_PROFILE_TABLE)

#: Parameters every chapter declares in its cell tagged ``parameters``.
REQUIRED_PARAMETERS: tuple[str, ...] = ("profile", "device")

#: Parameters the driver sets itself in every chapter that declares them (not with ``-p``):
#: ``stored_only``, whether the chapter builds its tables from the result store alone.
DRIVER_PARAMETERS: tuple[str, ...] = ("stored_only",)

#: Parameters the driver may inject into a chapter that does not declare them:
#: ``requested_profile``, the profile asked for when a page is built with its fallback (the
#: page's :func:`provenance` line then says so).
INJECTED_PARAMETERS: tuple[str, ...] = ("requested_profile",)

#: The profiles whose results the repository commits (or will): their books are built from the
#: store alone by default (a missing run is an error, not a training run).
COMMITTED_PROFILES: tuple[str, ...] = ("quick", "paper")

#: The profile a page is built with when the store lacks the runs of the profile asked for
#: (``make book`` asks for ``paper``): the page then says so in a banner under its run line.
PROFILE_FALLBACKS: Mapping[str, str] = {"paper": "quick"}

#: How a chapter source is named: ``notebooks/<name>.md``.
CHAPTER_SUFFIX = ".md"

#: Where ``_toc.yml`` finds the executed chapters: ``book/generated/<name>``.
GENERATED_PREFIX = "book/generated/"

_FAILED_DIR = "_failed"


class BookBuildError(RuntimeError):
    """The book could not be built; the message says which step and why."""


class NotebookExecutionError(BookBuildError):
    """A chapter notebook raised while executing.

    Attributes:
        chapter: the chapter's name (``notebooks/<chapter>.md``).
        error: the exception as ``"Name: message"``.
        failed_notebook: the partially executed notebook kept for inspection.
    """

    def __init__(self, chapter: str, error: str, failed_notebook: Path | None) -> None:
        where = f" (executed notebook kept at {failed_notebook})" if failed_notebook else ""
        super().__init__(f"chapter {chapter!r} failed: {error}{where}")
        self.chapter = chapter
        self.error = error
        self.failed_notebook = failed_notebook

    def __reduce__(self):  # keeps the attributes when raised in a worker process
        return (type(self), (self.chapter, self.error, self.failed_notebook))


@dataclass(frozen=True)
class BookLayout:
    """Where the book's files are, relative to the project root ``root``."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "_config.yml"

    @property
    def toc(self) -> Path:
        return self.root / "_toc.yml"

    @property
    def sources(self) -> Path:
        """The chapter sources, ``notebooks/<name>.md``."""
        return self.root / "notebooks"

    @property
    def generated(self) -> Path:
        """The executed chapters, ``book/generated/<name>.ipynb``."""
        return self.root / GENERATED_PREFIX.rstrip("/")

    @property
    def failed(self) -> Path:
        return self.generated / _FAILED_DIR

    @property
    def html(self) -> Path:
        return self.root / "_build" / "html"

    def generated_notebook(self, chapter: str) -> Path:
        return self.generated / f"{chapter}.ipynb"


@dataclass(frozen=True)
class ChapterRun:
    """The outcome of executing one chapter.

    Attributes:
        chapter: the chapter's name.
        seconds: wall-clock time of the execution, seconds.
        stderr: the first line of each stderr output of the executed notebook (the book does
            not show stderr; the driver reports it on the console).
    """

    chapter: str
    seconds: float
    stderr: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------- provenance
def project_root() -> Path:
    """The checkout this package lives in (the folder holding ``pyproject.toml``)."""
    root = checkout_root()
    if root is None:
        raise BookBuildError(
            "the package is not in a checkout of the project (no pyproject.toml beside "
            "deepstock/): the book is built from a checkout; pass --root to point at one"
        )
    return root


def _git(repo: Path, *arguments: str) -> str:
    """The stripped output of ``git ARGUMENTS`` in ``repo`` (raises on failure)."""
    return subprocess.run(
        ["git", *arguments], cwd=repo, capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def code_version() -> str:
    """``"deepstock <version>, commit <hash>"`` (``+ local changes`` when the tree is dirty).

    The commit part is left out when git or the repository is not available.
    """

    text = f"deepstock {__version__}"
    repo = checkout_root()
    if repo is None:
        return text
    try:
        commit = _git(repo, "rev-parse", "--short=10", "HEAD")
        dirty = _git(repo, "status", "--porcelain", "--untracked-files=no", "--", "deepstock")
    except (OSError, subprocess.SubprocessError):
        return text
    if commit:
        text += f", commit `{commit}`"
        if dirty:
            text += " + local changes to the package"
    return text


def provenance(
    profile: str,
    device: str | None = None,
    *,
    chapter: str | None = None,
    values: Mapping[str, Any] | None = None,
) -> str:
    """One Markdown line stating how a page's numbers were made.

    Args:
        profile: the run profile, one of :data:`PROFILE_NAMES`.
        device: the device the page computed on (for example ``"cpu"``); left out when ``None``.
        chapter, values: the page's chapter name and its variables (``globals()``): the line
            then lists every parameter whose value differs from the default that the chapter's
            cell tagged ``parameters`` declares (:func:`chapter_defaults`), apart from the
            profile and the device, which it always shows.

    Returns:
        For example ``"**Run:** profile `smoke` · device `cpu` · parameters `seed = 3` ·
        2025-11-02 14:03 UTC · deepstock 0.1.0, commit `ab12cd34ef`"``. When ``values`` holds
        ``requested_profile`` (set by :func:`build_book` on a page it built with a fallback
        profile, :data:`PROFILE_FALLBACKS`) and it differs from ``profile``, a banner follows
        the line saying which profile was asked for and why the page shows another.
    """
    _check_profile(profile)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"profile `{profile}`"]
    if device is not None:
        parts.append(f"device `{device}`")
    if chapter is not None and values is not None:
        changed = [
            f"`{name} = {values[name]!r}`"
            for name, default in chapter_defaults(chapter).items()
            if name not in (*REQUIRED_PARAMETERS, *DRIVER_PARAMETERS)
            and name in values
            and values[name] != default
        ]
        parts.append("parameters " + ", ".join(changed) if changed else "default parameters")
        if values.get("stored_only"):
            parts.append("results read from the store")
    parts += [stamp, code_version()]
    line = "**Run:** " + " · ".join(parts)
    requested = (values or {}).get("requested_profile")
    if requested is not None and requested != profile:
        if "stored_only" in (values or {}):
            reason = (
                f"The result store does not hold the `{requested}` profile's runs of this page "
                f"yet, so it shows those of the `{profile}` profile, a smaller budget"
            )
        else:
            reason = (
                f"This page computes its numbers while the book is built; it does so at the "
                f"`{profile}` budget, the book's fallback for `{requested}`"
            )
        line += (
            f"\n\n> **Profile `{profile}`, not `{requested}`.** {reason} (the *Methods* "
            "chapter compares the budgets; *Re-run and extend* says how to compute the rest)."
        )
    return line


def chapter_defaults(chapter: str, root: Path | None = None) -> dict[str, Any]:
    """The default value of each parameter that ``notebooks/<chapter>.md`` declares in its cell
    tagged ``parameters`` (Python literals; a name assigned anything else is left out)."""
    import ast

    layout = BookLayout(project_root() if root is None else Path(root))
    source = layout.sources / f"{chapter}{CHAPTER_SUFFIX}"
    if not source.is_file():
        raise ValueError(f"unknown chapter {chapter!r}: {source} does not exist")
    notebook = read_chapter(source)
    _declared_parameters(notebook, chapter)  # exactly one well-formed parameters cell
    cell = next(
        c
        for c in notebook.cells
        if c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", [])
    )
    defaults: dict[str, Any] = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                try:
                    defaults[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    continue
    return defaults


def _check_profile(profile: str) -> None:
    if profile not in PROFILE_NAMES:
        raise ValueError(f"profile must be one of {PROFILE_NAMES}, got {profile!r}")


def _check_device(device: str) -> None:
    # The chapters resolve "auto" themselves; an explicit device is checked here, so that a
    # missing GPU fails before any chapter runs.

    resolve_device(device)


# ---------------------------------------------------------------------- the toc
def toc_files(toc_path: Path) -> list[str]:
    """Every document ``_toc.yml`` names (root first, then in reading order), without suffix."""
    import yaml

    if not toc_path.is_file():
        raise BookBuildError(f"{toc_path} not found: the book needs a table of contents")
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    if not isinstance(toc, dict) or "root" not in toc:
        raise BookBuildError(f"{toc_path}: expected a mapping with a 'root' entry (jb-book)")
    files = [str(toc["root"])]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(str(node["file"]))
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(toc)
    return [str(Path(name).with_suffix("")) if Path(name).suffix else name for name in files]


def chapter_sources(layout: BookLayout) -> dict[str, Path]:
    """The chapter sources ``notebooks/<name>.md`` by name, sorted."""
    if not layout.sources.is_dir():
        return {}
    return {path.stem: path for path in sorted(layout.sources.glob(f"*{CHAPTER_SUFFIX}"))}


def check_toc(layout: BookLayout) -> list[str]:
    """Check that the toc and the chapter sources agree; return the chapters in toc order.

    Raises:
        BookBuildError: a toc entry under ``book/generated/`` has no source in ``notebooks/``,
            a source is missing from the toc, or a static page named by the toc does not exist.
    """
    sources = chapter_sources(layout)
    problems = []
    chapters = []
    for entry in toc_files(layout.toc):
        if entry.startswith(GENERATED_PREFIX):
            name = entry[len(GENERATED_PREFIX) :]
            if name not in sources:
                problems.append(
                    f"_toc.yml lists {entry} but there is no chapter source "
                    f"notebooks/{name}{CHAPTER_SUFFIX}"
                )
            chapters.append(name)
        elif not any((layout.root / f"{entry}{suffix}").is_file() for suffix in (".md", ".ipynb")):
            problems.append(f"_toc.yml lists {entry} but neither {entry}.md nor .ipynb exists")
    for name in sources:
        if name not in chapters:
            problems.append(
                f"notebooks/{name}{CHAPTER_SUFFIX} is not in _toc.yml: add "
                f"'- file: {GENERATED_PREFIX}{name}' to a part (see book/README.md)"
            )
    if problems:
        raise BookBuildError("the toc and the chapters disagree:\n  " + "\n  ".join(problems))
    return chapters


# ---------------------------------------------------------------------- executing a chapter
def parse_override(name: str, text: str) -> tuple[str, Any]:
    """A ``-p NAME VALUE`` override: the value is read as YAML (``3`` -> int, ``0.5`` -> float,
    ``true`` -> bool, ``[1, 2]`` -> list), anything else stays a string."""
    import yaml

    if not name.isidentifier():
        raise ValueError(f"parameter name must be a Python identifier, got {name!r}")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    return name, value


def _declared_parameters(notebook: Any, chapter: str) -> set[str]:
    """Names assigned in the chapter's cell tagged ``parameters``."""
    import ast

    cells = [
        cell
        for cell in notebook.cells
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", [])
    ]
    if len(cells) != 1:
        raise BookBuildError(
            f"chapter {chapter!r}: expected exactly one code cell tagged 'parameters', "
            f"found {len(cells)}"
        )
    try:
        tree = ast.parse(cells[0].source)
    except SyntaxError as error:
        raise BookBuildError(f"chapter {chapter!r}: parameters cell: {error}") from error
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names.update(target.id for target in targets if isinstance(target, ast.Name))
    missing = [name for name in REQUIRED_PARAMETERS if name not in names]
    if missing:
        raise BookBuildError(
            f"chapter {chapter!r}: the parameters cell must assign {list(REQUIRED_PARAMETERS)}, "
            f"missing {missing}"
        )
    return names


def read_chapter(source: Path) -> Any:
    """The chapter source as an (unexecuted) notebook, via jupytext."""
    import jupytext

    try:
        return jupytext.read(source)
    except Exception as error:  # jupytext raises a variety of parser errors
        raise BookBuildError(f"{source}: cannot read as a jupytext notebook: {error}") from error


def _error_outputs(notebook: Any) -> list[str]:
    return [
        f"{output.get('ename')}: {output.get('evalue')}"
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]


def _stderr_lines(notebook: Any) -> list[str]:
    lines = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                text = "".join(output.get("text", "")).strip()
                if text:
                    lines.append(text.splitlines()[0][:200])
    return lines


class _InjectedParameterFilter(logging.Filter):
    """Drops papermill's warning about the parameters in :data:`INJECTED_PARAMETERS`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(
            message == f"Passed unknown parameter: {name}" for name in INJECTED_PARAMETERS
        )


def _quiet_injected_parameter_warnings() -> None:
    logger = logging.getLogger("papermill")
    if not any(isinstance(f, _InjectedParameterFilter) for f in logger.filters):
        logger.addFilter(_InjectedParameterFilter())


def execute_chapter(
    chapter: str,
    source: Path,
    output: Path,
    parameters: Mapping[str, Any],
    *,
    cwd: Path,
    kernel_name: str | None = None,
    timeout: float | None = None,
) -> ChapterRun:
    """Execute one chapter source into ``output`` with papermill.

    Args:
        chapter: the chapter's name, for messages.
        source: ``notebooks/<chapter>.md``.
        output: the executed notebook, written only when every cell ran without error.
        parameters: values injected after the cell tagged ``parameters``; each must be declared
            there (``profile`` and ``device`` always are).
        cwd: working directory of the kernel.
        kernel_name: Jupyter kernel to run; default: the notebook's (``python3``, which
            jupyter_client starts with this interpreter).
        timeout: seconds one cell may run (``None``: no limit).

    Raises:
        NotebookExecutionError: a cell raised; the partial notebook goes to ``_failed/`` next to
            ``output`` and any earlier ``output`` is deleted.
    """
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook = read_chapter(source)
    declared = _declared_parameters(notebook, chapter)
    unknown = sorted(set(parameters) - declared - set(INJECTED_PARAMETERS))
    if unknown:
        raise BookBuildError(
            f"chapter {chapter!r} does not declare the parameters {unknown} "
            f"(its parameters cell assigns {sorted(declared)})"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    failed = output.parent / _FAILED_DIR / output.name
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{chapter}-") as tmp:
        unexecuted = Path(tmp) / f"{chapter}.input.ipynb"
        executed = Path(tmp) / f"{chapter}.ipynb"
        nbformat.write(notebook, unexecuted)
        try:
            # papermill warns about parameters the cell does not assign; the injected ones
            # (INJECTED_PARAMETERS) are meant to be so
            _quiet_injected_parameter_warnings()
            papermill.execute_notebook(
                str(unexecuted),
                str(executed),
                parameters=dict(parameters),
                kernel_name=kernel_name,
                progress_bar=False,
                log_output=False,
                cwd=str(cwd),
                execution_timeout=timeout,
                # The kernel app warns on every start that its local TCP sockets are not
                # encrypted; that is noise on the console, not a message about the chapter.
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
        except PapermillExecutionError as error:
            failed.parent.mkdir(parents=True, exist_ok=True)
            if executed.exists():
                shutil.move(executed, failed)
            output.unlink(missing_ok=True)
            raise NotebookExecutionError(
                chapter, f"{error.ename}: {error.evalue}", failed if failed.exists() else None
            ) from None
        except Exception as error:  # kernel death, timeout, bad kernel name
            output.unlink(missing_ok=True)
            raise NotebookExecutionError(
                chapter, f"{type(error).__name__}: {error}", None
            ) from None
        result = nbformat.read(executed, as_version=4)
        errors = _error_outputs(result)
        if errors:  # papermill raises on errors; this guards against allow-errors cells
            shutil.move(executed, failed)
            output.unlink(missing_ok=True)
            raise NotebookExecutionError(chapter, "; ".join(errors), failed)
        _hide_injected_parameters(result)
        # papermill records the temporary paths; the published notebook names its source instead.
        record = result.metadata.get("papermill", {})
        record["input_path"] = _relative(source, cwd)
        record["output_path"] = _relative(output, cwd)
        nbformat.write(result, executed)
        os.replace(executed, output)
    failed.unlink(missing_ok=True)
    return ChapterRun(chapter, time.perf_counter() - start, _stderr_lines(result))


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return Path(path).name


def _hide_injected_parameters(notebook: Any) -> None:
    # The values papermill injects stay in the page, folded, so that a reader can see them; a
    # chapter that removes its own parameters cell from the page removes them too.
    tags_of = [list(cell.get("metadata", {}).get("tags", [])) for cell in notebook.cells]
    removed = any(
        "parameters" in tags and ("remove-cell" in tags or "remove-input" in tags)
        for tags in tags_of
    )
    for cell, tags in zip(notebook.cells, tags_of, strict=True):
        if "injected-parameters" in tags:
            wanted = "remove-cell" if removed else "hide-input"
            if wanted not in tags:
                cell.setdefault("metadata", {})["tags"] = [*tags, wanted]


def _execute_job(job: tuple[Any, ...]) -> ChapterRun:
    chapter, source, output, parameters, cwd, kernel_name, timeout = job
    return execute_chapter(
        chapter, source, output, parameters, cwd=cwd, kernel_name=kernel_name, timeout=timeout
    )


# ---------------------------------------------------------------------- the HTML
def _jupyter_book_command() -> list[str]:
    beside = Path(sys.executable).parent / "jupyter-book"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("jupyter-book")
    if found is None:
        raise BookBuildError(
            "jupyter-book is not installed: install the book extra (pip install -e '.[book]')"
        )
    return [found]


#: The parts of MathJax 3 the pages load: the TeX-to-HTML component, its fonts and the TeX
#: extensions it may load on demand (relative to MathJax's ``es5`` folder).
MATHJAX_FILES = ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions")


def vendor_mathjax(root: Path) -> Path:
    """Copy MathJax 3 into ``<root>/_static/mathjax/`` so that the book typesets offline.

    The pages load ``_static/mathjax/tex-chtml.js`` (``mathjax_path`` in ``_config.yml``), not
    a CDN: the book works without a network. MathJax comes from the ``django-static-mathjax``
    package (its static files only; Django is not needed), a dependency of the book extra.
    """
    try:
        import mathjax
    except ImportError:
        raise BookBuildError(
            "MathJax is not installed: install the book extra (pip install -e '.[book]'), "
            "which provides it through the django-static-mathjax package"
        ) from None
    source = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    target = root / "_static" / "mathjax"
    for name in MATHJAX_FILES:
        origin, copy = source / name, target / name
        if not origin.exists():
            raise BookBuildError(
                f"MathJax file {origin} is missing; reinstall django-static-mathjax"
            )
        if origin.is_dir():
            shutil.copytree(origin, copy, dirs_exist_ok=True)
        else:
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, copy)
    return target


def build_html(layout: BookLayout, *, strict: bool = True, quiet: bool = False) -> Path:
    """Run ``jupyter-book build`` on the project root; return ``_build/html/index.html``.

    ``strict`` adds ``-W -n --keep-going``: warnings and broken references fail the build.
    ``--all`` rebuilds every page so that a warning cannot hide in a page left unchanged.
    """
    vendor_mathjax(layout.root)
    command = [*_jupyter_book_command(), "build", str(layout.root), "--builder", "html", "--all"]
    if strict:
        command += ["-W", "-n", "--keep-going"]
    if quiet:
        command.append("-q")
    completed = subprocess.run(command, cwd=layout.root, check=False)
    if completed.returncode != 0:
        raise BookBuildError(
            f"jupyter-book build failed (exit code {completed.returncode}); with -W every "
            "warning above is an error"
        )
    index = layout.html / "index.html"
    if not index.is_file():
        raise BookBuildError(f"jupyter-book build finished but {index} is missing")
    return index


# ---------------------------------------------------------------------- the whole book
def _execute_jobs(
    jobs_list: Sequence[tuple[Any, ...]], jobs: int, log: Any
) -> tuple[list[ChapterRun], dict[str, BookBuildError]]:
    """Execute chapter jobs (``jobs`` at a time); the runs that succeeded and each failure."""
    runs: list[ChapterRun] = []
    errors: dict[str, BookBuildError] = {}
    if jobs == 1 or len(jobs_list) <= 1:
        for job in jobs_list:
            try:
                runs.append(_execute_job(job))
                log(f"  {job[0]}: {runs[-1].seconds:.1f} s")
            except BookBuildError as error:
                errors[job[0]] = error
                log(f"  {job[0]}: FAILED")
        return runs, errors
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [(job[0], pool.submit(_execute_job, job)) for job in jobs_list]
        for name, future in futures:
            try:
                runs.append(future.result())
                log(f"  {name}: {runs[-1].seconds:.1f} s")
            except BookBuildError as error:
                errors[name] = error
                log(f"  {name}: FAILED")
    return runs, errors


def build_book(
    profile: str = "quick",
    device: str = "auto",
    *,
    only: Sequence[str] | None = None,
    jobs: int = 1,
    overrides: Mapping[str, Any] | None = None,
    root: Path | None = None,
    html: bool = True,
    timeout: float | None = None,
    kernel_name: str | None = None,
    log: Any = print,
    force: bool = False,
    stored_only: bool | None = None,
    fallback: bool = True,
) -> Path | None:
    """Execute the chapters and build the HTML book (see the module docstring).

    A chapter whose source, parameters, package code and data (:func:`chapter_cache_key`) are
    those of its last successful execution is not executed again (``force`` executes it
    anyway): a second build with nothing changed only renders the HTML.

    Args:
        profile: one of :data:`PROFILE_NAMES`, passed to every chapter.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``, passed to every chapter.
        only: execute only these chapters (names of ``notebooks/<name>.md``); the others must have
            been executed by an earlier run.
        jobs: chapters executed at the same time (``>= 1``).
        overrides: extra parameters; each must be declared by at least one executed chapter and
            goes to the chapters that declare it.
        root: project root (default: the checkout this package lives in).
        html: run ``jupyter-book build`` after executing.
        timeout: seconds one cell may run (``None``: no limit).
        kernel_name: Jupyter kernel (default: the chapters' own, this interpreter).
        log: where progress lines go.
        force: execute every selected chapter, even one whose cache key is unchanged.
        stored_only: passed to every chapter that declares ``stored_only``: build its tables
            from the result store alone, never train (a missing run fails the chapter, naming
            it). ``None`` (default): on for the profiles in :data:`COMMITTED_PROFILES`, whose
            results the repository holds, off otherwise (``smoke`` trains).
        fallback: with a profile of :data:`PROFILE_FALLBACKS` (``paper``) built stored-only, a
            page whose runs the store lacks is built with the fallback profile (``quick``)
            instead, and says so in a banner: a chapter that declares ``stored_only`` is tried
            with the profile asked for first (unless that profile's store is empty) and built
            again with the fallback when a run is missing; a chapter that does not declare it
            (it computes in the page) is built with the fallback. ``False``: every chapter
            gets the profile asked for, and a missing run fails its chapter.

    Returns:
        ``_build/html/index.html`` (``None`` when ``html`` is false).
    """
    _check_profile(profile)
    _check_device(device)
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    layout = BookLayout(Path(root).resolve() if root is not None else project_root())
    chapters = check_toc(layout)
    sources = chapter_sources(layout)
    selected = list(chapters) if only is None else list(only)
    unknown = [name for name in selected if name not in sources]
    if unknown:
        raise BookBuildError(f"unknown chapters {unknown}; the chapters are {list(sources)}")

    overrides = dict(overrides or {})
    for name in (*REQUIRED_PARAMETERS, *DRIVER_PARAMETERS):
        if name in overrides:
            flag = name.replace("_", "-")
            raise ValueError(f"set {name} with --{flag}, not with -p")
    if stored_only is None:
        stored_only = profile in COMMITTED_PROFILES
    declared = {name: _declared_parameters(read_chapter(sources[name]), name) for name in selected}
    for key in overrides:
        if not any(key in names for names in declared.values()):
            raise BookBuildError(
                f"parameter {key!r} is declared by none of the chapters {selected}; "
                "see each chapter's parameters cell"
            )

    fallback_profile = PROFILE_FALLBACKS.get(profile) if fallback and stored_only else None
    # an empty store holds nothing of any page: no need to try the profile asked for first
    profile_has_runs = fallback_profile is not None and any(ResultStore.for_profile(profile).keys())

    cache = _read_cache(layout)
    inputs = _inputs_digest(layout)
    chapter_parameters: dict[str, dict[str, Any]] = {}
    retry_parameters: dict[str, dict[str, Any]] = {}
    cached: list[str] = []
    to_run: list[str] = []
    for name in selected:
        parameters = {"profile": profile, "device": device}
        if "stored_only" in declared[name]:
            parameters["stored_only"] = bool(stored_only)
        parameters.update({k: v for k, v in overrides.items() if k in declared[name]})
        if fallback_profile is not None:
            fallen_back = {**parameters, "profile": fallback_profile, "requested_profile": profile}
            if "stored_only" in declared[name] and profile_has_runs:
                retry_parameters[name] = fallen_back
            else:
                parameters = fallen_back
        chapter_parameters[name] = parameters
        key = chapter_cache_key(layout, sources[name], parameters, inputs)
        retry = retry_parameters.get(name)
        retry_key = (
            None if retry is None else chapter_cache_key(layout, sources[name], retry, inputs)
        )
        if (
            not force
            and cache.get(name) in (key, retry_key)
            and layout.generated_notebook(name).is_file()
        ):
            cached.append(name)
            continue
        cache.pop(name, None)  # stale until this execution succeeds
        to_run.append(name)

    def job(name: str) -> tuple[Any, ...]:
        return (
            name,
            sources[name],
            layout.generated_notebook(name),
            chapter_parameters[name],
            layout.root,
            kernel_name,
            timeout,
        )

    if cached:
        log(f"unchanged since their last run, not executed: {', '.join(cached)}")
    shown = profile if fallback_profile is None else f"{profile} (else {fallback_profile})"
    log(f"executing {len(to_run)} chapter(s) with profile={shown} device={device}")
    start = time.perf_counter()
    runs, errors = _execute_jobs([job(name) for name in to_run], jobs, log)
    missing_runs = [
        name
        for name, error in errors.items()
        if name in retry_parameters
        and isinstance(error, NotebookExecutionError)
        and error.error.startswith("MissingRunError")
    ]
    if missing_runs:
        log(
            f"the {profile} profile's results are missing for {', '.join(missing_runs)}: "
            f"building {'it' if len(missing_runs) == 1 else 'them'} with {fallback_profile}"
        )
        for name in missing_runs:
            del errors[name]
            chapter_parameters[name] = retry_parameters[name]
        more_runs, more_errors = _execute_jobs([job(name) for name in missing_runs], jobs, log)
        runs += more_runs
        errors.update(more_errors)
    failures = [str(error) for error in errors.values()]
    for run in runs:
        for line in run.stderr:
            log(f"  note: {run.chapter} wrote to stderr (not shown in the book): {line}")
    log(f"executed in {time.perf_counter() - start:.1f} s")
    if runs:
        # keys of the state after the runs (a chapter may have added results): what the next
        # build sees when nothing changes meanwhile
        inputs = _inputs_digest(layout)
        for run in runs:
            cache[run.chapter] = chapter_cache_key(
                layout, sources[run.chapter], chapter_parameters[run.chapter], inputs
            )
    _write_cache(layout, cache)
    if failures:
        raise BookBuildError("\n".join(failures))
    if not html:
        return None  # executing some chapters needs no others: only the HTML needs them all

    missing = [name for name in chapters if not layout.generated_notebook(name).is_file()]
    if missing:
        raise BookBuildError(
            f"chapters {missing} have not been executed yet; run without --only, or with "
            f"--only {' '.join(missing)}"
        )
    start = time.perf_counter()
    index = build_html(layout)
    log(f"built the HTML in {time.perf_counter() - start:.1f} s")
    return index


# ---------------------------------------------------------------------- the chapter cache
#: Where the cache keys of the executed chapters are kept, beside the executed notebooks.
CACHE_FILE = ".chapter-cache.json"

#: What the chapters read besides their source and parameters: every file under these folders
#: of the project counts (the datasets and the result stores).
CACHE_DATA_FOLDERS: tuple[str, ...] = ("data/datasets", "data/results")


def _tree_digest(folder: Path, suffixes: tuple[str, ...] | None = None) -> str:
    """SHA-256 over the relative paths and contents of the files under ``folder``."""
    digest = hashlib.sha256()
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if suffixes is not None and path.suffix not in suffixes:
                continue
            if "__pycache__" in path.parts:
                continue
            digest.update(path.relative_to(folder).as_posix().encode())
            digest.update(b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def chapter_cache_key(
    layout: BookLayout, source: Path, parameters: Mapping[str, Any], inputs: str | None = None
) -> str:
    """The key of one chapter execution: a hash of the chapter source, its parameters, the
    package's code and the data it reads (:data:`CACHE_DATA_FOLDERS`). The same key means the
    chapter would compute the same page again (up to library versions, which are not in it).

    ``inputs`` is :func:`_inputs_digest` of the layout, when already computed.
    """
    digest = hashlib.sha256()
    digest.update(source.read_bytes())
    digest.update(json.dumps(dict(parameters), sort_keys=True, default=str).encode())
    digest.update((inputs if inputs is not None else _inputs_digest(layout)).encode())
    return digest.hexdigest()[:32]


def _inputs_digest(layout: BookLayout) -> str:
    package = Path(__file__).resolve().parent.parent
    parts = [_tree_digest(package, (".py", ".yaml"))]
    parts += [_tree_digest(layout.root / folder) for folder in CACHE_DATA_FOLDERS]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _read_cache(layout: BookLayout) -> dict[str, str]:
    path = layout.generated / CACHE_FILE
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in entries.items()} if isinstance(entries, dict) else {}


def _write_cache(layout: BookLayout, entries: Mapping[str, str]) -> None:
    atomic_write(layout.generated / CACHE_FILE, json.dumps(dict(entries), indent=1, sort_keys=True))


# ---------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deepstock.tools.book",
        description="Execute the book's chapters with papermill and build the HTML book.",
    )
    parser.add_argument(
        "--profile",
        default="paper",
        choices=PROFILE_NAMES,
        help="run profile (deepstock.tuning.profiles); default paper: each page whose paper "
        "results are not in the store is built with quick, and says so",
    )
    parser.add_argument(
        "--device", default="auto", help="'auto' (CUDA if available), 'cpu', 'cuda' or 'cuda:N'"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="execute only these chapters (notebooks/NAME.md); the others keep their last run",
    )
    parser.add_argument("--jobs", type=int, default=1, help="chapters executed in parallel")
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override a chapter parameter (value read as YAML), for example -p lead_time 2",
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds one cell may run")
    parser.add_argument("--no-html", action="store_true", help="execute only, no jupyter-book")
    parser.add_argument(
        "--force",
        action="store_true",
        help="execute every selected chapter, even those unchanged since their last run",
    )
    parser.add_argument(
        "--stored-only",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="build the results chapters from the result store alone, never train (a missing "
        "run fails its chapter); default: on for the committed profiles quick and paper, off "
        "otherwise "
        "(--no-stored-only trains what is missing)",
    )
    parser.add_argument(
        "--fallback",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --profile paper (stored-only): build a page whose paper runs are missing with "
        "quick, with a banner (default); --no-fallback fails it instead",
    )
    parser.add_argument("--root", type=Path, default=None, help="project root (default: here)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        overrides = dict(parse_override(name, value) for name, value in args.parameter)
        index = build_book(
            args.profile,
            args.device,
            only=args.only,
            jobs=args.jobs,
            overrides=overrides,
            root=args.root,
            html=not args.no_html,
            timeout=args.timeout,
            force=args.force,
            stored_only=args.stored_only,
            fallback=args.fallback,
        )
    except (BookBuildError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if index is not None:
        print(f"the book is at {index}")
        print(f"  open it with: python -m http.server -d {index.parent} and a browser")
    return 0


if __name__ == "__main__":
    sys.exit(main())
