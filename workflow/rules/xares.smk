# XARES-LLM's own rules: the task items (demo corpus or upstream shards), the training mixture every system trains on
# (the input of its train_<model>), one linear-probe job per encoder and the report.
# Training is the generic train_<model> rule; inference and scoring the generic rules.
XARES_SUITES = suites_of_kind("xares")


rule xares_items:
    input:
        unpack(lambda w: SUITES[w.suite].items_inputs()),
    output:
        item_table=f"{OUT}/{{suite}}/data/items.csv",
    params:
        tasks=lambda w: SUITES[w.suite].settings["tasks"],
        data=lambda w: SUITES[w.suite].settings["data"],
        demo=lambda w: SUITES[w.suite].settings["demo"],
        seed=config["seed"],
    log:
        f"{OUT}/logs/xares_items_{{suite}}.log",
    benchmark:
        f"{OUT}/benchmarks/xares_items_{{suite}}.tsv"
    wildcard_constraints:
        suite=alternation([n for n in XARES_SUITES if SUITES[n].builds_items()]),
    threads: 1
    resources:
        **job_resources("xares_items"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/xares_items.py"


rule xares_training_set:
    input:
        item_table=lambda w: SUITES[w.suite].items_file(),
    output:
        mixture=f"{OUT}/{{suite}}/training/mixture.jsonl",
    params:
        tasks=lambda w: SUITES[w.suite].settings["tasks"],
        size=lambda w: SUITES[w.suite].settings["mixture_size"],
        seed=config["seed"],
    log:
        f"{OUT}/logs/xares_training_set_{{suite}}.log",
    wildcard_constraints:
        suite=alternation(XARES_SUITES),
    threads: 1
    resources:
        **job_resources("xares_training_set"),
    conda:
        "../../envs/audio.yaml"
    script:
        "../scripts/xares_training_set.py"


rule xares_probe:
    input:
        item_table=lambda w: SUITES[w.suite].items_file(),
    output:
        scores=f"{OUT}/{{suite}}/probes/{{encoder}}.csv",
    params:
        tasks=lambda w: SUITES[w.suite].settings["tasks"],
        probes=lambda w: SUITES[w.suite].settings["probes"],
        bootstrap=lambda w: SUITES[w.suite].settings["bootstrap"],
        encoder=lambda w: ENCODERS[w.encoder],
        feature_cache=lambda w: f"{RES}/features/{w.encoder}",
        seed=config["seed"],
    log:
        f"{OUT}/logs/xares_probe_{{suite}}_{{encoder}}.log",
    benchmark:
        f"{OUT}/benchmarks/xares_probe_{{suite}}_{{encoder}}.tsv"
    wildcard_constraints:
        suite=alternation(XARES_SUITES),
        encoder=alternation(ENCODERS),
    threads: 1
    resources:
        **job_resources("xares_probe"),
    conda:
        "../../envs/models.yaml"
    script:
        "../scripts/xares_probe.py"


rule xares_report:
    input:
        unpack(report_inputs),
    output:
        leaderboard=report(
            f"{OUT}/{{suite}}/report/tables/leaderboard.html",
            caption="../report/xares_leaderboard.rst",
            category="XARES-LLM",
            labels={"suite": "{suite}", "table": "leaderboard"},
        ),
        per_task=report(
            f"{OUT}/{{suite}}/report/figures/per_task.png",
            caption="../report/xares_leaderboard.rst",
            category="XARES-LLM",
            labels={"suite": "{suite}", "figure": "per task"},
        ),
        loss_curves=report(
            f"{OUT}/{{suite}}/report/figures/loss_curves.png",
            caption="../report/training_loss.rst",
            category="XARES-LLM",
            labels={"suite": "{suite}", "figure": "loss curves"},
        ),
        results=f"{OUT}/{{suite}}/report/results.json",
    params:
        suite=suite_params,
        job=lambda w: SUITES[w.suite].report_params(),
        seed=config["seed"],
    log:
        f"{OUT}/logs/xares_report_{{suite}}.log",
    wildcard_constraints:
        suite=alternation(XARES_SUITES),
    threads: 1
    resources:
        **job_resources("xares_report"),
    conda:
        "../../envs/models.yaml"
    script:
        "../scripts/suite_report.py"
