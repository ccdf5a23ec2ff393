# Scoring (one job per suite, model and mode, over all splits and runs), the ground-truth
# upper-bound check, and the suite report (tables, figures, results JSON).
from lalm_eval.reports.run_info import code_state



rule score_sseu:
    input:
        predictions=lambda w: system_prediction_files(w.suite, w.model, w.mode),
        manifests=lambda w: split_manifests(w.suite),
        labels=f"{OUT}/{{suite}}/labels.json",
    output:
        scores=f"{OUT}/{{suite}}/scores/{{model}}/{{mode}}.csv",
        per_item=f"{OUT}/{{suite}}/scores/{{model}}/{{mode}}.items.csv.gz",
    params:
        scoring=config["scoring"],
        family=lambda w: MODELS[w.model]["adapter"],
        seed=config["seed"],
    log:
        f"{OUT}/logs/score_{{suite}}_{{model}}_{{mode}}.log",
    benchmark:
        f"{OUT}/benchmarks/score_{{suite}}_{{model}}_{{mode}}.tsv"
    wildcard_constraints:
        model=alternation(MODELS_IN_USE),
        mode="independent|joint|cot",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    conda:
        "../../envs/models.yaml"
    script:
        "../scripts/score_sseu.py"


rule score_ground_truth:
    input:
        manifests=lambda w: split_manifests(w.suite),
        labels=f"{OUT}/{{suite}}/labels.json",
    output:
        scores=f"{OUT}/{{suite}}/scores/ground_truth/reference.csv",
    params:
        scoring=config["scoring"],
    log:
        f"{OUT}/logs/score_ground_truth_{{suite}}.log",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    conda:
        "../../envs/models.yaml"
    script:
        "../scripts/score_ground_truth.py"


rule sseu_report:
    input:
        scores=lambda w: score_files(w.suite),
        prompts=lambda w: prompt_set_file(w.suite),
    output:
        table1=report(
            f"{OUT}/{{suite}}/report/tables/table1.html",
            caption="../report/sseu_table1.rst",
            category="SSEU-Bench",
            labels={"suite": "{suite}", "output": "Table 1"},
        ),
        figures=report(
            expand(
                f"{OUT}/{{{{suite}}}}/report/figures/{{name}}.png",
                name=["asr_wer", "asc_macc", "at_map"],
            ),
            caption="../report/sseu_figures.rst",
            category="SSEU-Bench",
            labels=lambda w, name=None: {"suite": w.suite, "figure": "metric vs SNR"},
        ),
        results=f"{OUT}/{{suite}}/report/results.json",
        scores=f"{OUT}/{{suite}}/report/scores.csv",
    params:
        suite_config=lambda w: SUITES[w.suite],
        scoring=config["scoring"],
        seed=config["seed"],
        models=lambda w: {m: MODELS[m] for m in SUITES[w.suite].get("systems", {})},
    log:
        f"{OUT}/logs/sseu_report_{{suite}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/sseu_report.py"


rule run_info:
    output:
        html=report(
            f"{OUT}/report/run_info.html",
            caption="../report/run_info.rst",
            category="Run",
            labels={"output": "configuration and versions"},
        ),
    params:
        config=config,
        configfiles=[str(f) for f in workflow.configfiles],
        code=lambda w: code_state(),
    log:
        f"{OUT}/logs/run_info.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/run_info.py"
