"""Command line: arguments and output paths are checked before any model is loaded, user
errors are one line on stderr with exit status 2, and the toy model's atlas runs end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import motif_widgets
from conftest import requires_smollm2
from motif_widgets import Atlas
from motif_widgets.cli import main

ERROR = "motif-widgets: error: "


@pytest.fixture
def no_model_loading(monkeypatch):
    """Fail the test if the CLI gets as far as loading a model."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"load_model{args} called although the arguments were bad")

    monkeypatch.setattr(motif_widgets, "load_model", refuse)


def run_main(capsys, argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, match: str) -> None:
    assert code == 2, (out, err)
    assert out == "" and err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith(ERROR) and match in err, err
    assert "Traceback" not in err


def _cuda_case() -> tuple[str, str]:
    if torch.cuda.is_available():
        return "cuda:99", "CUDA device(s)"
    return "cuda", "CUDA is not available"


@pytest.mark.parametrize(
    "args, match",
    [
        (["--n-prompts", "0"], "--n-prompts must be >= 1, got 0"),
        (["--top", "-1"], "--top must be >= 1, got -1"),
        (["--top", "0"], "--top must be >= 1, got 0"),
        (["--k", "0"], "--k must be >= 1, got 0"),
        (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (["--max-tokens", "0"], "--max-tokens must be >= 1, got 0"),
        (["--max-tokens", "-5"], "--max-tokens must be >= 1, got -5"),
        (["--max-tokens", "many"], "argument --max-tokens: invalid value 'many'"),
        (["--probes", "-1"], "--probes must be >= 0, got -1"),
        (["--top", "two"], "argument --top: invalid int value: 'two'"),
        (["--backend", "tf"], "argument --backend: invalid choice: 'tf'"),
        (["no-such-model"], "unknown model 'no-such-model'; available: gemma-3-270m, smollm2-135m, toy-induction"),
        (["toy-induction", "--device", "gpu"], "--device must be cpu, cuda or cuda:N, got 'gpu'"),
        (["toy-induction", "--device", _cuda_case()[0]], _cuda_case()[1]),
        (["toy-induction", "--feature-set", "nope"], "--feature-set must be one of ['motifs', 'paper', 'paper92']"),
        (["toy-induction", "--prompts", "no/such/file.jsonl"], "--prompts no/such/file.jsonl: no such file"),
        (["toy-induction", "--html", "view.png"], "--html writes an .html file, got 'view.png'"),
        (["toy-induction", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_are_one_line_errors_before_loading(capsys, no_model_loading, tmp_path, args, match):
    out_dir = tmp_path / "out"
    code, out, err = run_main(capsys, ["atlas", *args, "--out", out_dir])
    assert_one_line_error(code, out, err, match)
    assert not out_dir.exists()  # refused before anything was written


def test_text_prompts_for_the_toy_model_are_refused(capsys, no_model_loading, tmp_path):
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text(json.dumps({"text": "a document"}) + "\n")
    code, out, err = run_main(capsys, ["atlas", "toy-induction", "--prompts", jsonl, "--out", tmp_path / "o"])
    assert_one_line_error(code, out, err, "model 'toy-induction' has no tokenizer, so it cannot read text prompts")


@requires_smollm2
def test_a_bad_prompts_file_is_a_one_line_error(capsys, no_model_loading, tmp_path):
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text(json.dumps({"text": "one"}) + "\n" + json.dumps({"body": "two"}) + "\n")
    code, out, err = run_main(capsys, ["atlas", "--prompts", jsonl, "--out", tmp_path / "o"])
    assert_one_line_error(code, out, err, f"{jsonl}:2 has no string field 'text'")


def test_output_folder_is_checked_before_loading(capsys, no_model_loading, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    code, out, err = run_main(capsys, ["atlas", "toy-induction", "--out", a_file])
    assert_one_line_error(code, out, err, f"--out {a_file} is not a folder")
    code, out, err = run_main(capsys, ["atlas", "toy-induction", "--out", a_file / "sub"])
    assert_one_line_error(code, out, err, "cannot be created or written")

    foreign = tmp_path / "project"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("mine")
    code, out, err = run_main(capsys, ["atlas", "toy-induction", "--out", foreign])
    assert_one_line_error(code, out, err, f"--out {foreign} holds files that are not atlas output (thesis.tex)")
    assert sorted(p.name for p in foreign.iterdir()) == ["thesis.tex"]

    fake = tmp_path / "fake"
    (fake / "atlas").mkdir(parents=True)
    (fake / "atlas" / "data.bin").write_text("x")
    code, out, err = run_main(capsys, ["atlas", "toy-induction", "--out", fake])
    assert_one_line_error(code, out, err, "is not a saved atlas")

    (tmp_path / "page.html").mkdir()
    code, out, err = run_main(capsys, ["atlas", "toy-induction", "--out", tmp_path / "o", "--html", tmp_path / "page.html"])
    assert_one_line_error(code, out, err, "is a folder; give a file name ending in .html")


def test_unwritable_output_folder_is_refused(capsys, no_model_loading, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    # root writes into read-only folders; /sys refuses new entries to everyone
    target = locked / "out" if os.geteuid() != 0 else Path("/sys/motif-widgets-test")
    if os.geteuid() == 0 and not Path("/sys").is_dir():
        pytest.skip("running as root without /sys: no unwritable folder to try")
    try:
        code, out, err = run_main(capsys, ["atlas", "toy-induction", "--out", target])
    finally:
        locked.chmod(0o700)
    assert_one_line_error(code, out, err, f"--out {target} cannot be created or written")


def test_installed_command_exits_2_with_one_line(tmp_path):
    exe = Path(sys.executable).parent / "motif-widgets"
    if not exe.exists():
        pytest.skip(f"console script not installed at {exe}")
    result = subprocess.run(
        [str(exe), "atlas", "--top", "-1", "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == "" and result.stderr == f"{ERROR}--top must be >= 1, got -1\n"


def test_toy_induction_atlas_end_to_end_with_html(capsys, monkeypatch, tmp_path):
    calls = []
    real_load = motif_widgets.load_model

    def recording_load(*args, **kwargs):
        calls.append((args, kwargs))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(motif_widgets, "load_model", recording_load)
    out_dir, html = tmp_path / "runs" / "toy", tmp_path / "views" / "toy.html"
    argv = ["atlas", "toy-induction", "--out", out_dir, "--html", html, "--quiet", "--n-prompts", "6",
            "--probes", "4", "--k", "2", "--top", "3", "--device", "cpu"]
    code, out, err = run_main(capsys, argv)
    assert code == 0, err
    assert calls and calls[0][1]["device"] == "cpu"
    assert (out_dir / "head_table.csv").is_file() and (out_dir / "summary.csv").is_file()
    assert html.is_file() and html.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    atlas = Atlas.load(out_dir / "atlas")
    assert len(atlas.head_ids) == 8 and len(atlas.prompts) == 10
    assert sum(p.is_probe for p in atlas.prompts) == 4 and all(p.token_ids for p in atlas.prompts if not p.is_probe)

    # the report: each score's top heads, by name, with their nearest heads; induction heads are in layer 1
    assert f"saved to {out_dir}/" in out and f"explorer: {html}" in out
    block = out.split("Top 3 heads by induction:")[1].strip().splitlines()
    top_rows = [line for line in block if line.startswith("toy-induction:")][:3]
    assert len(top_rows) == 3 and all(r.startswith("toy-induction:L1H") for r in top_rows)
    assert top_rows[0].count("toy-induction:") == 3  # the head and its 2 nearest heads
    families = out.split("\nFamilies (")[1].splitlines()[0]
    assert "induction" in families  # the named families close the report

    # a second run may write over its own earlier output
    code, out, err = run_main(capsys, argv)
    assert code == 0, err


def test_max_tokens_none_means_the_model_context():
    from motif_widgets.cli import build_parser

    assert build_parser().parse_args(["atlas", "--max-tokens", "none"]).max_tokens is None
    assert build_parser().parse_args(["atlas", "--max-tokens", "64"]).max_tokens == 64
