# JASCO / What Are They Doing's own rules: release tree -> items + protocol -> answers
# (generic infer_<model>, split "all", mode "open") -> one judge job per (suite, judge,
# system, run) -> Table II and figures.
JASCO_SUITES = suites_of_kind("jasco")
JUDGES = sorted({j for n in JASCO_SUITES for j in SUITES[n].judges})


rule jasco_demo_data:
    input:
        events=lambda w: f"{RES}/corpora/{CORPORA[w.corpus]['events_from']}/sources/events.csv",
    output:
        v0=f"{RES}/corpora/{{corpus}}/dataset/v0/v0.csv",
        readme=f"{RES}/corpora/{{corpus}}/README.md",
    params:
        spec=lambda w: CORPORA[w.corpus]["spec"],
        catalog=lambda w: CORPORA[CORPORA[w.corpus]["events_from"]]["catalog"],
        work_dir=lambda w: f"{RES}/corpora/{CORPORA[w.corpus]['events_from']}/debs",
        seed=config["seed"],
    log:
        f"{RES}/logs/jasco_demo_data_{{corpus}}.log",
    benchmark:
        f"{RES}/benchmarks/jasco_demo_data_{{corpus}}.tsv"
    wildcard_constraints:
        corpus=alternation(corpora_of_kind("jasco_demo")),
    threads: 1
    resources:
        **job_resources("jasco_demo_data"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/jasco_demo_data.py"


rule jasco_items:
    input:
        unpack(lambda w: SUITES[w.suite].release_inputs()),
    output:
        item_table=f"{OUT}/{{suite}}/items.csv",
        protocol=f"{OUT}/{{suite}}/protocol.json",
    params:
        root=lambda w: SUITES[w.suite].release_root(),
        n_clips=lambda w: SUITES[w.suite].settings["n_clips"],
        instructions_sha256=lambda w: SUITES[w.suite].corpus.get("instructions_sha256"),
        judge_template_sha256=lambda w: SUITES[w.suite].corpus.get("judge_template_sha256"),
        source=lambda w: SUITES[w.suite].settings["corpus"],
    log:
        f"{OUT}/logs/jasco_items_{{suite}}.log",
    wildcard_constraints:
        suite=alternation(JASCO_SUITES),
    threads: 1
    resources:
        **job_resources("jasco_items"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/jasco_items.py"


for _judge in JUDGES:

    rule:
        name:
            f"judge_{_judge}"
        input:
            unpack(lambda w: SUITES[w.suite].judge_inputs(w.model, w.run)),
        output:
            judgements=f"{OUT}/{{suite}}/judgements/{_judge}/{{model}}/run{{run}}.jsonl",
        params:
            judge=_judge,
            models=model_closure(_judge),
            system=lambda w: SUITES[w.suite].settings["judge_system"],
            retries=lambda w: SUITES[w.suite].settings["judge_retries"],
            orientation_call=lambda w: SUITES[w.suite].settings["orientation_call"],
            seed=config["seed"],
            cache_dir=lambda w, _j=_judge: f"{OUT}/{w.suite}/cache/judges/{_j}/{w.model}/run{w.run}",
        log:
            f"{OUT}/logs/judge_{_judge}_{{suite}}_{{model}}_run{{run}}.log",
        benchmark:
            f"{OUT}/benchmarks/judge_{_judge}_{{suite}}_{{model}}_run{{run}}.tsv"
        wildcard_constraints:
            suite=alternation([n for n in JASCO_SUITES if _judge in SUITES[n].judges]),
            model=alternation(sorted({m for n in JASCO_SUITES for m in SUITES[n].settings["systems"]})),
        threads: model_threads(MODELS[_judge])
        resources:
            **model_resources(MODELS[_judge]),
        conda:
            "../../envs/models.yaml"
        script:
            "../scripts/judge.py"


rule jasco_report:
    input:
        judgements=lambda w: SUITES[w.suite].judgement_files(),
        protocol=f"{OUT}/{{suite}}/protocol.json",
    output:
        table2=report(
            f"{OUT}/{{suite}}/report/tables/table2_faithful.html",
            caption="../report/jasco_table2.rst",
            category="JASCO",
            labels={"suite": "{suite}", "output": "Table II (faithful parsing)"},
        ),
        table2_strict=report(
            f"{OUT}/{{suite}}/report/tables/table2_strict.html",
            caption="../report/jasco_table2.rst",
            category="JASCO",
            labels={"suite": "{suite}", "output": "Table II (strict parsing)"},
        ),
        difference=report(
            f"{OUT}/{{suite}}/report/tables/parsing_difference.html",
            caption="../report/jasco_parsing.rst",
            category="JASCO",
            labels={"suite": "{suite}", "output": "faithful vs strict parsing"},
        ),
        figure=report(
            f"{OUT}/{{suite}}/report/figures/modality_dependence_faithful.png",
            caption="../report/jasco_dependence.rst",
            category="JASCO",
            labels={"suite": "{suite}", "output": "modality dependence"},
        ),
        agreement=report(
            f"{OUT}/{{suite}}/report/tables/agreement.html",
            caption="../report/jasco_agreement.rst",
            category="JASCO",
            labels={"suite": "{suite}", "output": "judge agreement"},
        ),
        health=report(
            f"{OUT}/{{suite}}/report/tables/judge_health.html",
            caption="../report/jasco_health.rst",
            category="JASCO",
            labels={"suite": "{suite}", "output": "judge health"},
        ),
        verdicts=f"{OUT}/{{suite}}/scores/verdicts.csv",
        results=f"{OUT}/{{suite}}/report/results.json",
    params:
        suite_config=lambda w: SUITES[w.suite].settings,
        models=lambda w: {m: MODELS[m] for m in SUITES[w.suite].settings["systems"] + SUITES[w.suite].judges},
        seed=config["seed"],
    log:
        f"{OUT}/logs/jasco_report_{{suite}}.log",
    wildcard_constraints:
        suite=alternation(JASCO_SUITES),
    threads: 1
    resources:
        **job_resources("jasco_report"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/jasco_report.py"
