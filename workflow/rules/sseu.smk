# SSEU-Bench's own rules: loudness-normalised sources (once per suite and role), the
# pairing plan, one mixture job per (suite, SNR split), label sets, the fetched prompt set,
# the ground-truth check and the report. Inference and scoring are the generic rules.
SSEU_SUITES = suites_of_kind("sseu")



rule prepare_sources:
    input:
        tables=lambda w: SUITES[w.suite].source_tables(w.role),
    output:
        samples=f"{RES}/prepared/{{suite}}/{{role}}.f32",
        index=f"{RES}/prepared/{{suite}}/{{role}}.csv",
        meta=f"{RES}/prepared/{{suite}}/{{role}}.json",
        rejected=f"{RES}/prepared/{{suite}}/{{role}}.rejected.csv",
    params:
        audio=config["audio"],
        loudness=config["loudness"],
    log:
        f"{OUT}/logs/prepare_sources_{{suite}}_{{role}}.log",
    benchmark:
        f"{OUT}/benchmarks/prepare_sources_{{suite}}_{{role}}.tsv"
    wildcard_constraints:
        suite=alternation(SSEU_SUITES),
    threads: 2
    resources:
        **job_resources("prepare_sources"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/prepare_sources.py"


rule plan_pairs:
    input:
        speech=f"{RES}/prepared/{{suite}}/speech.csv",
        background=f"{RES}/prepared/{{suite}}/background.csv",
    output:
        pairs=f"{OUT}/{{suite}}/pairs.csv",
    params:
        n_clips=lambda w: SUITES[w.suite].settings["n_clips"],
        margin_s=config["mixing"]["margin_s"],
        sample_rate=config["audio"]["sample_rate"],
        seed=config["seed"],
    log:
        f"{OUT}/logs/plan_pairs_{{suite}}.log",
    wildcard_constraints:
        suite=alternation(SSEU_SUITES),
    threads: 1
    resources:
        **job_resources("plan_pairs"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/plan_pairs.py"


rule build_mixtures:
    input:
        pairs=f"{OUT}/{{suite}}/pairs.csv",
        speech=f"{RES}/prepared/{{suite}}/speech.f32",
        speech_index=f"{RES}/prepared/{{suite}}/speech.csv",
        background=f"{RES}/prepared/{{suite}}/background.f32",
        background_index=f"{RES}/prepared/{{suite}}/background.csv",
    output:
        audio=directory(f"{OUT}/{{suite}}/audio/{{split}}"),
        manifest=f"{OUT}/{{suite}}/manifests/{{split}}.csv",
    params:
        speech_store=lambda w, input: input.speech.removesuffix(".f32"),
        background_store=lambda w, input: input.background.removesuffix(".f32"),
        audio=config["audio"],
        mixing=config["mixing"],
    log:
        f"{OUT}/logs/build_mixtures_{{suite}}_{{split}}.log",
    benchmark:
        f"{OUT}/benchmarks/build_mixtures_{{suite}}_{{split}}.tsv"
    wildcard_constraints:
        suite=alternation(SSEU_SUITES),
    threads: 2
    resources:
        **job_resources("build_mixtures"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/build_mixtures.py"


rule corpus_summary:
    input:
        manifests=lambda w: SUITES[w.suite].manifests(),
        speech_rejected=f"{RES}/prepared/{{suite}}/speech.rejected.csv",
        background_rejected=f"{RES}/prepared/{{suite}}/background.rejected.csv",
    output:
        csv=report(
            f"{OUT}/{{suite}}/corpus_summary.csv",
            caption="../report/corpus_summary.rst",
            category="Corpus",
            labels={"suite": "{suite}", "table": "mixtures per SNR split"},
        ),
        md=f"{OUT}/{{suite}}/corpus_summary.md",
    log:
        f"{OUT}/logs/corpus_summary_{{suite}}.log",
    wildcard_constraints:
        suite=alternation(SSEU_SUITES),
    threads: 1
    resources:
        **job_resources("corpus_summary"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/corpus_summary.py"


rule fetch_prompt_set:
    output:
        f"{RES}/prompts/{{suite}}.yaml",
    params:
        source=lambda w: SUITES[w.suite].settings["prompts_source"],
    log:
        f"{RES}/logs/fetch_prompt_set_{{suite}}.log",
    wildcard_constraints:
        suite=alternation(SSEU_SUITES),
    threads: 1
    resources:
        **job_resources("fetch_prompt_set"),
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
    wildcard_constraints:
        suite=alternation(SSEU_SUITES),
    threads: 1
    resources:
        **job_resources("suite_labels"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/suite_labels.py"


rule score_ground_truth:
    input:
        manifests=lambda w: SUITES[w.suite].manifests(),
        labels=f"{OUT}/{{suite}}/labels.json",
    output:
        scores=f"{OUT}/{{suite}}/scores/ground_truth/reference.csv",
    params:
        scoring=config["scoring"],
    log:
        f"{OUT}/logs/score_ground_truth_{{suite}}.log",
    wildcard_constraints:
        suite=alternation(SSEU_SUITES),
    threads: 1
    resources:
        **job_resources("score_ground_truth"),
    conda:
        "../../envs/models.yaml"
    script:
        "../scripts/score_ground_truth.py"


rule sseu_report:
    input:
        scores=lambda w: SUITES[w.suite].score_files(),
        prompts=lambda w: SUITES[w.suite].prompt_file(),
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
        suite_config=lambda w: SUITES[w.suite].settings,
        scoring=config["scoring"],
        seed=config["seed"],
        models=lambda w: {m: MODELS[m] for m in SUITES[w.suite].settings["systems"]},
    log:
        f"{OUT}/logs/sseu_report_{{suite}}.log",
    wildcard_constraints:
        suite=alternation(SSEU_SUITES),
    threads: 1
    resources:
        **job_resources("sseu_report"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/sseu_report.py"
