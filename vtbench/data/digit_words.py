"""The words of the narrated-digits benchmark: step texts, narration phrasings, fillers, prompts.

No filler and no phrasing uses a digit word other than the step's own, so a sentence names at most
one digit (a filler never hints at any).
"""
from __future__ import annotations

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Ways a narrator announces a step; "{a}" is the article ("a"/"an"), "{w}" the digit word.
PHRASINGS = (
    "now we write {a} {w}",
    "next comes {a} {w}",
    "let's draw {a} {w}",
    "here i make {a} {w}",
    "time for the {w}",
    "and now the number {w}",
    "this is {a} {w}",
    "write {a} {w} like this",
)

# Sentences with no visual counterpart, as in HowTo100M narration.
FILLERS = (
    "okay so let's get started",
    "don't forget to subscribe",
    "thanks for watching",
    "grab a pen and some paper",
    "this part is really easy",
    "as you can see here",
    "let me move the camera a bit",
    "hi everyone and welcome back",
    "take your time with it",
    "i usually do this every morning",
    "my kids love this",
    "that is pretty much it",
)

STEP_TEMPLATE = "write {a} {w}"


def article(word: str) -> str:
    """By sound: "an eight", but "a one"."""
    return "an" if word[0] in "aeiou" and word != "one" else "a"


def phrase(digit: int, template: str = STEP_TEMPLATE) -> str:
    """``template`` filled with the digit's word: ``phrase(8) == "write an eight"``."""
    word = DIGIT_WORDS[digit]
    return template.format(a=article(word), w=word)


def step_text(digit: int) -> str:
    """The canonical text of a step (also the clean caption of its segments)."""
    return phrase(digit, STEP_TEMPLATE)


def digit_prompts(template: str = STEP_TEMPLATE) -> list[str]:
    """One zero-shot class prompt per digit 0..9, e.g. ``["write a zero", ..., "write a nine"]``.

    ``template`` may use ``{w}`` (the word) and ``{a}`` (its article): ``"a photo of {a} {w}"``.
    """
    return [phrase(d, template) for d in range(len(DIGIT_WORDS))]
