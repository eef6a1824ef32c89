"""Action antonyms: phrasal verbs and particles, inflection, capitalisation, every verb of the first clause, Ego4D
narrations, nouns that are also verbs, and verbs with no sensible antonym (with the reason)."""

import pytest

from paxion.bench.antonyms import action_antonym
from paxion.synth.actions import ACTIONS, OBJECTS, fill_template, template_caption

CASES = [
    # SSv2-style templates and labels
    ("Pushing [something] from left to right", "Pushing [something] from right to left"),
    ("[something] falling", "[something] rising"),
    ("Picking [something] up", "Putting [something] down"),
    ("Putting [something] into [something]", "Taking [something] out of [something]"),
    ("Taking pen out of cup", "Putting pen into cup"),
    ("Plugging charger into phone", "Unplugging charger from phone"),
    ("Approaching bottle with your camera", "Moving away from bottle with your camera"),
    ("Turning the camera left while filming tree", "Turning the camera right while filming tree"),
    ("Stuffing [something] into [something]", "Pulling [something] out of [something]"),
    # capitalisation
    ("Opening the door", "Closing the door"),
    ("OPENING the door", "CLOSING the door"),
    ("Falling leaves", "Rising leaves"),
    # a directional phrase is the one change where there is one
    ("Pushing box from left to right", "Pushing box from right to left"),
    # words that merely contain a mapped verb stay; the real verb changes
    ("Opening box with an opener", "Closing box with an opener"),
    ("C walks past the waterfalls and opens the gate", "C walks past the waterfalls and closes the gate"),
    ("C opens the closet", "C closes the closet"),
    ("The uprising falls", "The uprising rises"),
    # answer phrases (NExT-QA answers carry the action; the question stays, see build.py)
    ("opens the door", "closes the door"),
    ("lifting the cup", "lowering the cup"),
    ("picked it up", "put it down"),
    ("put down the toy", "pick up the toy"),  # "put" reads as the base form first
]

# Ego4D narrations after `clean_narration` ("#C C ..." and "#O the man X ..."), and raw with tags.
EGO4D = [
    # particles and phrasal verbs
    ("C picks up the knife", "C puts down the knife"),
    ("C puts down the cup", "C picks up the cup"),
    ("C picks up the knife from the chopping board", "C puts down the knife on the chopping board"),
    ("C picks the knife up", "C puts the knife down"),
    ("C puts the card down", "C picks the card up"),
    ("C puts the kettle down on the counter", "C picks the kettle up from the counter"),
    ("C lifts up the bag", "C puts down the bag"),
    ("C lifts the bag up", "C puts the bag down"),
    ("The ball falls down", "The ball rises up"),
    ("C removes the lid from the pot", "C puts the lid on the pot"),
    ("C takes a paper from the table", "C puts a paper on the table"),
    ("C takes the spoon out of the drawer", "C puts the spoon into the drawer"),
    ("C puts the cucumber on the floor", "C takes the cucumber off the floor"),
    ("C puts the meat into the cabinet", "C takes the meat out of the cabinet"),
    ("C places the dough on the tray", "C removes the dough from the tray"),
    ("C places the cup in the sink", "C removes the cup from the sink"),
    ("C places the object down", "C picks the object up"),
    ("C turns on the tap", "C turns off the tap"),
    ("C switches off the light", "C switches on the light"),
    ("C switches the light on", "C switches the light off"),
    ("C inserts the key into the lock", "C removes the key from the lock"),
    ("C dips the brush into the paint", "C lifts the brush out of the paint"),
    ("C lifts the dripper off the mug", "C lowers the dripper onto the mug"),
    ("C pushes the drawer in", None),
    ("C pulls the chair out", None),
    ("C pushes the box onto the shelf", "C pulls the box off the shelf"),
    ("C walks towards the door", "C walks away from the door"),
    ("C walks into the room", "C walks out of the room"),
    ("C moves the box closer to the wall", "C moves the box further from the wall"),
    ("C carries the bucket down the ladder", "C carries the bucket up the ladder"),
    ("C stands up", "C sits down"),
    ("C bends down", "C stands up"),
    ("C plugs in the charger", "C unplugs the charger"),
    ("C zips up the bag", "C unzips the bag"),
    # no particle: Ego4D's "picks" is "picks up"
    ("C picks a bag", "C puts down a bag"),
    ("C picks a bottle of juice from the fridge", "C puts a bottle of juice on the fridge"),
    ("C drops the envelope", "C picks up the envelope"),
    ("C drops the paper bag on the table", "C picks the paper bag up from the table"),
    ("C drops the jar into the box", "C takes the jar out of the box"),
    # other subjects, tags, inflections
    ("#C C opens the fridge", "#C C closes the fridge"),
    ("#O The man X closes the fridge with his right hand", "#O The man X opens the fridge with his right hand"),
    ("The man A picks a phone from the table", "The man A puts a phone on the table"),
    ("the lady opens the door", "the lady closes the door"),
    ("someone closes the window", "someone opens the window"),
    ("C picked up the knife", "C put down the knife"),
    ("C opened the fridge", "C closed the fridge"),
    ("C is picking up the knife", "C is putting down the knife"),
    ("C is opening the box", "C is closing the box"),
    ("C emptied the bucket", "C filled the bucket"),
    ("The leaf fell", "The leaf rose"),
    ("The leaf has fallen", "The leaf has risen"),
    ("The balloon is falling slowly", "The balloon is rising slowly"),
    ("C unzipping the bag", "C zipping the bag"),
    ("C ties the shoe lace", "C unties the shoe lace"),
    ("C slowly opens the door", "C slowly closes the door"),
    ("C inflates the balloon", "C deflates the balloon"),
    ("C hides the key", "C shows the key"),
    ("C releases the object", "C grabs the object"),
    # letting something fall / roll, tearing, covering with, holes: the opposite action, the rest kept
    ("C lets the cup fall into the sink", "C stops the cup from falling into the sink"),
    ("C lets the ball roll down the slope", "C stops the ball from rolling down the slope"),
    ("C tears the paper into pieces", "C puts the paper together from pieces"),
    ("C tears the paper apart", "C puts the paper together"),
    ("C tears the cloth", "C mends the cloth"),
    ("C covers the pot with the lid", "C uncovers the pot by removing the lid"),
    ("C digs a hole in the ground", "C fills a hole in the ground"),
    # a negated restatement of the action ("without actually V-ing") names the same action; others stay
    (
        "C pretends to close the door without actually closing it",
        "C pretends to open the door without actually opening it",
    ),
    ("C opens the door without looking at it", "C closes the door without looking at it"),
    # a parenthesised verb glossing the action goes with it; other asides stay
    ("C twists (wrings) the towel", "C untwists the towel"),
    ("C opens (slowly) the box", "C closes (slowly) the box"),
    # two verbs: every action verb of the first clause changes, the sentence stays grammatical
    ("C picks up the knife and opens the door", "C puts down the knife and closes the door"),
    ("Opening and closing the box", "Closing and opening the box"),
    ("C opens the lid and puts the spoon into the jar", "C closes the lid and takes the spoon out of the jar"),
    ("C holds the bag and opens it", "C holds the bag and closes it"),
    ("C opens the drawer to look at the spoons", "C closes the drawer to look at the spoons"),
    ("C opens the box to take the pen", "C closes the box to take the pen"),
    ("C takes the knife", "C puts down the knife"),
    # Ego4D's hand phrases stay inside the object
    ("C places the can in her right hand into the fridge", "C removes the can in her right hand from the fridge"),
    ("C puts the pack in her left hand into the fridge", "C takes the pack in her left hand out of the fridge"),
    ("C puts a package back inside a kitchen cupboard", "C takes a package out of a kitchen cupboard"),
    ("C closes the door while the man X opens the window", "C opens the door while the man X opens the window"),
    # nouns that are also verbs stay nouns
    ("C washes a dish in the kitchen sink and opens the tap", "C washes a dish in the kitchen sink and closes the tap"),
    ("C opens the drop box", "C closes the drop box"),
    ("C drops a drop of water", "C picks up a drop of water"),
    ("The boat sinks", "The boat floats"),
]

