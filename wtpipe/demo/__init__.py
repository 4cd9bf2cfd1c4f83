"""``wtpipe demo``: the whole pipeline on the bundled clip, in minutes on a laptop, as one report.

Ingest the clip into shards, pretrain DoRA with the tiny recipe, score the trained backbone and the
same architecture at random initialisation (k-NN on the scene classes; object discovery and the
[CLS] attention's overlap with the objects on the annotated images), and write ``OUT/report.md``
with the pictures next to it. Every stage keeps its output and is skipped when re-run, and the
training resumes from its last checkpoint, so an interrupted demo continues where it stopped.

The package is the demo's: ``run`` (the stages), ``report`` and ``pictures`` (what a person
reads), ``result`` (what a run produced), ``media`` (the real test clips, fetched from Debian and
PyPI packages) and ``sample_data`` (the real evaluation sets built from them, for the demo, the
tests and the benchmarks).
"""
