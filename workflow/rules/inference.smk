# Inference: one rule per model (infer_<model>), one job per (suite, split, model, mode, run)
# of every suite that runs it. Each suite says which jobs it has and what they read.
# `snakemake -R infer_<model>` reruns exactly that model and what depends on it.
from lalm_eval.job_resources import model_resources, model_threads
from lalm_eval.models.environments import rule_conda_env


for _model in MODELS_IN_USE:

    rule:
        name:
            f"infer_{_model}"
        input:
            unpack(lambda w, _m=_model: {**inference_inputs(w), **trained_inputs(_m)}),
        output:
            predictions=f"{OUT}/{{suite}}/predictions/{_model}/{{mode}}/{{split}}/run{{run}}.jsonl",
        params:
            suite=suite_params,
            job=lambda w, _m=_model: SUITES[w.suite].inference_params(_m, w.mode, w.split),
            model=_model,
            models=model_closure(_model),
            seed=config["seed"],
            cache=lambda w, _m=_model: SUITES[w.suite].cache_path(_m, w.mode, w.split, int(w.run)),
        log:
            f"{OUT}/logs/infer_{_model}_{{suite}}_{{mode}}_{{split}}_run{{run}}.log",
        benchmark:
            f"{OUT}/benchmarks/infer_{_model}_{{suite}}_{{mode}}_{{split}}_run{{run}}.tsv"
        wildcard_constraints:
            suite=alternation([n for n, s in SUITES.items() if _model in s.systems()]),
            mode="|".join(sorted({type(s).modes for s in SUITES.values()})),
        threads: model_threads(MODELS[_model])
        resources:
            **model_resources(MODELS[_model]),
        conda:
            rule_conda_env(MODELS[_model])
        script:
            "../scripts/infer.py"


rule inference_summary:
    input:
        predictions=lambda w: SUITES[w.suite].prediction_files(),
    output:
        csv=report(
            f"{OUT}/{{suite}}/inference_summary.csv",
            caption="../report/inference_summary.rst",
            category="Inference",
            labels={"suite": "{suite}", "table": "items and failures per job"},
        ),
        md=f"{OUT}/{{suite}}/inference_summary.md",
    wildcard_constraints:
        suite=alternation(SUITES),
    log:
        f"{OUT}/logs/inference_summary_{{suite}}.log",
    threads: 1
    resources:
        **job_resources("inference_summary"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/inference_summary.py"
