# Auditory knowledge: MCQ set -> text LLM answers; benchmark (MMAU / MMAR / demo) -> captions
# per captioner -> cascade answers per LLM; LALM answers from audio -> tables + correlation.

rule mcq_table:
    output:
        table=f"{OUT}/knowledge/mcq/{{corpus}}.csv",
        balance=f"{OUT}/knowledge/mcq/{{corpus}}.balance.json",
    params:
        path=lambda w: CORPORA[w.corpus]["path"],
        strict_categories=lambda w: CORPORA[w.corpus]["strict_categories"],
    log:
        f"{OUT}/logs/mcq_table_{{corpus}}.log",
    wildcard_constraints:
        corpus=alternation(corpora_of_kind("mcq")),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
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
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/mmau_demo_data.py"


rule benchmark_table:
    input:
        unpack(benchmark_source),
    output:
        table=f"{OUT}/knowledge/benchmarks/{{corpus}}.csv",
    params:
        kind=lambda w: CORPORA[w.corpus]["kind"],
        paths=lambda w: benchmark_paths(w.corpus),
    log:
        f"{OUT}/logs/benchmark_table_{{corpus}}.log",
    wildcard_constraints:
        corpus=alternation(corpora_of_kind("mmau_demo") + corpora_of_kind("mmau")
                           + corpora_of_kind("mmar")),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/benchmark_table.py"


rule knowledge_report:
    input:
        predictions=sorted(set(knowledge_prediction_files().values())),
        mcq=expand(f"{OUT}/knowledge/mcq/{{c}}.csv", c=KNOWLEDGE_SPLITS[: bool(KNOWLEDGE["mcq_corpus"])]),
        benchmarks=expand(f"{OUT}/knowledge/benchmarks/{{c}}.csv", c=KNOWLEDGE["benchmarks"]),
    output:
        heatmap=report(
            f"{OUT}/knowledge/report/figures/correlation_heatmap.png",
            caption="../report/knowledge_heatmap.rst",
            category="Auditory knowledge",
            labels={"output": "correlation heatmap"},
        ),
        tables=report(
            directory(f"{OUT}/knowledge/report/tables"),
            patterns=["{name}.html"],
            caption="../report/knowledge_tables.rst",
            category="Auditory knowledge",
            labels={"table": "{name}"},
        ),
        results=f"{OUT}/knowledge/report/results.json",
    params:
        files=knowledge_prediction_files(),
        suite_config=KNOWLEDGE,
        models={m: MODELS[m] for m in KNOWLEDGE["systems"]},
        seed=config["seed"],
    log:
        f"{OUT}/logs/knowledge_report.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/knowledge_report.py"
