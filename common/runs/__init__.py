"""The run's bookkeeping: what a script does around its lesson and the engine.

    cli        typed configs -> argparse, one vocabulary of flags, `run_script`
    trial_log  the trials file: each trial on disk as it ends, resume, shards, Ctrl-C
    launcher   --jobs N: the same command as N shard processes
    slurm      --shard auto in a SLURM job array, and the sbatch script for one
    summary    the end of a run: compare, plot, write the summary and the JSON
    tables     the summary table, verdicts against the lecture, JSON helpers
    stats      means, intervals and tests (NumPy and SciPy only)
    plots      the figures (matplotlib, imported when drawing)
    device     which accelerator a run uses

Importing the package itself loads nothing: `report.py` reads results with `tables`
and `stats` alone, without Keras or TensorFlow.
"""
