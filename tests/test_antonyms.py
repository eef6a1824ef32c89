"""Action antonyms: whole words and phrases, inflection, capitalisation, one replacement, no wrong antonym."""

import pytest

from paxion.bench.antonyms import action_antonym
from paxion.synth.actions import ACTIONS, OBJECTS, fill_template

CASES = [
    # SSv2-style templates and labels
    ("Pushing [something] from left to right", "Pushing [something] from right to left"),
    ("Pushing [something] from right to left", "Pushing [something] from left to right"),
    ("[something] falling", "[something] rising"),
    ("Opening [something]", "Closing [something]"),
    ("Closing [something]", "Opening [something]"),
    ("Picking [something] up", "Putting [something] down"),
    ("Putting [something] into [something]", "Taking [something] out of [something]"),
    ("Taking pen out of cup", "Putting pen into cup"),
    ("Moving [something] towards the camera", "Moving [something] away from the camera"),
    ("Moving [something] away from the camera", "Moving [something] towards the camera"),
    ("Folding paper", "Unfolding paper"),
    ("Unfolding paper", "Folding paper"),
    ("Plugging charger into phone", "Unplugging charger from phone"),
    ("Approaching bottle with your camera", "Moving away from bottle with your camera"),
    ("Turning the camera left while filming tree", "Turning the camera right while filming tree"),
    # Ego4D-style narrations, inflections
    ("C picks up the knife", "C puts down the knife"),
    ("C picked up the knife", "C put down the knife"),
    ("C is picking up the knife", "C is putting down the knife"),
    ("C puts down the cup", "C picks up the cup"),
    ("C opens the fridge", "C closes the fridge"),
    ("C opened the fridge", "C closed the fridge"),
    ("C closes the drawer", "C opens the drawer"),
    ("The leaf falls", "The leaf rises"),
    ("The leaf fell", "The leaf rose"),
    ("The leaf has fallen", "The leaf has risen"),
    ("The balloon is falling slowly", "The balloon is rising slowly"),
    ("C empties the bucket", "C fills the bucket"),
    ("C emptied the bucket", "C filled the bucket"),
    ("C ties the shoe lace", "C unties the shoe lace"),
    ("C unzips the bag", "C zips the bag"),
    ("C unzipping the bag", "C zipping the bag"),
    ("C starts the engine", "C stops the engine"),
    ("C turns on the tap", "C turns off the tap"),
    # capitalisation
    ("Opening the door", "Closing the door"),
    ("OPENING the door", "CLOSING the door"),
    ("Falling leaves", "Rising leaves"),
    # only one action expression replaced: directional phrase first
    ("Pushing box from left to right", "Pushing box from right to left"),
    ("Opening and closing the box", "Closing and closing the box"),
    # words that merely contain a mapped verb stay; the real verb changes
    ("Opening box with an opener", "Closing box with an opener"),
    ("C walks past the waterfalls and opens the gate", "C walks past the waterfalls and closes the gate"),
    ("The uprising falls apart", "The uprising rises apart"),
    # WordNet fallback
    ("C inflates the balloon", "C deflates the balloon"),
    ("C hides the key", "C shows the key"),
]

NO_ANTONYM = [
    "Holding [something]",
    "Shaking [something]",
    "C uses the phone",
    "C looks at the table",
    "Touching the uprising",
    "waterfalls",
    "Showing that cup is empty",
    "the open box",
    "C touches the opener",
]


@pytest.mark.parametrize(("caption", "expected"), CASES)
def test_antonym_cases(caption, expected):
    result = action_antonym(caption)
    assert (result.text, result.reason) == (expected, None)


@pytest.mark.parametrize("caption", NO_ANTONYM)
def test_no_antonym_has_reason(caption):
    result = action_antonym(caption)
    assert result.text is None
    assert result.reason


def test_blamed_verb_of_unlisted_action():
    assert action_antonym("Holding red ball").word == "hold"
    assert "hold" in action_antonym("Holding red ball").reason


def test_object_words_never_touched():
    assert action_antonym("Opening the fall box", objects=["fall box"]).text == "Closing the fall box"
    assert action_antonym("Pushing open sign", objects=["open sign"]).text == "Pulling open sign"
    assert action_antonym("Closing open sign", objects=["open sign"]).text == "Opening open sign"


WORLD_PAIRS = [(a, a.partner) for a in ACTIONS if a.partner is not None]


@pytest.mark.parametrize(("action", "partner"), WORLD_PAIRS, ids=[a.template for a, _ in WORLD_PAIRS])
def test_world_pairs_map_exactly(action, partner):
    for k in range(0, len(OBJECTS), 3):
        objects = [OBJECTS[(k + j * 7) % len(OBJECTS)] for j in range(action.n_objects)]
        caption = fill_template(action.template, objects)
        assert action_antonym(caption, objects=objects).text == fill_template(partner, objects)
    assert action_antonym(action.template).text == partner


@pytest.mark.parametrize("action", [a for a in ACTIONS if a.partner is None], ids=lambda a: a.template)
def test_world_actions_without_partner_get_none(action):
    objects = OBJECTS[: action.n_objects]
    assert action_antonym(fill_template(action.template, objects), objects=objects).text is None
