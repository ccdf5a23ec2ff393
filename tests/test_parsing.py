"""Answer parser: hand-written, realistic model outputs with exact expected fields."""

from __future__ import annotations

import math

import pytest

from lalm_eval.answers.families import FamilyRules, family_rules, register_family
from lalm_eval.answers.fields import ParsedAnswer, clean_label, format_compliance, parse_answer
from lalm_eval.answers.json_like import find_json_object

STELLA = "Please call Stella."


def ok(transcript=None, scene=None, events=None) -> ParsedAnswer:
    """A well-formed expectation."""
    return ParsedAnswer(transcript, scene, events, True, None)


def bad(problem: str, transcript=None, scene=None, events=None) -> ParsedAnswer:
    """A not-well-formed expectation (lenient fields may still be filled)."""
    return ParsedAnswer(transcript, scene, events, False, problem)


# --- independent: ASR --------------------------------------------------------------------------

ASR_CASES = [
    ("plain", STELLA, "generic", ok(STELLA)),
    ("quoted", '"Please call Stella."', "generic", ok(STELLA)),
    ("unicode quotes", "“Please call Stella.”", "generic", ok(STELLA)),
    ("label line", "Transcription: Please call Stella.", "generic", ok(STELLA)),
    ("markdown label", '**Transcript:** "Please call Stella."', "generic", ok(STELLA)),
    ("qwen prefix, qwen family",
     'The original content of this audio is: "Please call Stella."', "qwen2_audio", ok(STELLA)),
    ("speech says, qwen family", "The speech says: please call stella", "qwen2_audio",
     ok("please call stella")),
    ("speech says, generic family", "The speech says: please call stella", "generic",
     bad("unexpected prefix", "please call stella")),
    ("cascade prefix", 'The audio clip is: "Please call Stella."', "cascade", ok(STELLA)),
    ("lead-in chatter", 'Sure, here is the transcription:\n\n"Please call Stella."', "generic",
     bad("extra text", STELLA)),
    ("json envelope", '{"transcript": "Please call Stella."}', "generic", ok(STELLA)),
    ("fenced text", "```\nPlease call Stella.\n```", "generic", ok(STELLA)),
    ("special tokens", "Please call Stella.<|im_end|>", "generic", ok(STELLA)),
    ("no speech statement", "There is no speech in this audio.", "generic", ok("")),
    ("i don't know", "I don't know.", "generic", bad("refusal")),
    ("cannot transcribe", "I'm sorry, but I cannot transcribe this audio.", "generic",
     bad("refusal")),
    ("speech starting with sorry is speech", "Sorry, I am late for the meeting.", "generic",
     ok("Sorry, I am late for the meeting.")),
    ("trailing note", "Please call Stella.\n\nNote: the audio is noisy.", "generic",
     ok(STELLA)),
    ("empty", "", "generic", bad("empty")),
    ("whitespace", "  \n ", "generic", bad("empty")),
    ("none", None, "generic", bad("empty")),
    ("json without the key", '{"language": "en"}', "generic", bad("missing key transcript")),
]


@pytest.mark.parametrize(("text", "family", "expected"), [c[1:] for c in ASR_CASES],
                         ids=[c[0] for c in ASR_CASES])
def test_independent_asr(text: str | None, family: str, expected: ParsedAnswer) -> None:
    assert parse_answer(text, "asr", "independent", family) == expected


# --- independent: acoustic scene classification ------------------------------------------------

ASC_CASES = [
    ("bare label", "metro station", "generic", ok(scene="metro station")),
    ("capitalised with period", "Metro station.", "generic", ok(scene="metro station")),
    ("quoted with article", "'A park'", "generic", ok(scene="park")),
    ("label line", "Scene: Grocery store", "generic", ok(scene="grocery store")),
    ("markdown bold", "**Acoustic scene:** Home.", "generic", ok(scene="home")),
    ("underscore id", "metro_station", "generic", ok(scene="metro station")),
    ("label with 'or' kept whole", "Cafe or restaurant", "generic",
     ok(scene="cafe or restaurant")),
    ("desta prefix, desta family", "The correct answer is: city center", "desta25",
     ok(scene="city center")),
    ("desta prefix, generic family", "The correct answer is: city center", "generic",
     bad("unexpected prefix", scene="city center")),
    ("cascade prefix", 'The audio clip is: "residential area".', "cascade",
     ok(scene="residential area")),
    ("echoed candidate list",
     "home, cafe or restaurant, city center, grocery store, metro station, residential area",
     "generic", bad("more than one scene", scene="home")),
    ("two scenes with or", "park or street", "generic",
     bad("more than one scene", scene="park")),
    ("ranked numbered list", "1. metro station (0.7)\n2. city center (0.2)", "generic",
     bad("more than one scene", scene="metro station")),
    ("sentence", "It sounds like a busy street with cars passing.", "generic",
     bad("scene is not a label", scene="busy street")),
    ("recorded in", "This recording was made in a grocery store.", "generic",
     bad("scene is not a label", scene="grocery store")),
    ("json envelope", '```json\n{"scene": "home"}\n```', "generic", ok(scene="home")),
    ("json scene as list", '{"scene": ["home", "cafe or restaurant"]}', "generic",
     bad("scene is a list", scene="home")),
    ("bare json list", '["metro station"]', "generic",
     bad("scene is a list", scene="metro station")),
    ("prose then label line", "Let me listen carefully.\nScene: park", "generic",
     bad("extra text", scene="park")),
    ("think block removed", "<think>birds, maybe a park</think>Residential area", "generic",
     ok(scene="residential area")),
    ("i don't know", "I don't know.", "generic", bad("refusal")),
    ("none", "None", "generic", bad("no scene")),
    ("long prose without a scene", "The recording contains a lot of noise and someone talking "
     "over it, making it hard to say much more about it.", "generic", bad("no scene label")),
    ("unknown family falls back", "Metro station", "no_such_family",
     ok(scene="metro station")),
]


