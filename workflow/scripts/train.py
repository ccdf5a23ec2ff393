"""Train one LALM (or find it finished), then draw its loss curve."""
from lalm_eval.logs import log_to
from lalm_eval.training.job import TrainingJob, run_training_job, write_loss_curve

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as log:
    manifest = run_training_job(TrainingJob(**sm.params.job, threads=sm.threads))
    write_loss_curve(sm.params.job["model_name"], sm.output.loss, sm.output.curve)
    log.info("done: %s steps, held-out loss %s (untrained %s)", manifest.get("steps_done"),
             manifest.get("heldout_loss"), manifest.get("heldout_loss_untrained"))
