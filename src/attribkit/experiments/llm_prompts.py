"""The prompts of the token-faithfulness experiment on SmolLM2 (:mod:`.llm_faithfulness`).

Written for the experiment: short factual completions, small arithmetic and counting
continuations, and a needle in a haystack (about 170 tokens of unrelated sentences about a town,
with one sentence that answers the question at the end, at three positions). Each prompt comes
with the answer SmolLM2-135M-Instruct gives greedily (checked when the experiment runs: the
table says how many it still answers that way). Answers are scored as the sum of their tokens'
log-probabilities; SmolLM2 writes a number as a space token and one token per digit.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ARITHMETIC", "FACTS", "PROMPTS", "FaithPrompt", "needle_prompts"]


@dataclass(frozen=True)
class FaithPrompt:
    """One prompt and its expected answer.

    Attributes
    ----------
    name
        Short unique identifier (cache file names).
    kind
        ``"fact"``, ``"arithmetic"`` or ``"needle"``.
    text
        The prompt, without the attention-sink token the experiment puts before it.
    answer
        The expected continuation, with its leading space.
    """

    name: str
    kind: str
    text: str
    answer: str


def _facts(kind: str, rows: tuple[tuple[str, str, str], ...]) -> tuple[FaithPrompt, ...]:
    return tuple(FaithPrompt(name, kind, text, answer) for name, text, answer in rows)


FACTS = _facts("fact", (
    ("capital-france", "The capital of France is", " Paris"),
    ("capital-italy", "The capital of Italy is", " Rome"),
    ("capital-japan", "The capital of Japan is", " Tokyo"),
    ("capital-germany", "The capital of Germany is", " Berlin"),
    ("capital-spain", "The capital of Spain is", " Madrid"),
    ("eiffel", "The Eiffel Tower is located in the city of", " Paris"),
    ("jupiter", "The largest planet in our solar system is", " Jupiter"),
    ("gold", "The chemical symbol for gold is", " Au"),
    ("shakespeare", "Romeo and Juliet was written by William", " Shakespeare"),
    ("washington", "The first president of the United States was George", " Washington"),
    ("opposite-hot", "The opposite of hot is", " cold"),
    ("weekdays", "Monday, Tuesday, Wednesday,", " Thursday"),
    ("months", "January, February, March, April,", " May"),
    ("sunrise", "The sun rises in the", " east"),
    ("liberty", "The Statue of Liberty is in New", " York"),
    ("einstein", "Albert Einstein developed the theory of", " relativity"),
    ("great-wall", "The Great Wall is in", " China"),
    ("paris-capital", "Paris is the capital of", " France"),
    ("everest", "The tallest mountain in the world is Mount", " Everest"),
    ("amazon", "The Amazon rainforest is in South", " America"),
    ("mice", "The plural of mouse is", " mice"),
    ("mona-lisa", "The Mona Lisa was painted by Leonardo da", " Vinci"),
    ("spiders", "Spiders have eight", " legs"),
    ("celsius", "The freezing point of water is zero degrees", " Celsius"),
))

ARITHMETIC = _facts("arithmetic", (
    ("add-2-2", "2 + 2 =", " 4"),
    ("add-1-1", "1 + 1 =", " 2"),
    ("add-3-5", "3 + 5 =", " 8"),
    ("add-7-1", "7 + 1 =", " 8"),
    ("sub-10-3", "10 - 3 =", " 7"),
    ("add-100-200", "100 + 200 =", " 300"),
    ("times-5-2", "5 times 2 equals", " 10"),
    ("square-3", "The square of 3 is", " 9"),
    ("count-words", "One, two, three, four,", " five"),
    ("count-digits", "1, 2, 3, 4, 5,", " 6"),
    ("count-even", "2, 4, 6, 8,", " 10"),
))


def needle_prompts(positions: tuple[int, ...] = (1, 5, 9), n_filler: int = 10
                   ) -> tuple[FaithPrompt, ...]:
    """The needle-in-a-haystack prompt of :func:`attribkit.zoo.llm.haystack`, shortened.

    Parameters
    ----------
    positions
        Where the needle sentence goes among the filler sentences (0 = first).
    n_filler
        Unrelated sentences around it (10: about 170 tokens).

    Returns
    -------
    tuple of FaithPrompt
        One prompt per position (answer ``" pineapple"``).
    """
    from attribkit.zoo import llm

    out = []
    for k in positions:
        hay = llm.haystack(n_filler=n_filler, needle_at=k)
        out.append(FaithPrompt(f"needle-{k}", "needle", hay.prompt, hay.answer))
    return tuple(out)


#: Every prompt of the experiment, facts first.
PROMPTS: tuple[FaithPrompt, ...] = FACTS + ARITHMETIC + needle_prompts()