@pytest.mark.parametrize(("text", "family", "expected"), [c[1:] for c in ASC_CASES],
                         ids=[c[0] for c in ASC_CASES])
def test_independent_asc(text: str, family: str, expected: ParsedAnswer) -> None:
    assert parse_answer(text, "asc", "independent", family) == expected


# --- independent: audio tagging ------------------------------------------------------------------

AT_CASES = [
    ("comma list", "dog, car horn, footsteps", ok(events=("dog", "car horn", "footsteps"))),
    ("duplicates and 'and'", "Dog barking, car horn and dog barking.",
     ok(events=("dog barking", "car horn"))),
    ("oxford comma and semicolons", "birds singing; wind blowing, and car",
     ok(events=("birds singing", "wind blowing", "car"))),
    ("bullets", "- Dog\n- Car horn\n* footsteps", ok(events=("dog", "car horn", "footsteps"))),
    ("numbered", "1. dishes\n2. running water\n3. Dishes", ok(events=("dishes", "running water"))),
    ("label containing 'and' kept", "cutlery and dishes, footsteps and car",
     ok(events=("cutlery and dishes", "footsteps", "car"))),
    ("label line", "Sound events: alarm bell ringing, vacuum cleaner",
     ok(events=("alarm bell ringing", "vacuum cleaner"))),
    ("json list", '["dog", "Cat", "dog"]', ok(events=("dog", "cat"))),
    ("python list", "['frying', 'blender']", ok(events=("frying", "blender"))),
    ("json object", '{"events": ["metro approaching", "brakes squeaking"]}',
     ok(events=("metro approaching", "brakes squeaking"))),
    ("json events as string", '{"events": "dog, cat"}',
     bad("events is a string", events=("dog", "cat"))),
    ("json items with scores", '{"events": [{"label": "dog", "score": 0.9}, {"label": "car"}]}',
     bad("events items are not strings", events=("dog", "car"))),
    ("scores in text", "dog (0.91), car horn: 0.40", ok(events=("dog", "car horn"))),
    ("none inside list", "dog; n/a; none", ok(events=("dog",))),
    ("no events", "No other sound events besides speech.", ok(events=())),
    ("sentence", "I can hear a dog barking and a car horn in the background.",
     bad("events are not a list", events=("dog barking", "car horn"))),
    ("can be heard", "A blender and running water can be heard.",
     bad("events are not a list", events=("blender", "running water"))),
    ("unsure", "I'm not sure.", bad("refusal")),
    ("empty", "", bad("empty")),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in AT_CASES],
                         ids=[c[0] for c in AT_CASES])
def test_independent_at(text: str, expected: ParsedAnswer) -> None:
    assert parse_answer(text, "at", "independent") == expected


def test_independent_fills_only_the_asked_field() -> None:
    text = '{"transcript": "hi", "scene": "home", "events": ["cat"]}'
    assert parse_answer(text, "asc", "independent") == ok(scene="home")
    assert parse_answer(text, "at", "independent") == ok(events=("cat",))
    assert parse_answer(text, "asr", "independent") == ok("hi")


# --- joint -------------------------------------------------------------------------------------

FULL = ok(STELLA, "metro station", ("brakes squeaking", "footsteps"))

