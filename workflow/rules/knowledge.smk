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
        sources=f"{RES}/corpora/{{corpus}}/sources.json",
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


rule distill_demo_data:
    input:
        unpack(distill_demo_inputs),
    output:
        table=f"{RES}/corpora/{{corpus}}/distill.jsonl",
    params:
        settings=lambda w: CORPORA[w.corpus]["settings"],
        seed=config["seed"],
    log:
        f"{RES}/logs/distill_demo_data_{{corpus}}.log",
    benchmark:
        f"{RES}/benchmarks/distill_demo_data_{{corpus}}.tsv"
    wildcard_constraints:
        corpus=alternation(corpora_of_kind("distill_demo")),
    threads: 1
    resources:
        **job_resources("distill_demo_data"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/distill_demo_data.py"


rule distill_clips:
    input:
        unpack(lambda w: SUITES[w.suite].distill_source()),
    output:
        clips=f"{OUT}/{{suite}}/distill/clips.jsonl",
        summary=f"{OUT}/{{suite}}/distill/clips.summary.json",
    params:
        source=lambda w: SUITES[w.suite].distill_source_params(),
        seed=config["seed"],
    log:
        f"{OUT}/logs/distill_clips_{{suite}}.log",
    wildcard_constraints:
        suite=alternation([n for n in KNOWLEDGE_SUITES if SUITES[n].grounded["models"]]),
    threads: 1
    resources:
        **job_resources("distill_clips"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/distill_clips.py"


rule distill_training_set:
    input:
        clips=f"{OUT}/{{suite}}/distill/clips.jsonl",
        responses=lambda w: SUITES[w.suite].distill_predictions(w.backbone),
    output:
        data=f"{OUT}/{{suite}}/distill/{{backbone}}.jsonl",
        summary=f"{OUT}/{{suite}}/distill/{{backbone}}.summary.json",
    params:
        prompts=lambda w: SUITES[w.suite].grounded["prompts"],
        lalm=lambda w: SUITES[w.suite].grounded["models"][w.backbone],
        seed=config["seed"],
    log:
        f"{OUT}/logs/distill_training_set_{{suite}}_{{backbone}}.log",
    wildcard_constraints:
        suite=alternation([n for n in KNOWLEDGE_SUITES if SUITES[n].grounded["models"]]),
        backbone=alternation(sorted({b for n in KNOWLEDGE_SUITES
                                     for b in SUITES[n].grounded["models"]})),
    threads: 1
    resources:
        **job_resources("distill_training_set"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/distill_training_set.py"


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
