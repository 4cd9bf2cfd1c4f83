"""wtpipe-shards as a user runs it: help, build, info, verify, preview, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from wtpipe.cli.shards import main

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "wtpipe", "assets", "vtest.mp4")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wtpipe.cli.shards", *args], capture_output=True, text=True
    )


@pytest.mark.parametrize("command", ["build", "verify", "info", "preview"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "usage: wtpipe-shards" in out
    description = out.split("\n\n")[1]  # the paragraph after the usage lines says what it does
    assert not description.startswith(("positional", "options")) and len(description) > 30


def test_demo_on_the_bundled_clip(tmp_path):
    out = str(tmp_path / "demo")
    built = cli("build", SAMPLE, "--out", out, "--quiet", "--fps", "2")
    assert built.returncode == 0, built.stderr
    assert "1 video(s)" in built.stdout and "vtest" in built.stdout
    assert cli("verify", out, "--quiet").returncode == 0
    info = cli("info", out)
    assert info.returncode == 0 and "159 frames" in info.stdout  # 79.5 s at 2 fps
    preview = cli("preview", out, "--out", str(tmp_path / "p.png"))
    assert preview.returncode == 0 and os.path.getsize(tmp_path / "p.png") > 10_000


def test_failures_set_the_exit_code_and_are_one_line_each(tmp_path, bad):
    result = cli(
        "build", SAMPLE, bad["random_bytes"], "--out", str(tmp_path / "o"), "--quiet", "--fps", "1"
    )
    assert result.returncode == 1
    assert f"FAILED: {bad['random_bytes']}: not a readable video file" in result.stdout
    manifest = json.load(open(tmp_path / "o" / "manifest.json"))
    assert manifest["totals"]["frames"] == 80 and len(manifest["failures"]) == 1


def test_bad_arguments_and_directories_are_clear(tmp_path):
    assert "fps must be" in cli("build", SAMPLE, "--out", str(tmp_path / "o"), "--fps", "0").stderr
    missing = cli("verify", str(tmp_path / "nothing"))
    assert missing.returncode == 1 and "no manifest" in missing.stderr


def test_changed_settings_are_refused_with_exit_code_2(tmp_path):
    out = str(tmp_path / "o")
    assert cli("build", SAMPLE, "--out", out, "--quiet", "--fps", "1").returncode == 0
    refused = cli("build", SAMPLE, "--out", out, "--quiet", "--fps", "2")
    assert (
        refused.returncode == 2
        and "--overwrite" in refused.stderr
        and "fps: 1 -> 2" in refused.stderr
    )


def test_files_in_an_input_folder_that_are_not_videos_are_named(tmp_path, bad):
    folder = tmp_path / "walks"
    folder.mkdir()
    for name in (SAMPLE, bad["still_image"], bad["audio_only"]):
        os.symlink(os.path.abspath(name), folder / os.path.basename(name))
    result = cli("build", str(folder), "--out", str(tmp_path / "o"), "--quiet", "--fps", "1")
    assert result.returncode == 0, result.stderr
    assert (
        "passed over 2 file(s)" in result.stdout
        and "still.png" in result.stdout
        and "tone.m4a" in result.stdout
    )


def test_verify_fails_a_build_that_produced_no_shards(tmp_path, bad):
    out = str(tmp_path / "o")
    assert cli("build", bad["random_bytes"], "--out", out, "--quiet").returncode == 1
    result = cli("verify", out, "--quiet")
    assert (
        result.returncode == 1
        and "produced no shards" in result.stderr
        and "OK" not in result.stdout
    )
