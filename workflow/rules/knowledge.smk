# Auditory knowledge's own rules: MCQ set -> table; benchmark (MMAU / MMAR / demo) -> common
# table; then the generic infer_<model> jobs (text, caption, cascade-<captioner>, audio)
# -> study tables + correlation heatmap.
KNOWLEDGE_SUITES = suites_of_kind("knowledge")


rule mcq_table:
    output:
        table=f"{OUT}/{{suite}}/mcq/{{corpus}}.csv",
        balance=f"{OUT}/{{suite}}/mcq/{{corpus}}.balance.json",
    params:
        path=lambda w: CORPORA[w.corpus]["path"],
        strict_categories=lambda w: CORPORA[w.corpus]["strict_categories"],
    log:
        f"{OUT}/logs/mcq_table_{{suite}}_{{corpus}}.log",
    wildcard_constraints:
        suite=alternation(KNOWLEDGE_SUITES),
        corpus=alternation(corpora_of_kind("mcq")),
    threads: 1
    resources:
        **job_resources("mcq_table"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/mcq_table.py"


rule mmau_demo_data:
    input:
        events=lambda w: f"{RES}/corpora/{CORPORA[w.corpus]['events_from']}/sources/events.csv",
        background=lambda w: (
            f"{RES}/corpora/{CORPORA[w.corpus]['events_from']}/backgrounds/background.csv"
        ),
    output:
        json=f"{RES}/corpora/{{corpus}}/mmau-demo.json",
    params:
        seed=config["seed"],
    log:
        f"{RES}/logs/mmau_demo_data_{{corpus}}.log",
    benchmark:
        f"{RES}/benchmarks/mmau_demo_data_{{corpus}}.tsv"
    wildcard_constraints:
        corpus=alternation(corpora_of_kind("mmau_demo")),
    threads: 1
    resources:
        **job_resources("mmau_demo_data"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/mmau_demo_data.py"


rule benchmark_table:
    input:
        unpack(lambda w: SUITES[w.suite].benchmark_source(w.corpus)),
    output:
        table=f"{OUT}/{{suite}}/benchmarks/{{corpus}}.csv",
    params:
        kind=lambda w: CORPORA[w.corpus]["kind"],
        paths=lambda w: SUITES[w.suite].benchmark_paths(w.corpus),
    log:
        f"{OUT}/logs/benchmark_table_{{suite}}_{{corpus}}.log",
    wildcard_constraints:
        suite=alternation(KNOWLEDGE_SUITES),
        corpus=alternation(corpora_of_kind("mmau_demo") + corpora_of_kind("mmau")
                           + corpora_of_kind("mmar")),
    threads: 1
    resources:
        **job_resources("benchmark_table"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/benchmark_table.py"


rule knowledge_report:
    input:
        predictions=lambda w: SUITES[w.suite].prediction_files(),
        mcq=lambda w: SUITES[w.suite].mcq_tables(),
        benchmarks=lambda w: SUITES[w.suite].benchmark_tables(),
    output:
        heatmap=report(
            f"{OUT}/{{suite}}/report/figures/correlation_heatmap.png",
            caption="../report/knowledge_heatmap.rst",
            category="Auditory knowledge",
            labels={"suite": "{suite}", "output": "correlation heatmap"},
        ),
        tables=report(
            directory(f"{OUT}/{{suite}}/report/tables"),
            patterns=["{name}.html"],
            caption="../report/knowledge_tables.rst",
            category="Auditory knowledge",
            labels={"suite": "{suite}", "table": "{name}"},
        ),
        results=f"{OUT}/{{suite}}/report/results.json",
    params:
        jobs=lambda w: SUITES[w.suite].report_jobs(),
        suite_config=lambda w: SUITES[w.suite].settings,
        models=lambda w: {m: MODELS[m] for m in SUITES[w.suite].settings["systems"]},
        seed=config["seed"],
    log:
        f"{OUT}/logs/knowledge_report_{{suite}}.log",
    wildcard_constraints:
        suite=alternation(KNOWLEDGE_SUITES),
    threads: 1
    resources:
        **job_resources("knowledge_report"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/knowledge_report.py"
