# Config validation, the suite objects, paths, wildcard constraints and the generic input
# functions. Kept cheap: every cluster job re-parses this file. No rule here knows a suite
# kind: each suite object (lalm_eval.suites) answers for itself.
import os
import sys

from lalm_eval.config import ConfigError, selected_snrs, selected_suites, validate_config
from lalm_eval.mixing import parse_snr, snr_split_name
from lalm_eval.job_resources import job_resources
from lalm_eval.suites import Plan, build_suite, job_params
from lalm_eval.suites.base import split_pattern as alternation

# the source tables of `kind: tables` corpora are checked once, by the main process (not
# again by every cluster job that parses this file)
try:
    validate_config(config, check_tables=workflow.is_main_process)
except ConfigError as error:
    sys.exit(str(error))

RES = config["paths"]["resources"]
OUT = config["paths"]["results"]
CORPORA = config["corpora"]
MODELS = config.get("models", {})
PLUGINS = config.get("plugins", [])
# enabled SNRs after `select:`; the suites after `select:` (systems filtered)
SNR_SPLITS = [snr_split_name(parse_snr(v)) for v in selected_snrs(config)]
PLAN = Plan(config, RES, OUT, tuple(SNR_SPLITS))
SUITES = {name: build_suite(name, s, PLAN) for name, s in selected_suites(config).items()}
MODELS_IN_USE = sorted({m for s in SUITES.values() for m in s.systems()})
ENCODERS = config.get("encoders", {})
# models the workflow trains (rule train_<name>; lalm_eval.training)
TRAINED_MODELS = sorted(n for n, m in MODELS.items() if m.get("training"))


def suites_of_kind(kind):
    """Names of the configured suites of one kind (for that kind's own rule file)."""
    return [name for name, s in SUITES.items() if s.kind == kind]


def suite_rule_files():
    """The rule files of the kinds in use, each once, in config order."""
    files = []
    for s in SUITES.values():
        files += [f for f in type(s).rules if f not in files]
    return files


def model_closure(name):
    """The entry of ``name`` and of every model it builds on (cascade components), so a
    job's params change exactly when one of its models' settings does."""
    todo, seen = [name], {}
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen[current] = MODELS[current]
        for value in MODELS[current].get("options", {}).values():
            if isinstance(value, str) and value in MODELS:
                todo.append(value)
    return dict(sorted(seen.items()))


def trained_manifest(name):
    return f"{OUT}/training/{name}/manifest.json"


def trained_inputs(name):
    """The finished-model manifests of the trained models ``name`` is or builds on (inputs
    of its infer rule: retraining reruns exactly the jobs that use the model)."""
    return {f"trained_{m}": trained_manifest(m) for m in model_closure(name)
            if m in TRAINED_MODELS}


def training_data_file(name):
    """The training set of trained model ``name``: a file given in config, or the one a
    suite writes for it (Suite.training_set_file)."""
    data = MODELS[name]["training"]["data"]
    if "file" in data:
        return data["file"]
    return build_suite(data["suite"], config["suites"][data["suite"]], PLAN).training_set_file(
        name)


def training_job_params(name):
    """What train_<name> passes to lalm_eval.training.job.TrainingJob."""
    training = MODELS[name]["training"]
    return {
        "model_name": name,
        "models": {name: MODELS[name], training["llm"]: MODELS[training["llm"]]},
        "encoder_name": training["encoder"],
        "encoder_spec": ENCODERS[training["encoder"]],
        "data_file": training_data_file(name),
        "out_dir": f"{OUT}/training/{name}",
        "feature_cache": f"{RES}/features/{training['encoder']}",
        "processes": training["processes"],
        "nodes": training["nodes"],
    }


def registry_stamp(wildcards):
    """The finished-download marker of a registry corpus (input of its table rule)."""
    return PLAN.download_stamp(CORPORA[wildcards.corpus].get("registry_name", wildcards.corpus))


def rule_file(name):
    """Where a kind's rules live (a name under workflow/rules/, or an absolute path)."""
    return name if os.path.isabs(name) else os.path.join("workflow", "rules", name)


def corpora_of_kind(kind):
    return [name for name, c in CORPORA.items() if c["kind"] == kind]


wildcard_constraints:
    split=alternation(sorted({split for s in SUITES.values() for split in s.splits()})),
    role="speech|background",
    corpus=alternation(CORPORA),
    run=r"\d+",


# ---- generic input functions (every suite answers for itself)
def inference_inputs(wildcards):
    return SUITES[wildcards.suite].inference_inputs(wildcards.mode, wildcards.split)


def score_inputs(wildcards):
    return SUITES[wildcards.suite].score_inputs(wildcards.model, wildcards.mode)


def report_inputs(wildcards):
    return SUITES[wildcards.suite].report_inputs()


def suite_params(wildcards):
    return job_params(SUITES[wildcards.suite], PLUGINS)


def all_targets():
    """The default target's inputs: each suite's targets and the intermediate files its
    reports are built from (so a deleted one is rebuilt with what depends on it)."""
    targets = [f"{OUT}/report/run_info.html"]
    # the loss curves of the trained models the suites use (the manifests come with them)
    for name in MODELS_IN_USE:
        targets += [f"{OUT}/training/{m}/loss_curve.png" for m in model_closure(name)
                    if m in TRAINED_MODELS]
    for s in SUITES.values():
        targets += s.targets() + s.intermediate_files()
    return list(dict.fromkeys(targets))


def distill_demo_inputs(wildcards):
    """The demo corpus tables a distillation set is cut from, and the evaluation set whose
    recordings it leaves out."""
    entry = CORPORA[wildcards.corpus]
    root = f"{RES}/corpora/{entry['events_from']}"
    inputs = {"events": f"{root}/sources/events.csv",
              "background": f"{root}/backgrounds/background.csv"}
    if entry["exclude_from"]:
        inputs["exclude"] = f"{RES}/corpora/{entry['exclude_from']}/sources.json"
    return inputs