JOINT_CASES = [
    ("clean json",
     '{"transcript": "Please call Stella.", "scene": "metro station", '
     '"events": ["brakes squeaking", "footsteps"]}', FULL),
    ("fenced json with prose",
     'Here is my answer:\n```json\n{\n  "transcript": "Please call Stella.",\n'
     '  "scene": "Metro station",\n  "events": ["Brakes squeaking", "footsteps"]\n}\n```\n'
     "Let me know if you need anything else!", FULL),
    ("single quotes, trailing commas, apostrophe",
     "{'transcript': 'Don't call Stella.', 'scene': 'home', 'events': ['cat', 'dog',],}",
     ok("Don't call Stella.", "home", ("cat", "dog"))),
    ("python literal with tuple and True",
     "{'Transcription': 'hi', 'Acoustic_Scene': 'home', 'sound_events': ('cat',), 'sure': True}",
     ok("hi", "home", ("cat",))),
    ("unicode quotes",
     "{“transcript”: “Please call Stella.”, “scene”: “metro station”, "
     "“events”: [“brakes squeaking”, “footsteps”]}", FULL),
    ("synonym keys, any case",
     '{"Speech": "hi", "Environment": "grocery store", "Tags": ["shopping cart"]}',
     ok("hi", "grocery store", ("shopping cart",))),
    ("bare keys", '{transcript: "hi", scene: "home", events: []}', ok("hi", "home", ())),
    ("nested under answer", '{"answer": {"transcript": "hi", "scene": "home", "events": []}}',
     ok("hi", "home", ())),
    ("last object wins",
     'Format: {"transcript": "...", "scene": "...", "events": []}\n'
     'Answer: {"transcript": "hi", "scene": "home", "events": ["cat"]}',
     ok("hi", "home", ("cat",))),
    ("brace inside a string", '{"transcript": "a { b", "scene": "home", "events": []}',
     ok("a { b", "home", ())),
    ("missing key", '{"transcript": "hi", "scene": "home"}',
     bad("missing key events", "hi", "home")),
    ("scene as list, events as string",
     '{"transcript": "hi", "scene": ["home", "city center"], "events": "cat, dog"}',
     bad("scene is a list; events is a string", "hi", "home", ("cat", "dog"))),
    ("null scene", '{"transcript": "hi", "scene": null, "events": ["cat"]}',
     bad("null scene", "hi", None, ("cat",))),
    ("empty transcript means no speech", '{"transcript": "", "scene": "home", "events": []}',
     ok("", "home", ())),
    ("json without any answer key", '{"reasoning": "noisy"}',
     bad("missing key transcript; missing key scene; missing key events")),
    ("free-text lines",
     "Transcript: \"Please call Stella.\"\nScene: metro station\n"
     "Events: brakes squeaking and footsteps",
     bad("no json", STELLA, "metro station", ("brakes squeaking", "footsteps"))),
    ("markdown bullets",
     "- **Transcript**: Please call Stella.\n- **Scene**: Metro station\n- **Events**: none",
     bad("no json", STELLA, "metro station", ())),
    ("prose only", "The scene is a park and I hear dogs.", bad("no json")),
    ("refusal", "I'm sorry, I can't help with that.", bad("refusal")),
    ("empty", "   ", bad("empty")),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in JOINT_CASES],
                         ids=[c[0] for c in JOINT_CASES])
def test_joint(text: str, expected: ParsedAnswer) -> None:
    assert parse_answer(text, "joint", "joint") == expected


# --- chain of thought --------------------------------------------------------------------------

COT_STEPS = (
    "Step 1: Energy and onset analysis: speech from 0.4 s to 2.1 s; a broadband transient "
    "at 1.5 s.\n"
    'Step 2: Transcription: "Please call Stella."\n'
    "Step 3: Scene candidates (ranked): 1. metro station (0.6) 2. city center (0.3)\n"
    "Step 4: Event candidates: brakes squeaking (0.8), footsteps (0.5), car (0.2)\n"
)

