"""The book driver skips a chapter whose source, parameters, package code and data are those of
its last successful run, and ``--only ... --no-html`` needs no other chapter."""

from __future__ import annotations

from pathlib import Path

from test_book import _PARAMETERS, _chapter, _toy_project

from deepstock.tools.book import build_book, main

CHAPTER = _chapter(_PARAMETERS + '\n```{code-cell} ipython3\nprint("answer is", answer)\n```\n')


def _build(root: Path, **kwargs) -> list[str]:
    lines: list[str] = []
    build_book("smoke", "cpu", root=root, html=False, log=lines.append, **kwargs)
    return lines


def _executed(lines: list[str]) -> int:
    (line,) = [line for line in lines if line.startswith("executing ")]
    return int(line.split()[1])


def test_an_unchanged_chapter_is_not_executed_again(tmp_path):
    layout = _toy_project(tmp_path, {"a": CHAPTER}, ["a"])
    assert _executed(_build(tmp_path)) == 1
    first = layout.generated_notebook("a").stat().st_mtime_ns

    lines = _build(tmp_path)
    assert _executed(lines) == 0 and any("not executed: a" in line for line in lines)
    assert layout.generated_notebook("a").stat().st_mtime_ns == first

    assert _executed(_build(tmp_path, overrides={"answer": 2})) == 1  # other parameters
    assert _executed(_build(tmp_path, overrides={"answer": 2})) == 0
    assert _executed(_build(tmp_path, overrides={"answer": 2}, force=True)) == 1

    results = tmp_path / "data" / "results" / "smoke" / "runs"
    results.mkdir(parents=True)
    (results / "r.json").write_text("{}", encoding="utf-8")
    assert _executed(_build(tmp_path, overrides={"answer": 2})) == 1  # new stored results

    source = layout.sources / "a.md"
    source.write_text(CHAPTER.replace("answer is", "the answer is"), encoding="utf-8")
    assert _executed(_build(tmp_path, overrides={"answer": 2})) == 1  # an edited source

    layout.generated_notebook("a").unlink()
    assert _executed(_build(tmp_path, overrides={"answer": 2})) == 1  # a deleted page


def test_only_one_chapter_without_html_needs_no_other(tmp_path, capsys):
    _toy_project(tmp_path, {"a": CHAPTER, "b": CHAPTER}, ["a", "b"])
    code = main(
        [
            "--profile",
            "smoke",
            "--device",
            "cpu",
            "--only",
            "a",
            "--no-html",
            "--root",
            str(tmp_path),
        ]
    )
    assert code == 0, capsys.readouterr().err
