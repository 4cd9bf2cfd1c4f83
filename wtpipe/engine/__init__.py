"""The resumable-run machinery that pretraining (``wtpipe.train``) and fine-tuning
(``wtpipe.finetune``) share: the run directory's layout (``rundir``, the one module that knows a
path inside a run), checkpoints that are complete or absent and checked on load (``checkpoint``),
stop requests from signals (``stopping``), the thread budget (``resources``) and scalar logs with
their curves (``logs``). It imports nothing of the loops above it.
"""
