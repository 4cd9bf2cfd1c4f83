"""Pretraining methods, one module each. The registry below is the one place a method is named:
``method.name`` -> (its plug-in class as ``module:Class``, imported only when a run uses it; its
config class in ``wtpipe.methods.config``), so reading a config or ``--help`` never imports torch."""

from __future__ import annotations

import importlib

METHODS = {
    "dino": ("wtpipe.methods.dino:DINOMethod", "DINOConfig"),
    "dora": ("wtpipe.methods.dora:DoRAMethod", "DoRAConfig"),
    "swav": ("wtpipe.methods.swav:SwAVMethod", "SwAVConfig"),
}


def method_class(name: str) -> type:
    """The plug-in class registered as ``name``."""
    module, _, cls = METHODS[name][0].partition(":")
    return getattr(importlib.import_module(module), cls)
