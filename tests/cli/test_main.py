"""The one ``wtpipe`` command: subcommands, --version, instant help and config errors, the
resolved config, export's guarantees, and refusals that leave nothing behind."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from wtpipe import __version__
from wtpipe.config import load_config
from wtpipe.engine import rundir
from wtpipe.train.config import TrainConfig

from ..train.runs import damage

HEAVY = ("torch", "timm", "accelerate", "av", "matplotlib", "tensorboard")


def wtpipe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wtpipe.cli.main", *args], capture_output=True, text=True
    )


def test_version_help_and_unknown_commands():
    assert wtpipe("--version").stdout.strip() == f"wtpipe {__version__}"
    assert wtpipe("train", "--version").stdout.strip() == f"wtpipe {__version__}"
    listing = wtpipe("--help")
    assert listing.returncode == 0
    for command in ("shards", "train", "export", "eval", "viz"):
        assert f"  {command} " in listing.stdout
    from wtpipe.eval.settings import TASKS

    eval_line = next(line for line in listing.stdout.splitlines() if line.startswith("  eval "))
    assert all(task in eval_line for task in [*TASKS, "seg", "det"]), (
        eval_line
    )  # every task the command takes
    unknown = wtpipe("trian")
    assert unknown.returncode == 2 and "unknown command 'trian'" in unknown.stderr
    train_help = wtpipe("train", "--help").stdout
    assert (
        "usage: wtpipe train" in train_help
        and "DINO or DoRA" in train_help
        and "to come" not in train_help
    )


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--help"],
        ["train", "optim.lrr=1"],
        ["eval", "knn", "--help"],
        ["eval", "knn", "--weights", "w", "--data", "d", "kk=1"],
        ["export", "--help"],
        ["viz", "masks", "--help"],
        ["shards", "info", "--help"],
        ["submit", "--help"],
        ["train", "--config", "configs/tiny_cpu.yaml", "--print-config"],
    ],
)
def test_help_and_config_errors_import_nothing_heavy(args):
    """What makes --help take 15 s is importing torch & co.; none of them may load before work starts."""
    code = (
        "import sys\nfrom wtpipe.cli.main import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\nassert not loaded, loaded\n"
    )
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=root
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_print_config_shows_every_key_with_its_meaning_and_reads_back(tmp_path):
    result = wtpipe(  # overrides on both sides of an option, and 1e-4 (a string to YAML 1.1)
        "train",
        "--config",
        "configs/tiny_cpu.yaml",
        "optim.lr=0.002",
        "--print-config",
        "optim.min_lr=1e-4",
    )
    assert result.returncode == 0, result.stderr
    assert "  lr: 0.002  # at a global batch of 256; scaled linearly" in result.stdout
    assert "  min_lr: 0.0001  # end of the cosine decay" in result.stdout
    keys = [line for line in result.stdout.splitlines() if line.startswith("  ")]
    assert keys and all("  # " in line for line in keys)  # every key has its help
    saved = tmp_path / "resolved.yaml"
    saved.write_text(result.stdout)
    assert load_config(TrainConfig, str(saved)) == load_config(
        TrainConfig, "configs/tiny_cpu.yaml", ["optim.lr=0.002", "optim.min_lr=1e-4"]
    )


def test_a_failed_start_leaves_no_run_folder(tmp_path):
    out = tmp_path / "run"
    result = wtpipe("train", f"data.shards={tmp_path / 'missing'}", f"run.output_dir={out}")
    assert (
        result.returncode == 2 and "missing" in result.stderr and "Traceback" not in result.stderr
    )
    assert not out.exists()


@pytest.fixture(scope="module")
def finished_run(reference, tmp_path_factory):
    import shutil

    out = str(tmp_path_factory.mktemp("export") / "run")
    shutil.copytree(reference, out)
    return out


def test_export_of_a_finished_run_has_nothing_to_do_and_never_overwrites_by_accident(
    finished_run, tmp_path
):
    final = os.path.join(finished_run, rundir.BACKBONE)
    before = open(final, "rb").read()
    again = wtpipe("export", finished_run)  # training wrote the final backbone already
    assert again.returncode == 0, again.stderr
    assert (
        again.stdout.strip()
        == f"{final} already holds the newest checkpoint's weights (step 12); nothing to do"
    )
    target = str(tmp_path / "new" / "deeper" / "b.safetensors")
    made = wtpipe("export", finished_run, "--out", target)
    assert made.returncode == 0 and made.stdout.strip() == f"wrote {target} (step 12)"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert open(target, "rb").read() == before  # the same weights give the same bytes
    refused = wtpipe("export", finished_run, "--out", target)
    assert refused.returncode == 2 and f"{target} exists; pass --overwrite" in refused.stderr
    ckpt = os.path.join(finished_run, rundir.CHECKPOINTS, "step-00000010")
    os.remove(os.path.join(ckpt, rundir.BACKBONE))
    assert wtpipe("export", ckpt).returncode == 0
    assert load_file(os.path.join(ckpt, rundir.BACKBONE)).keys() == load_file(final).keys()
    assert (
        open(final, "rb").read() == before
    )  # a chosen checkpoint never touches the run's final file
    assert wtpipe("export", finished_run, "--overwrite").returncode == 0


def test_export_falls_back_past_a_damaged_checkpoint_and_names_it(reference, tmp_path):
    import shutil

    run = str(tmp_path / "run")
    shutil.copytree(reference, run)
    newest = os.path.join(run, rundir.CHECKPOINTS, "step-00000012")
    damage(newest, "truncated")
    os.remove(
        os.path.join(newest, "checksums.json")
    )  # so that PyTorch itself reads the truncated file
    out = str(tmp_path / "b.safetensors")
    result = wtpipe("export", run, "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {out} (step 10)"
    line = result.stderr.strip()
    assert line.startswith(
        f"wtpipe export: checkpoint {newest} is damaged (state.pt does not load: "
    )
    assert line.endswith("); trying the one before") and len(line.splitlines()) == 1, line
    chosen = wtpipe("export", newest, "--out", str(tmp_path / "c.safetensors"))
    assert chosen.returncode == 2 and chosen.stderr.strip().endswith(
        "export the run folder instead to use its newest intact checkpoint"
    ), chosen.stderr


def test_export_names_what_is_wrong(tmp_path):
    missing = wtpipe("export", str(tmp_path / "nope"))
    assert (
        missing.returncode == 2
        and f"{tmp_path / 'nope'}: no such file or directory" in missing.stderr
    )
    empty = wtpipe("export", str(tmp_path))
    assert empty.returncode == 2 and "neither a run directory" in empty.stderr
    (tmp_path / "run" / rundir.CHECKPOINTS).mkdir(parents=True)
    fresh = wtpipe("export", str(tmp_path / "run"))
    assert fresh.returncode == 2 and "no finished checkpoint" in fresh.stderr