COT_CASES = [
    ("final answer lines",
     COT_STEPS + "Step 5: Cross-check and final answer: the brakes fit a metro station.\n"
     "Final answer:\nTranscript: Please call Stella.\nScene: metro station\n"
     "Events: brakes squeaking; footsteps", FULL),
    ("final json block",
     COT_STEPS + "Step 5: Cross-check: consistent.\n```json\n"
     '{"transcript": "Please call Stella.", "scene": "metro station", '
     '"events": ["brakes squeaking", "footsteps"]}\n```', FULL),
    ("final answer inline",
     COT_STEPS + "Final answer: Transcript: Please call Stella.; Scene: metro station; "
     "Events: brakes squeaking, footsteps", FULL),
    ("markdown final answer heading",
     COT_STEPS + "\n### **Final Answer**\n- **Transcript:** \"Please call Stella.\"\n"
     "- **Scene:** Metro station\n- **Events:** brakes squeaking, footsteps", FULL),
    ("last final answer wins",
     "Final answer:\nTranscript: draft\nScene: home\nEvents: cat\n"
     "Wait, let me re-check.\nFinal answer:\nTranscript: Please call Stella.\n"
     "Scene: metro station\nEvents: brakes squeaking, footsteps", FULL),
    ("final answer with notes in parentheses",
     COT_STEPS + "Final answer:\nTranscript: Please call Stella.\n"
     "Scene: Metro station (confidence: high)\nEvents detected: brakes squeaking, footsteps",
     FULL),
    ("final answer missing events",
     COT_STEPS + "Final answer:\nTranscript: Please call Stella.\nScene: metro station",
     bad("missing events", STELLA, "metro station")),
    ("final json missing key",
     COT_STEPS + 'Final answer: {"transcript": "Please call Stella.", "scene": "metro station"}',
     bad("missing key events", STELLA, "metro station")),
    ("final scene lists two",
     COT_STEPS + "Final answer:\nTranscript: Please call Stella.\n"
     "Scene: metro station or city center\nEvents: footsteps",
     bad("more than one scene", STELLA, "metro station", ("footsteps",))),
    ("truncated before final answer: labelled steps only",
     COT_STEPS + "Step 5: Cross-check",
     bad("no final answer", STELLA, "metro station",
         ("brakes squeaking", "footsteps", "car"))),
    ("truncated after transcription, headings on their own line",
     "Step 1: Energy and onset analysis\nSpeech starts at 0.4 s.\n\n"
     "Step 2: Transcription\n\"Please call Stella.\"\n\nStep 3: Scene candid",
     bad("no final answer", STELLA)),
    ("reasoning without any labelled field",
     "The clip is noisy; there is speech and some clatter, which suggests a kitchen.",
     bad("no final answer")),
    ("final answer without fields falls back to labelled steps",
     COT_STEPS + "Final answer: see above.",
     bad("final answer has no fields", STELLA, "metro station",
         ("brakes squeaking", "footsteps", "car"))),
    ("answer tags",
     "Step 1: ...\n<answer>\nTranscript: Please call Stella.\nScene: metro station\n"
     "Events: brakes squeaking, footsteps\n</answer>", FULL),
    ("empty", None, bad("empty")),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in COT_CASES],
                         ids=[c[0] for c in COT_CASES])
def test_cot(text: str | None, expected: ParsedAnswer) -> None:
    assert parse_answer(text, "cot", "cot") == expected


# --- helpers, families, compliance ---------------------------------------------------------------


def test_as_dict_matches_the_record_contract() -> None:
    parsed = parse_answer('{"transcript": "hi", "scene": "home", "events": ["cat"]}',
                          "joint", "joint")
    assert parsed.as_dict() == {"transcript": "hi", "scene": "home", "events": ["cat"]}
    assert ParsedAnswer().as_dict() == {"transcript": None, "scene": None, "events": None}


def test_find_json_object_and_clean_label() -> None:
    assert find_json_object("a {'x': 1,} b {\"y\": [1, 2,]} c") == {"y": [1, 2]}
    assert find_json_object("no object here {") is None
    assert clean_label('  "**The Metro_Station**" (0.8). ') == "metro station"
    assert clean_label("2. probably a Busy Street!") == "busy street"


def test_suite_labels_protect_separators() -> None:
    text = "salt and pepper grinder, dog"
    assert parse_answer(text, "at", "independent") == ok(
        events=("salt", "pepper grinder", "dog"))
    assert parse_answer(text, "at", "independent", labels=["salt and pepper grinder"]) == ok(
        events=("salt and pepper grinder", "dog"))


def test_family_registry() -> None:
    assert family_rules("nope") is family_rules("generic")
    assert family_rules("Qwen2_Audio") is family_rules("qwen2_audio")
    register_family("test_echo", FamilyRules(prefixes=(r"my\s+guess\s*:",)))
    assert parse_answer("My guess: home", "asc", "independent", "test_echo") == ok(scene="home")
    assert parse_answer("My guess: home", "asc", "independent") == bad(
        "unexpected prefix", scene="home")


def test_format_compliance() -> None:
    answers = [parse_answer("home", "asc", "independent"),
               parse_answer("home, park", "asc", "independent"),
               parse_answer("", "asc", "independent"),
               parse_answer("dog", "at", "independent")]
    assert format_compliance(answers) == 50.0
    assert format_compliance(iter(answers[:1])) == 100.0
    assert math.isnan(format_compliance([]))


def test_bad_mode_or_task() -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        parse_answer("x", "asr", "zero_shot")
    with pytest.raises(ValueError, match="unknown task"):
        parse_answer("x", "joint", "independent")


@pytest.mark.parametrize("text", ["{" * 5000, "{'a': " * 3000, "[" * 4000 + "]" * 4000,
                                  "{}" * 4000, "'" * 5000, "Scene: " * 3000])
def test_pathological_text_is_handled(text: str) -> None:
    for task, mode in (("asr", "independent"), ("asc", "independent"), ("at", "independent"),
                       ("joint", "joint"), ("cot", "cot")):
        assert isinstance(parse_answer(text, task, mode), ParsedAnswer)
