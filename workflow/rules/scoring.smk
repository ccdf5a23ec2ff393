# Generic scoring (one job per suite, system and mode, over all splits and runs), the
# generic suite report (for kinds without a report of their own) and the run's
# configuration page. Kinds that score or report in their own rules declare no score jobs
# / set generic_report = False (lalm_eval.suites.base.Suite).
from lalm_eval.reports.run_info import code_state

SCORED_SUITES = [n for n, s in SUITES.items() if s.score_jobs()]
GENERIC_REPORT_SUITES = [n for n, s in SUITES.items() if type(s).generic_report]


rule score:
    input:
        unpack(score_inputs),
    output:
        scores=f"{OUT}/{{suite}}/scores/{{model}}/{{mode}}.csv",
        per_item=f"{OUT}/{{suite}}/scores/{{model}}/{{mode}}.items.csv.gz",
    params:
        suite=suite_params,
        job=lambda w: SUITES[w.suite].score_params(w.model, w.mode),
        seed=config["seed"],
    log:
        f"{OUT}/logs/score_{{suite}}_{{model}}_{{mode}}.log",
    benchmark:
        f"{OUT}/benchmarks/score_{{suite}}_{{model}}_{{mode}}.tsv"
    wildcard_constraints:
        suite=alternation(SCORED_SUITES),
        model=alternation(MODELS_IN_USE),
        mode="|".join(sorted({type(s).modes for s in SUITES.values()})),
    threads: 1
    resources:
        **job_resources("score"),
    conda:
        "../../envs/models.yaml"
    script:
        "../scripts/score.py"


rule suite_report:
    input:
        unpack(report_inputs),
    output:
        results=f"{OUT}/{{suite}}/report/results.json",
        pages=report(
            directory(f"{OUT}/{{suite}}/report/pages"),
            patterns=["{name}.html"],
            caption="../report/suite_report.rst",
            category="Suites",
            labels={"suite": "{suite}", "table": "{name}"},
        ),
    params:
        suite=suite_params,
        job=lambda w: SUITES[w.suite].report_params(),
        seed=config["seed"],
    log:
        f"{OUT}/logs/suite_report_{{suite}}.log",
    wildcard_constraints:
        suite=alternation(GENERIC_REPORT_SUITES),
    threads: 1
    resources:
        **job_resources("suite_report"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/suite_report.py"


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
        **job_resources("run_info"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/run_info.py"
