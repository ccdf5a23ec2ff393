# Inference: one rule per model (infer_<model>), one job per (suite, split, model, mode, run).
# JASCO answers use the same rules (split 'all', mode 'open').
# `snakemake -R infer_<model>` reruns exactly that model and what depends on it.


rule fetch_prompt_set:
    output:
        f"{RES}/prompts/{{suite}}.yaml",
    params:
        source=lambda w: SUITES[w.suite]["prompts_source"],
    log:
        f"{RES}/logs/fetch_prompt_set_{{suite}}.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    retries: 2
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/fetch_prompt_set.py"


rule suite_labels:
    input:
        background=f"{RES}/prepared/{{suite}}/background.csv",
    output:
        labels=f"{OUT}/{{suite}}/labels.json",
    log:
        f"{OUT}/logs/suite_labels_{{suite}}.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/suite_labels.py"


for _model in MODELS_IN_USE:
    _resources = MODELS[_model].get("resources", {})

    rule:
        name:
            f"infer_{_model}"
        input:
            unpack(infer_inputs),
        output:
            predictions=f"{OUT}/{{suite}}/predictions/{_model}/{{mode}}/{{split}}/run{{run}}.jsonl",
        params:
            model=_model,
            models=model_closure(_model),
            prompts=lambda w: prompt_set_name(w.suite),
            seed=config["seed"],
            cache=lambda w, _m=_model: (
                f"{OUT}/{w.suite}/cache/{_m}/{w.mode}/{w.split}/run{w.run}.jsonl"
            ),
        log:
            f"{OUT}/logs/infer_{_model}_{{suite}}_{{mode}}_{{split}}_run{{run}}.log",
        benchmark:
            f"{OUT}/benchmarks/infer_{_model}_{{suite}}_{{mode}}_{{split}}_run{{run}}.tsv"
        wildcard_constraints:
            suite=alternation(SUITES),
            mode="independent|joint|cot|open|text|caption|audio|cascade-[a-z0-9_]+",
            run=r"\d+",
        threads: 2
        resources:
            gpu=_resources.get("gpu", 0),
            mem_mb=_resources.get("mem_mb", 4000),
            runtime=_resources.get("runtime", 120),
        conda:
            "../../envs/models.yaml"
        script:
            "../scripts/infer.py"


rule inference_summary:
    input:
        predictions=lambda w: prediction_files(w.suite),
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
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/inference_summary.py"
