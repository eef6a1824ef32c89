"""Action antonyms of all 174 Something-Something v2 templates (the public labels.json, in label order).

Each template is listed with the antonym caption it must get, or None where it has no sensible one
(the comment names the verb blamed). At least 90% of the templates must get one (issue #15).
"""

import re

import pytest

from paxion.bench.antonyms import action_antonym

TEMPLATES = [
    ("Approaching [something] with your camera", "Moving away from [something] with your camera"),
    ("Attaching [something] to [something]", "Detaching [something] from [something]"),
    ("Bending [something] so that it deforms", "Straightening [something] so that it deforms"),
    ("Bending [something] until it breaks", "Straightening [something] until it breaks"),
    ("Burying [something] in [something]", "Digging [something] out of [something]"),
    ("Closing [something]", "Opening [something]"),
    ("Covering [something] with [something]", "Uncovering [something] by removing [something]"),
    ("Digging [something] out of [something]", "Burying [something] in [something]"),
    ("Dropping [something] behind [something]", "Picking up [something] behind [something]"),
    ("Dropping [something] in front of [something]", "Picking [something] up in front of [something]"),
    ("Dropping [something] into [something]", "Taking [something] out of [something]"),
    ("Dropping [something] next to [something]", "Picking up [something] next to [something]"),
    ("Dropping [something] onto [something]", "Lifting [something] off [something]"),
    (
        "Failing to put [something] into [something] because [something] does not fit",
        "Failing to take [something] out of [something] because [something] does not fit",
    ),
    ("Folding [something]", "Unfolding [something]"),
    ("Hitting [something] with [something]", None),  # hit: 'hit' has no sensible antonym
    ("Holding [something]", None),  # hold: 'hold' has no sensible antonym
    ("Holding [something] behind [something]", None),  # hold: 'hold' has no sensible antonym
    ("Holding [something] in front of [something]", None),  # hold: 'hold' has no sensible antonym
    ("Holding [something] next to [something]", None),  # hold: 'hold' has no sensible antonym
    ("Holding [something] over [something]", None),  # hold: 'hold' has no sensible antonym
    (
        "Laying [something] on the table on its side, not upright",
        "Picking [something] up from the table on its side, not upright",
    ),
    ("Letting [something] roll along a flat surface", "Stopping [something] from rolling along a flat surface"),
    (
        "Letting [something] roll down a slanted surface",
        "Stopping [something] from rolling down a slanted surface",
    ),
    (
        "Letting [something] roll up a slanted surface, so it rolls back down",
        "Stopping [something] from rolling up a slanted surface, so it rolls back down",
    ),
    (
        "Lifting a surface with [something] on it but not enough for it to slide down",
        "Lowering a surface with [something] on it but not enough for it to slide down",
    ),
    (
        "Lifting a surface with [something] on it until it starts sliding down",
        "Lowering a surface with [something] on it until it starts sliding down",
    ),
    (
        "Lifting [something] up completely without letting it drop down",
        "Putting [something] down completely without letting it drop down",
    ),
    (
        "Lifting [something] up completely, then letting it drop down",
        "Putting [something] down completely, then letting it drop down",
    ),
    ("Lifting [something] with [something] on it", "Lowering [something] with [something] on it"),
    (
        "Lifting up one end of [something] without letting it drop down",
        "Putting down one end of [something] without letting it drop down",
    ),
    (
        "Lifting up one end of [something], then letting it drop down",
        "Putting down one end of [something], then letting it drop down",
    ),
    ("Moving away from [something] with your camera", "Moving towards [something] with your camera"),
    ("Moving [part] of [something]", None),  # move: 'move' has no sensible antonym
    (
        "Moving [something] across a surface until it falls down",
        "Moving [something] across a surface without it falling down",
    ),
    (
        "Moving [something] across a surface without it falling down",
        "Moving [something] across a surface until it falls down",
    ),
    (
        "Moving [something] and [something] away from each other",
        "Moving [something] and [something] closer to each other",
    ),
    (
        "Moving [something] and [something] closer to each other",
        "Moving [something] and [something] away from each other",
    ),
    (
        "Moving [something] and [something] so they collide with each other",
        "Moving [something] and [something] so they pass each other",
    ),
    (
        "Moving [something] and [something] so they pass each other",
        "Moving [something] and [something] so they collide with each other",
    ),
    ("Moving [something] away from [something]", "Moving [something] towards [something]"),
    ("Moving [something] away from the camera", "Moving [something] towards the camera"),
    ("Moving [something] closer to [something]", "Moving [something] further from [something]"),
    ("Moving [something] down", "Moving [something] up"),
    ("Moving [something] towards the camera", "Moving [something] away from the camera"),
    ("Moving [something] up", "Moving [something] down"),
    ("Opening [something]", "Closing [something]"),
    ("Picking [something] up", "Putting [something] down"),
    ("Piling [something] up", "Spreading [something] out"),
    ("Plugging [something] into [something]", "Unplugging [something] from [something]"),
    (
        "Plugging [something] into [something] but pulling it right out as you remove your hand",
        "Unplugging [something] from [something] but pulling it right out as you remove your hand",
    ),
    ("Poking a hole into [some substance]", "Filling a hole in [some substance]"),
    ("Poking a hole into [something soft]", "Filling a hole in [something soft]"),
    ("Poking a stack of [something] so the stack collapses", "Pulling a stack of [something] so the stack collapses"),
    (
        "Poking a stack of [something] without the stack collapsing",
        "Pulling a stack of [something] without the stack collapsing",
    ),
    ("Poking [something] so it slightly moves", "Pulling [something] so it slightly moves"),
    (
        "Poking [something] so lightly that it doesn't or almost doesn't move",
        "Pulling [something] so lightly that it doesn't or almost doesn't move",
    ),
    ("Poking [something] so that it falls over", "Pulling [something] so that it falls over"),
    ("Poking [something] so that it spins around", "Pulling [something] so that it spins around"),
    ("Pouring [something] into [something]", "Pouring [something] out of [something]"),
    (
        "Pouring [something] into [something] until it overflows",
        "Pouring [something] out of [something] until it overflows",
    ),
    ("Pouring [something] onto [something]", "Scooping [something] up from [something]"),
    ("Pouring [something] out of [something]", "Pouring [something] into [something]"),
    (
        "Pretending or failing to wipe [something] off of [something]",
        "Pretending or failing to spread [something] onto [something]",
    ),
    (
        "Pretending or trying and failing to twist [something]",
        "Pretending or trying and failing to untwist [something]",
    ),
    (
        "Pretending to be tearing [something that is not tearable]",
        "Pretending to be mending [something that is not tearable]",
    ),
    (
        "Pretending to close [something] without actually closing it",
        "Pretending to open [something] without actually opening it",
    ),
    (
        "Pretending to open [something] without actually opening it",
        "Pretending to close [something] without actually closing it",
    ),
    ("Pretending to pick [something] up", "Pretending to put [something] down"),
    ("Pretending to poke [something]", "Pretending to pull [something]"),
    (
        "Pretending to pour [something] out of [something], but [something] is empty",
        "Pretending to pour [something] into [something], but [something] is empty",
    ),
    ("Pretending to put [something] behind [something]", "Pretending to take [something] from behind [something]"),
    ("Pretending to put [something] into [something]", "Pretending to take [something] out of [something]"),
    ("Pretending to put [something] next to [something]", "Pretending to take [something] away from [something]"),
    ("Pretending to put [something] on a surface", "Pretending to take [something] off a surface"),
    ("Pretending to put [something] onto [something]", "Pretending to take [something] off [something]"),
    (
        "Pretending to put [something] underneath [something]",
        "Pretending to take [something] from underneath [something]",
    ),
    ("Pretending to scoop [something] up with [something]", "Pretending to pour [something] out with [something]"),
    ("Pretending to spread air onto [something]", "Pretending to wipe air off [something]"),
    ("Pretending to sprinkle air onto [something]", "Pretending to wipe air off [something]"),
    ("Pretending to squeeze [something]", "Pretending to stretch [something]"),
    ("Pretending to take [something] from [somewhere]", "Pretending to put [something] on [somewhere]"),
    ("Pretending to take [something] out of [something]", "Pretending to put [something] into [something]"),
    ("Pretending to throw [something]", "Pretending to catch [something]"),
    ("Pretending to turn [something] upside down", "Pretending to turn [something] right side up"),
    ("Pulling [something] from behind of [something]", "Pushing [something] behind [something]"),
    ("Pulling [something] from left to right", "Pulling [something] from right to left"),
    ("Pulling [something] from right to left", "Pulling [something] from left to right"),
    ("Pulling [something] onto [something]", "Pushing [something] off [something]"),
    ("Pulling [something] out of [something]", "Pushing [something] into [something]"),
    ("Pulling two ends of [something] but nothing happens", "Pushing two ends of [something] but nothing happens"),
    (
        "Pulling two ends of [something] so that it gets stretched",
        "Pushing two ends of [something] so that it gets stretched",
    ),
    (
        "Pulling two ends of [something] so that it separates into two pieces",
        "Pushing two ends of [something] so that it separates into two pieces",
    ),
    ("Pushing [something] from left to right", "Pushing [something] from right to left"),
    ("Pushing [something] from right to left", "Pushing [something] from left to right"),
    ("Pushing [something] off of [something]", "Pulling [something] onto [something]"),
    ("Pushing [something] onto [something]", "Pulling [something] off [something]"),
    ("Pushing [something] so it spins", "Pulling [something] so it spins"),
    (
        "Pushing [something] so that it almost falls off but doesn't",
        "Pulling [something] so that it almost falls off but doesn't",
    ),
    ("Pushing [something] so that it falls off the table", "Pulling [something] so that it falls off the table"),
    ("Pushing [something] so that it slightly moves", "Pulling [something] so that it slightly moves"),
    ("Pushing [something] with [something]", "Pulling [something] with [something]"),
    ("Putting [number of] [something] onto [something]", "Taking [number of] [something] off [something]"),
    ("Putting [something] and [something] on the table", "Taking [something] and [something] off the table"),
    ("Putting [something] behind [something]", "Taking [something] from behind [something]"),
    ("Putting [something] in front of [something]", "Taking [something] away from the front of [something]"),
    ("Putting [something] into [something]", "Taking [something] out of [something]"),
    ("Putting [something] next to [something]", "Taking [something] away from [something]"),
    (
        "Putting [something] on a flat surface without letting it roll",
        "Taking [something] off a flat surface without letting it roll",
    ),
    ("Putting [something] on a surface", "Taking [something] off a surface"),
    (
        "Putting [something] on the edge of [something] so it is not supported and falls down",
        "Taking [something] off the edge of [something] so it is not supported and falls down",
    ),
    (
        "Putting [something] onto a slanted surface but it doesn't glide down",
        "Taking [something] off a slanted surface but it doesn't glide down",
    ),
    ("Putting [something] onto [something]", "Taking [something] off [something]"),
    (
        "Putting [something] onto [something else that cannot support it] so it falls down",
        "Taking [something] off [something else that cannot support it] so it falls down",
    ),
    (
        "Putting [something similar to other things that are already on the table]",
        "Taking [something similar to other things that are already on the table]",
    ),
    (
        "Putting [something] that can't roll onto a slanted surface, so it slides down",
        "Taking [something] that can't roll off a slanted surface, so it slides down",
    ),
    (
        "Putting [something] that can't roll onto a slanted surface, so it stays where it is",
        "Taking [something] that can't roll off a slanted surface, so it stays where it is",
    ),
    (
        "Putting [something that cannot actually stand upright] upright on the table, so it falls on its side",
        "Taking [something that cannot actually stand upright] upright off the table, so it falls on its side",
    ),
    ("Putting [something] underneath [something]", "Taking [something] from underneath [something]"),
    ("Putting [something] upright on the table", "Taking [something] upright off the table"),
    (
        "Putting [something], [something] and [something] on the table",
        "Taking [something], [something] and [something] off the table",
    ),
    ("Removing [something], revealing [something] behind", "Putting back [something], hiding [something] behind"),
    ("Rolling [something] on a flat surface", None),  # roll: 'roll' has no sensible antonym
    ("Scooping [something] up with [something]", "Pouring [something] out with [something]"),
    ("Showing a photo of [something] to the camera", "Hiding a photo of [something] from the camera"),
    ("Showing [something] behind [something]", "Hiding [something] behind [something]"),
    ("Showing [something] next to [something]", "Hiding [something] next to [something]"),
    ("Showing [something] on top of [something]", "Hiding [something] on top of [something]"),
    ("Showing [something] to the camera", "Hiding [something] from the camera"),
    ("Showing that [something] is empty", None),  # show: showing that ... demonstrates a fact
    ("Showing that [something] is inside [something]", None),  # show: showing that ... demonstrates a fact
    ("[Something] being deflected from [something]", None),  # be: 'be' has no sensible antonym
    (
        "[Something] colliding with [something] and both are being deflected",
        "[Something] colliding with [something] and both come to a halt",
    ),
    (
        "[Something] colliding with [something] and both come to a halt",
        "[Something] colliding with [something] and both are being deflected",
    ),
    ("[Something] falling like a feather or paper", "[Something] rising like a feather or paper"),
    ("[Something] falling like a rock", "[Something] rising like a rock"),
    ("Spilling [something] behind [something]", "Wiping up [something] behind [something]"),
    ("Spilling [something] next to [something]", "Wiping up [something] next to [something]"),
    ("Spilling [something] onto [something]", "Wiping [something] off [something]"),
    ("Spinning [something] so it continues spinning", "Spinning [something] so it stops spinning"),
    ("Spinning [something] that quickly stops spinning", "Spinning [something] that quickly starts spinning"),
    ("Spreading [something] onto [something]", "Wiping [something] off [something]"),
    ("Sprinkling [something] onto [something]", "Wiping [something] off [something]"),
    ("Squeezing [something]", "Stretching [something]"),
    ("Stacking [number of] [something]", "Unstacking [number of] [something]"),
    ("Stuffing [something] into [something]", "Pulling [something] out of [something]"),
    ("Taking [one of many similar things on the table]", "Putting down [one of many similar things on the table]"),
    ("Taking [something] from [somewhere]", "Putting [something] on [somewhere]"),
    ("Taking [something] out of [something]", "Putting [something] into [something]"),
    ("Tearing [something] into two pieces", "Putting [something] together from two pieces"),
    ("Tearing [something] just a little bit", "Mending [something] just a little bit"),
    ("Throwing [something]", "Catching [something]"),
    ("Throwing [something] against [something]", None),  # throw: catching it "against" is no action
    ("Throwing [something] in the air and catching it", "Catching [something] in the air and throwing it"),
    (
        "Throwing [something] in the air and letting it fall",
        "Catching [something] in the air and stopping it from falling",
    ),
    ("Throwing [something] onto a surface", "Picking [something] up from a surface"),
    (
        "Tilting [something] with [something] on it slightly so it doesn't fall down",
        "Tilting [something] with [something] on it until it falls off",
    ),
    (
        "Tilting [something] with [something] on it until it falls off",
        "Tilting [something] with [something] on it slightly so it doesn't fall down",
    ),
    ("Tipping [something] over", "Standing [something] up"),
    (
        "Tipping [something] with [something in it] over, so [something in it] falls out",
        None,
    ),  # tip: 'tip' has no sensible antonym
    ("Touching (without moving) [part] of [something]", None),  # touch: 'touch' has no sensible antonym
    (
        "Trying but failing to attach [something] to [something] because it doesn't stick",
        "Trying but failing to detach [something] from [something] because it doesn't stick",
    ),
    (
        "Trying to bend [something unbendable] so nothing happens",
        "Trying to straighten [something unbendable] so nothing happens",
    ),
    (
        "Trying to pour [something] into [something], but missing so it spills next to it",
        "Trying to pour [something] out of [something], but missing so it spills next to it",
    ),
    ("Turning [something] upside down", "Turning [something] right side up"),
    ("Turning the camera downwards while filming [something]", "Turning the camera upwards while filming [something]"),
    ("Turning the camera left while filming [something]", "Turning the camera right while filming [something]"),
    ("Turning the camera right while filming [something]", "Turning the camera left while filming [something]"),
    ("Turning the camera upwards while filming [something]", "Turning the camera downwards while filming [something]"),
    (
        "Twisting (wringing) [something] wet until water comes out",
        "Untwisting [something] wet until water comes out",
    ),
    ("Twisting [something]", "Untwisting [something]"),
    ("Uncovering [something]", "Covering [something]"),
    ("Unfolding [something]", "Folding [something]"),
    ("Wiping [something] off of [something]", "Spreading [something] onto [something]"),
]


def test_table_is_the_174_templates():
    assert len(TEMPLATES) == 174
    assert len({template for template, _ in TEMPLATES}) == 174


@pytest.mark.parametrize(("template", "expected"), TEMPLATES, ids=[t for t, _ in TEMPLATES])
def test_template_antonym(template, expected):
    result = action_antonym(template)
    assert result.text == expected
    assert (result.reason is None) == (expected is not None)


def test_hidden_object_captions_match_the_templates():
    """The object-hidden class captions ("Pushing something ...") with their placeholders named as objects,
    as the SSv2 reader passes them, get the same antonyms."""
    for template, expected in TEMPLATES:
        objects = re.findall(r"\[([^\]]*)\]", template)
        hidden = re.sub(r"\[([^\]]*)\]", r"\1", template)
        want = None if expected is None else re.sub(r"\[([^\]]*)\]", r"\1", expected)
        assert action_antonym(hidden, objects=objects).text == want, template


def test_coverage_at_least_90_percent():
    covered = sum(action_antonym(template).text is not None for template, _ in TEMPLATES)
    assert covered / len(TEMPLATES) >= 0.9
