# Corpora: downloads (registry), the offline demo corpus, and source tables.
from pathlib import Path



rule download_corpus:
    output:
        f"{RES}/downloads/{{registry_name}}/.complete.json",
    params:
        root=lambda w, output: str(Path(output[0]).parent.parent),
    log:
        f"{RES}/logs/download_{{registry_name}}.log",
    benchmark:
        f"{RES}/benchmarks/download_{{registry_name}}.tsv"
    threads: 1
    resources:
        **job_resources("download_corpus"),
    retries: 2
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/download_corpus.py"


rule demo_sources:
    output:
        speech=f"{RES}/corpora/{{corpus}}/sources/speech.csv",
        events=f"{RES}/corpora/{{corpus}}/sources/events.csv",
    params:
        catalog=lambda w: CORPORA[w.corpus]["catalog"],
        work_dir=f"{RES}/corpora/{{corpus}}/debs",
        seed=config["seed"],
    log:
        f"{RES}/logs/demo_sources_{{corpus}}.log",
    benchmark:
        f"{RES}/benchmarks/demo_sources_{{corpus}}.tsv"
    wildcard_constraints:
        corpus=alternation(corpora_of_kind("demo")),
    threads: 1
    resources:
        **job_resources("demo_sources"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/demo_sources.py"


rule demo_backgrounds:
    input:
        events=f"{RES}/corpora/{{corpus}}/sources/events.csv",
    output:
        table=f"{RES}/corpora/{{corpus}}/backgrounds/background.csv",
    params:
        catalog=lambda w: CORPORA[w.corpus]["catalog"],
        n_per_scene=lambda w: CORPORA[w.corpus]["backgrounds_per_scene"],
        duration_s=lambda w: CORPORA[w.corpus]["background_duration_s"],
        sample_rate=config["audio"]["sample_rate"],
        seed=config["seed"],
    log:
        f"{RES}/logs/demo_backgrounds_{{corpus}}.log",
    benchmark:
        f"{RES}/benchmarks/demo_backgrounds_{{corpus}}.tsv"
    wildcard_constraints:
        corpus=alternation(corpora_of_kind("demo")),
    threads: 1
    resources:
        **job_resources("demo_backgrounds"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/demo_backgrounds.py"


rule vctk_table:
    input:
        registry_stamp,
    output:
        table=f"{RES}/tables/{{corpus}}/speech.csv",
    params:
        corpus=lambda w: CORPORA[w.corpus],
        seed=config["seed"],
    log:
        f"{RES}/logs/table_{{corpus}}.log",
    benchmark:
        f"{RES}/benchmarks/table_{{corpus}}.tsv"
    wildcard_constraints:
        corpus=alternation(corpora_of_kind("vctk")),
    threads: 1
    resources:
        **job_resources("vctk_table"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/corpus_table.py"


rule background_table:
    input:
        registry_stamp,
    output:
        table=f"{RES}/tables/{{corpus}}/background.csv",
    params:
        corpus=lambda w: CORPORA[w.corpus],
        seed=config["seed"],
    log:
        f"{RES}/logs/table_{{corpus}}.log",
    benchmark:
        f"{RES}/benchmarks/table_{{corpus}}.tsv"
    wildcard_constraints:
        corpus=alternation(corpora_of_kind("desed") + corpora_of_kind("maestro")),
    threads: 1
    resources:
        **job_resources("background_table"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/corpus_table.py"
