# Config validation, paths, wildcard constraints and input functions. Kept cheap: every
# cluster job re-parses this file.
import re
import sys

from lalm_eval.config import ConfigError, selected_snrs, selected_suites, validate_config
from lalm_eval.mixing import parse_snr, snr_split_name

try:
    validate_config(config)
except ConfigError as error:
    sys.exit(str(error))

RES = config["paths"]["resources"]
OUT = config["paths"]["results"]
CORPORA = config["corpora"]
# enabled suites and SNRs after `select:` (systems filtered by select.models)
SUITES = selected_suites(config)
SSEU_SUITES = [name for name in SUITES if name != "jasco"]
SNR_SPLITS = [snr_split_name(parse_snr(v)) for v in selected_snrs(config)]
#: the single split of suites without SNR conditions (jasco)
WHOLE_SPLIT = "all"
MODELS = config.get("models", {})
MODELS_IN_USE = sorted({m for s in SUITES.values() for m in s.get("systems", {})})
JUDGES = sorted(SUITES["jasco"]["judges"]) if "jasco" in SUITES else []


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


def prompt_set_file(suite):
    """Path of a suite's prompt set (fetched, packaged name or file), an input of its jobs."""
    from lalm_eval.prompts import prompt_set_path

    if SUITES[suite].get("prompts_source"):
        return f"{RES}/prompts/{suite}.yaml"
    return str(prompt_set_path(SUITES[suite]["prompts"]))


def prompt_set_name(suite):
    """What scripts load: the fetched file or the configured name/path (None for jasco,
    whose instructions come with its data)."""
    if suite == "jasco":
        return None
    if SUITES[suite].get("prompts_source"):
        return f"{RES}/prompts/{suite}.yaml"
    return SUITES[suite]["prompts"]


def corpora_of_kind(kind):
    return [name for name, c in CORPORA.items() if c["kind"] == kind]


def alternation(names):
    """Regex alternation for a wildcard constraint; matches nothing when empty."""
    return "|".join(map(re.escape, names)) if names else "(?!x)x"


wildcard_constraints:
    suite=alternation(SUITES),
    split=alternation(SNR_SPLITS + [WHOLE_SPLIT]),
    role="speech|background",
    corpus=alternation(CORPORA),


def source_table(corpus, role):
    """Path of a corpus's source table (docs/architecture.md)."""
    if CORPORA[corpus]["kind"] == "tables":
        path = CORPORA[corpus][role]
        if path is None:
            raise ValueError(f"corpora.{corpus} has no '{role}' table but a suite uses it")
        return path
    if CORPORA[corpus]["kind"] == "demo":
        folder = "sources" if role == "speech" else "backgrounds"
        return f"{RES}/corpora/{corpus}/{folder}/{role}.csv"
    return f"{RES}/tables/{corpus}/{role}.csv"


def suite_source_tables(wildcards):
    suite = SUITES[wildcards.suite]
    if wildcards.role == "speech":
        return [source_table(suite["speech_corpus"], "speech")]
    return [source_table(c, "background") for c in suite["background_corpora"]]


def prepared_store(suite, role):
    return f"{RES}/prepared/{suite}/{role}"


def registry_stamp(wildcards):
    name = CORPORA[wildcards.corpus].get("registry_name", wildcards.corpus)
    return f"{RES}/downloads/{name}/.complete.json"


def split_manifests(suite):
    return expand(f"{OUT}/{suite}/manifests/{{split}}.csv", split=SNR_SPLITS)


def prediction_files(suite):
    runs = range(SUITES[suite].get("runs", 1))
    if suite == "jasco":
        return [
            f"{OUT}/jasco/predictions/{model}/open/{WHOLE_SPLIT}/run{run}.jsonl"
            for model in SUITES[suite]["systems"]
            for run in runs
        ]
    return [
        f"{OUT}/{suite}/predictions/{model}/{mode}/{split}/run{run}.jsonl"
        for model, modes in SUITES[suite].get("systems", {}).items()
        for mode in modes
        for split in SNR_SPLITS
        for run in runs
    ]


def system_prediction_files(suite, model, mode):
    return [
        f"{OUT}/{suite}/predictions/{model}/{mode}/{split}/run{run}.jsonl"
        for split in SNR_SPLITS
        for run in range(SUITES[suite].get("runs", 1))
    ]


def score_files(suite):
    files = [f"{OUT}/{suite}/scores/ground_truth/reference.csv"]
    for model, modes in SUITES[suite].get("systems", {}).items():
        files += [f"{OUT}/{suite}/scores/{model}/{mode}.csv" for mode in modes]
    return files


def infer_inputs(wildcards):
    """Inputs of an inference job: the SSEU split (manifest, audio, labels, prompt set) or
    the JASCO items table and protocol."""
    suite = wildcards.suite
    if suite == "jasco":
        return {"item_table": f"{OUT}/jasco/items.csv", "protocol": f"{OUT}/jasco/protocol.json"}
    return {
        "manifest": f"{OUT}/{suite}/manifests/{wildcards.split}.csv",
        "audio": f"{OUT}/{suite}/audio/{wildcards.split}",
        "labels": f"{OUT}/{suite}/labels.json",
        "prompts": prompt_set_file(suite),
    }


def jasco_judgement_files():
    suite = SUITES["jasco"]
    return [
        f"{OUT}/jasco/judgements/{judge}/{model}/run{run}.jsonl"
        for judge in JUDGES
        for model in suite["systems"]
        for run in range(suite["runs"])
    ]


def all_targets():
    targets = []
    if "jasco" in SUITES and SUITES["jasco"]["systems"]:
        targets.append(f"{OUT}/jasco/report/results.json")
        targets.append(f"{OUT}/jasco/inference_summary.md")
    for suite in SSEU_SUITES:
        targets += split_manifests(suite)
        targets.append(f"{OUT}/{suite}/corpus_summary.md")
        if SUITES[suite].get("systems"):
            targets.append(f"{OUT}/{suite}/inference_summary.md")
            targets.append(f"{OUT}/{suite}/report/results.json")
    return targets
