"""Cluster jobs: any wtpipe command as a SLURM job through submitit, multi-node, requeued.

Who owns stopping (the signal chain):
- wtpipe's trainer owns every stop signal. submitit installs its handlers when the job starts;
  the trainer's :class:`~wtpipe.engine.stopping.StopRequest` replaces them for the length of the
  run, so no handler ever exits mid-step.
- SIGUSR2 ``--signal=USR2@LEAD`` (LEAD seconds before the time limit, on every task): every rank
  saves at the next step boundary; then rank 0 requeues the job (``scontrol requeue``, same job
  id) and all ranks exit. The requeued job runs the same command, which resumes from ``latest``.
- SIGTERM (preemption, ``scontrol requeue``, ``scancel``): every rank saves and exits. Slurm has
  already requeued a preempted job itself; a cancelled one ends.
- SIGUSR1 (``scancel --signal=USR1 JOB``, a user's "stop now, keep the work"): save, end.
- A rank that dies (SIGKILL, OOM): its peers' next collective fails within
  ``run.dist_timeout_minutes`` instead of hanging; resubmitting resumes from the last checkpoint.
"""
