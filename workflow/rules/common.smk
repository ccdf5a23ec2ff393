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
SSEU_SUITES = [name for name in SUITES if name not in ("jasco", "knowledge")]
SNR_SPLITS = [snr_split_name(parse_snr(v)) for v in selected_snrs(config)]
#: the single split of suites without SNR conditions (jasco)
WHOLE_SPLIT = "all"
MODELS = config.get("models", {})
MODELS_IN_USE = sorted({m for s in SUITES.values() for m in s.get("systems", {})})
JUDGES = sorted(SUITES["jasco"]["judges"]) if "jasco" in SUITES else []
KNOWLEDGE = SUITES.get("knowledge")
#: splits of the knowledge suite: the MCQ corpus and the benchmark corpora
KNOWLEDGE_SPLITS = (
    [KNOWLEDGE["mcq_corpus"]] * bool(KNOWLEDGE["mcq_corpus"]) + KNOWLEDGE["benchmarks"]
    if KNOWLEDGE
    else []
)


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
    if suite == "knowledge":
        return {"mcq": KNOWLEDGE["mcq_prompts"], "choice": KNOWLEDGE["choice_prompts"]}
    if SUITES[suite].get("prompts_source"):
        return f"{RES}/prompts/{suite}.yaml"
    return SUITES[suite]["prompts"]


def corpora_of_kind(kind):
    return [name for name, c in CORPORA.items() if c["kind"] == kind]


def alternation(names):
    """Regex alternation for a wildcard constraint; matches nothing when empty."""
    return "|".join(map(re.escape, names)) if names else "(?!x)x"


wildcard_constraints:
    suite=alternation(SSEU_SUITES),  # rules of every suite widen this themselves
    split=alternation(SNR_SPLITS + [WHOLE_SPLIT] + KNOWLEDGE_SPLITS),
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
    if suite == "knowledge":
        return sorted(set(knowledge_prediction_files().values()))
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
    if suite == "knowledge":
        return knowledge_inputs(wildcards.mode, wildcards.split)
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


def knowledge_inputs(mode, split):
    """Inputs of a knowledge job: the MCQ table (text) or the benchmark table (caption,
    audio) plus, for cascade-<captioner>, that captioner's captions; and the prompt file."""
    from lalm_eval.prompts import prompt_set_path

    if mode == "text":
        return {"mcq": f"{OUT}/knowledge/mcq/{split}.csv",
                "prompts": str(prompt_set_path(KNOWLEDGE["mcq_prompts"]))}
    inputs = {"benchmark": f"{OUT}/knowledge/benchmarks/{split}.csv",
              "prompts": str(prompt_set_path(KNOWLEDGE["choice_prompts"]))}
    if mode.startswith("cascade-"):
        captioner = mode[len("cascade-"):]
        inputs["captions"] = f"{OUT}/knowledge/predictions/{captioner}/caption/{split}/run0.jsonl"
    return inputs


def knowledge_prediction_files():
    """Every predictions file of the knowledge suite, keyed by what it holds."""
    k, runs = KNOWLEDGE, range(KNOWLEDGE["runs"])
    path = f"{OUT}/knowledge/predictions/{{model}}/{{mode}}/{{split}}/run{{run}}.jsonl"
    files = {}
    if k["mcq_corpus"]:
        for model in k["text_llms"]:
            for run in runs:
                files[f"text|{model}|text|{k['mcq_corpus']}|{run}"] = path.format(
                    model=model, mode="text", split=k["mcq_corpus"], run=run)
    for bench in k["benchmarks"]:
        for captioner in k["captioners"]:
            files[f"caption|{captioner}|caption|{bench}|0"] = path.format(
                model=captioner, mode="caption", split=bench, run=0)
            for model in k["cascade_llms"]:
                for run in runs:
                    files[f"cascade|{model}|cascade-{captioner}|{bench}|{run}"] = path.format(
                        model=model, mode=f"cascade-{captioner}", split=bench, run=run)
        for model in k["audio_llms"]:
            for run in runs:
                files[f"audio|{model}|audio|{bench}|{run}"] = path.format(
                    model=model, mode="audio", split=bench, run=run)
    return files


def all_targets():
    targets = [f"{OUT}/report/run_info.html"]
    if KNOWLEDGE and KNOWLEDGE["systems"]:
        targets.append(f"{OUT}/knowledge/report/results.json")
        targets.append(f"{OUT}/knowledge/report/figures/correlation_heatmap.png")
        targets.append(f"{OUT}/knowledge/inference_summary.md")
    if "jasco" in SUITES and SUITES["jasco"]["systems"]:
        targets.append(f"{OUT}/jasco/report/results.json")
        targets.append(f"{OUT}/jasco/report/tables/table2_faithful.html")
        targets.append(f"{OUT}/jasco/inference_summary.md")
    for suite in SSEU_SUITES:
        targets += split_manifests(suite)
        targets.append(f"{OUT}/{suite}/corpus_summary.md")
        if SUITES[suite].get("systems"):
            targets.append(f"{OUT}/{suite}/inference_summary.md")
            targets.append(f"{OUT}/{suite}/report/results.json")
            targets.append(f"{OUT}/{suite}/report/tables/table1.html")
    return targets


# ---- jasco suite helpers
def jasco_corpus():
    return CORPORA[SUITES["jasco"]["corpus"]]


def jasco_release_root():
    """Folder holding README.md and dataset/v0/ (demo build or registry download)."""
    name = SUITES["jasco"]["corpus"]
    corpus = CORPORA[name]
    if corpus["kind"] == "jasco_demo":
        return f"{RES}/corpora/{name}"
    return f"{RES}/downloads/{corpus['registry_name']}/downloads"


def jasco_release_inputs(wildcards):
    name = SUITES["jasco"]["corpus"]
    corpus = CORPORA[name]
    if corpus["kind"] == "jasco_demo":
        root = f"{RES}/corpora/{name}"
        return {"v0": f"{root}/dataset/v0/v0.csv", "readme": f"{root}/README.md"}
    return {"stamp": f"{RES}/downloads/{corpus['registry_name']}/.complete.json"}



# ---- knowledge suite helpers
def benchmark_source(wildcards):
    corpus = CORPORA[wildcards.corpus]
    if corpus["kind"] == "mmau_demo":
        return {"json": f"{RES}/corpora/{wildcards.corpus}/mmau-demo.json"}
    default = "mmau_test_mini" if corpus["kind"] == "mmau" else "mmar"
    return {"stamp": f"{RES}/downloads/{corpus['registry_name'] or default}/.complete.json"}


def benchmark_paths(corpus_name):
    """(json file, audio root) of a benchmark corpus."""
    corpus = CORPORA[corpus_name]
    if corpus["kind"] == "mmau_demo":
        root = f"{RES}/corpora/{corpus_name}"
        return f"{root}/mmau-demo.json", root
    name = corpus["registry_name"] or ("mmau_test_mini" if corpus["kind"] == "mmau" else "mmar")
    root = f"{RES}/downloads/{name}"
    filename = "mmau-test-mini.json" if corpus["kind"] == "mmau" else "MMAR-meta.json"
    return f"{root}/downloads/{filename}", root
