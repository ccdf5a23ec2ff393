# JASCO / What Are They Doing: release tree -> items + protocol -> answers (infer_<model>,
# split "all", mode "open") -> one judge job per (judge, system, run) -> Table II and figures.

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
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/jasco_demo_data.py"


rule jasco_items:
    input:
        unpack(jasco_release_inputs),
    output:
        item_table=f"{OUT}/jasco/items.csv",
        protocol=f"{OUT}/jasco/protocol.json",
    params:
        root=jasco_release_root(),
        n_clips=SUITES["jasco"]["n_clips"],
        instructions_sha256=jasco_corpus().get("instructions_sha256"),
        judge_template_sha256=jasco_corpus().get("judge_template_sha256"),
        source=SUITES["jasco"]["corpus"],
    log:
        f"{OUT}/logs/jasco_items.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/jasco_items.py"


for _judge in JUDGES:
    _resources = MODELS[_judge].get("resources", {})

    rule:
        name:
            f"judge_{_judge}"
        input:
            item_table=f"{OUT}/jasco/items.csv",
            protocol=f"{OUT}/jasco/protocol.json",
            answers=f"{OUT}/jasco/predictions/{{model}}/open/{WHOLE_SPLIT}/run{{run}}.jsonl",
        output:
            judgements=f"{OUT}/jasco/judgements/{_judge}/{{model}}/run{{run}}.jsonl",
        params:
            judge=_judge,
            models=model_closure(_judge),
            system=SUITES["jasco"]["judge_system"],
            retries=SUITES["jasco"]["judge_retries"],
            orientation_call=SUITES["jasco"]["orientation_call"],
            seed=config["seed"],
            cache_dir=lambda w, _j=_judge: f"{OUT}/jasco/cache/judges/{_j}/{w.model}/run{w.run}",
        log:
            f"{OUT}/logs/judge_{_judge}_{{model}}_run{{run}}.log",
        benchmark:
            f"{OUT}/benchmarks/judge_{_judge}_{{model}}_run{{run}}.tsv"
        wildcard_constraints:
            model=alternation(SUITES["jasco"]["systems"]),
            run=r"\d+",
        threads: 2
        resources:
            gpu=_resources.get("gpu", 0),
            mem_mb=_resources.get("mem_mb", 4000),
            runtime=_resources.get("runtime", 120),
        conda:
            "../../envs/models.yaml"
        script:
            "../scripts/judge.py"


rule jasco_report:
    input:
        judgements=jasco_judgement_files(),
        protocol=f"{OUT}/jasco/protocol.json",
    output:
        table2=report(
            f"{OUT}/jasco/report/tables/table2_faithful.html",
            caption="../report/jasco_table2.rst",
            category="JASCO",
            labels={"output": "Table II (faithful parsing)"},
        ),
        table2_strict=report(
            f"{OUT}/jasco/report/tables/table2_strict.html",
            caption="../report/jasco_table2.rst",
            category="JASCO",
            labels={"output": "Table II (strict parsing)"},
        ),
        difference=report(
            f"{OUT}/jasco/report/tables/parsing_difference.html",
            caption="../report/jasco_parsing.rst",
            category="JASCO",
            labels={"output": "faithful vs strict parsing"},
        ),
        figure=report(
            f"{OUT}/jasco/report/figures/modality_dependence_faithful.png",
            caption="../report/jasco_dependence.rst",
            category="JASCO",
            labels={"output": "modality dependence"},
        ),
        agreement=report(
            f"{OUT}/jasco/report/tables/agreement.html",
            caption="../report/jasco_agreement.rst",
            category="JASCO",
            labels={"output": "judge agreement"},
        ),
        health=report(
            f"{OUT}/jasco/report/tables/judge_health.html",
            caption="../report/jasco_health.rst",
            category="JASCO",
            labels={"output": "judge health"},
        ),
        verdicts=f"{OUT}/jasco/scores/verdicts.csv",
        results=f"{OUT}/jasco/report/results.json",
    params:
        suite_config=SUITES.get("jasco"),
        models={m: MODELS[m] for m in SUITES["jasco"]["systems"] + JUDGES},
        seed=config["seed"],
    log:
        f"{OUT}/logs/jasco_report.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/jasco_report.py"