# Captions that must get no antonym, with the verb blamed.
NO_ANTONYM = [
    ("Holding [something]", "hold"),
    ("Shaking [something]", "shake"),
    ("C uses the phone", "use"),
    ("C looks at the table", "look"),
    ("C talks to the man X", "talk"),
    ("C walks around", "walk"),
    ("C holds the bag of grapes in both hands", "hold"),
    ("C moves the dog leash", "move"),
    ("C washes a dish in the kitchen sink", "wash"),
    ("C cuts the onion with a knife", "cut"),
    ("C stirs the soup", "stir"),
    ("C passes the rope", "pass"),
    ("C passes the rope from her left hand to her right hand", "pass"),
    ("C adjusts the screw", "adjust"),
    ("Touching the uprising", "touch"),
    ("C looks at the empty cup", "look"),
    ("the open box", None),
    ("a mountain pass", None),
    ("a drop of water", None),
    ("the kitchen sink", None),
    ("C touches the opener", "touch"),
    ("waterfalls", None),
    ("C looks around the closet", "look"),
    ("C throws the ball against the wall", "throw"),
    ("C shows that the cup is empty", "show"),
    ("C tears off a paper towel", "tear"),
]


@pytest.mark.parametrize(("caption", "expected"), CASES)
def test_antonym_cases(caption, expected):
    result = action_antonym(caption)
    assert (result.text, result.reason) == (expected, None)


@pytest.mark.parametrize(("caption", "expected"), EGO4D)
def test_ego4d_narrations(caption, expected):
    result = action_antonym(caption)
    assert result.text == expected
    assert (result.reason is None) == (expected is not None)


def test_contradicting_particle_is_the_reason():
    result = action_antonym("C pushes the drawer in")
    assert (result.text, result.word) == (None, "push")
    assert "push in" in result.reason


@pytest.mark.parametrize(("caption", "verb"), NO_ANTONYM)
def test_no_antonym_has_reason(caption, verb):
    result = action_antonym(caption)
    assert result.text is None
    assert result.reason
    if verb is not None:
        assert result.word == verb
        assert verb in result.reason


def test_pass_gives_the_sense_reason():
    assert "handing over" in action_antonym("C passes the rope to the man").reason


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


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.template)
def test_world_object_hidden_captions_map_to_the_partner(action):
    """The class captions of the built-in world (what `bench_meta` lists) keep their antonyms."""
    expected = None if action.partner is None else template_caption(action.partner)
    assert action_antonym(template_caption(action.template)).text == expected
