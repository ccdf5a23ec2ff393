# Trained LALMs: one rule per model with a `training` block (train_<model>), one job per
# trained model. Frozen encoder features are cached by content under RES/features/<encoder>/;
# the engine resumes from its last complete checkpoint and writes manifest.json last, so a
# killed job never counts as a finished model. `snakemake -R train_<model>` retrains it
# (bit-identical on CPU when nothing changed) and reruns what depends on it.
from lalm_eval.job_resources import training_resources, training_threads


for _model in TRAINED_MODELS:

    rule:
        name:
            f"train_{_model}"
        input:
            data=training_data_file(_model),
        output:
            manifest=f"{OUT}/training/{_model}/manifest.json",
            loss=report(
                f"{OUT}/training/{_model}/loss.csv",
                caption="../report/training_loss.rst",
                category="Training",
                labels={"model": _model, "table": "loss per step"},
            ),
            curve=report(
                f"{OUT}/training/{_model}/loss_curve.png",
                caption="../report/training_loss.rst",
                category="Training",
                labels={"model": _model, "figure": "loss curve"},
            ),
        params:
            job=lambda w, _m=_model: training_job_params(_m),
        log:
            f"{OUT}/logs/train_{_model}.log",
        benchmark:
            f"{OUT}/benchmarks/train_{_model}.tsv"
        threads: training_threads(MODELS[_model])
        # trainings are the long jobs most others wait for: start them before ready peers
        priority: 10
        resources:
            **training_resources(MODELS[_model]),
        conda:
            "../../envs/models.yaml"
        script:
            "../scripts/train.py"
