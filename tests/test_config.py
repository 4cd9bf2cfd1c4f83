"""Typed configs from YAML with dotted overrides: wrong keys and types are named, nothing is evaluated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from wtpipe.config import ConfigError, PathStr, load_config, to_yaml


@dataclass
class Optim:
    lr: float = 5e-4
    epochs: int = 100
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class Run:
    name: str = "dino"
    precision: Literal["no", "bf16", "fp16"] = "no"
    resume_from: str | None = None
    optim: Optim = field(default_factory=Optim)


def write(tmp_path, text: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def test_yaml_then_overrides(tmp_path):
    path = write(tmp_path, "name: wt\noptim:\n  lr: 1.0e-3\n  betas: [0.8, 0.9]\n")
    config = load_config(Run, path, ["optim.epochs=3", "precision=bf16", "optim.lr=2"])
    assert config.name == "wt" and config.precision == "bf16"
    assert config.optim == Optim(lr=2.0, epochs=3, betas=(0.8, 0.9))
    assert isinstance(config.optim.lr, float)


def test_a_choice_spelt_no_is_the_word_not_a_boolean(tmp_path):
    """YAML 1.1 reads ``no`` as False: where the choices are words, the word is meant."""
    assert (
        load_config(Run, write(tmp_path, "precision: bf16\n"), ["precision=no"]).precision == "no"
    )
    assert load_config(Run, write(tmp_path, "precision: no\n")).precision == "no"
    with pytest.raises(ConfigError, match="precision: True is not one of"):
        load_config(Run, None, ["precision=yes"])


def test_defaults_without_a_file():
    assert load_config(Run) == Run()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["optim.lrr=1"], "unknown config key 'optim.lrr' (did you mean optim.lr?)"),
        (["optim.epochs=1.5"], "optim.epochs: expected int, got float 1.5"),
        (["optim.epochs=true"], "optim.epochs: expected int, got bool True"),
        (["precision=fp8"], "precision: 'fp8' is not one of 'no', 'bf16', 'fp16'"),
        (["optim.betas=[1]"], "optim.betas: expected 2 items, got 1"),
        (["optim=3"], "optim: expected a mapping"),
        (["lr"], "is not key=value"),
    ],
)
def test_bad_overrides_name_the_key(overrides, message):
    with pytest.raises(ConfigError) as caught:
        load_config(Run, None, overrides)
    assert message in str(caught.value)


def test_bad_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(Run, str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Run, write(tmp_path, "optim: [unclosed"))
    with pytest.raises(ConfigError, match="unknown config key 'nmae'"):
        load_config(Run, write(tmp_path, "nmae: x\n"))


def test_values_are_data_never_code(tmp_path):
    config = load_config(Run, None, ["name=__import__('os').system('false')"])
    assert config.name == "__import__('os').system('false')"
    with pytest.raises(ConfigError):
        load_config(Run, write(tmp_path, "name: !!python/object/apply:os.system ['false']\n"))


def test_saved_yaml_loads_back_to_the_same_config(tmp_path):
    config = load_config(Run, None, ["optim.lr=0.25", "resume_from=/x"])
    assert load_config(Run, write(tmp_path, to_yaml(config))) == config


@dataclass
class Paths:
    out: PathStr = "runs/x"
    name: str = "x"
    inputs: list[PathStr] = field(default_factory=list)


def test_paths_expand_home_and_variables_as_a_shell_would(monkeypatch):
    """``key=~/x`` after a ``key=`` is not expanded by bash; path fields expand it, other strings do not."""
    monkeypatch.setenv("HOME", "/home/u")
    monkeypatch.setenv("DATA", "/data")
    config = load_config(Paths, None, ["out=~/runs/$DATA", "name=~/$DATA", "inputs=[~/a, $DATA/b]"])
    assert config.out == "/home/u/runs//data" and config.name == "~/$DATA"
    assert config.inputs == ["/home/u/a", "/data/b"]
    with pytest.raises(ConfigError, match="out: expected a path, got int 3"):
        load_config(Paths, None, ["out=3"])


def test_each_loop_resumes_against_its_own_config_class():
    """Which keys may change on resume is declared on the field (``resumable``); a key a
    checkpoint does not have counts as its class's default."""
    from wtpipe.config import differences, to_dict
    from wtpipe.finetune.config import DetConfig, SegConfig
    from wtpipe.train.config import TrainConfig

    seg = to_dict(SegConfig())
    saved = {**seg, "data": {k: v for k, v in seg["data"].items() if k != "slide_stride"}}  # older
    moved = ["run.pictures=0", "data.num_workers=8", "run.output_dir=/x"]
    assert differences(load_config(SegConfig, None, moved), saved) == []
    assert differences(load_config(SegConfig, None, ["optim.lr=0.5"]), saved) == [
        "optim.lr: 0.0001 -> 0.5"
    ]
    det = to_dict(DetConfig())
    assert differences(load_config(DetConfig, None, ["run.val_every=5"]), det) == [
        "run.val_every: 10000 -> 5"
    ]
    train = to_dict(TrainConfig())
    observed = ["run.viz_every=5", "eval.every=100", "eval.tasks=[knn]", "eval.knn_data=/k"]
    executed = ["data.num_workers=0", "model.forward_chunk=8"]
    assert differences(load_config(TrainConfig, None, observed + executed), train) == []
    assert differences(load_config(TrainConfig, None, ["data.local_flip=false"]), train) == [
        "data.local_flip: True -> False"
    ]


def test_the_method_section_is_the_chosen_methods_own():
    """``method.name`` picks the section's class: a DINO config has no DoRA keys and refuses
    them; the names come from the registry."""
    from wtpipe.methods.config import DINOConfig, DoRAConfig
    from wtpipe.train.config import TrainConfig

    assert type(TrainConfig().method) is DINOConfig
    dora = load_config(TrainConfig, None, ["method.name=dora", "method.num_objects=2"])
    assert (
        type(dora.method) is DoRAConfig
        and dora.method.num_objects == 2
        and dora.method.koleo == 0.0
    )
    with pytest.raises(ConfigError, match=r"unknown config key 'method.num_objects'"):
        load_config(TrainConfig, None, ["method.num_objects=2"])
    with pytest.raises(ConfigError, match=r"method.name: 'swa' is not one of dino, dora"):
        load_config(TrainConfig, None, ["method.name=swa"])
