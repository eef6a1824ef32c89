"""The built-in world's vocabulary: objects and actions, written as SSv2 templates."""

from __future__ import annotations

from dataclasses import dataclass

COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple")
SHAPES: tuple[str, ...] = ("ball", "box", "triangle", "ring")
OBJECTS: tuple[str, ...] = tuple(f"{c} {s}" for c in COLOURS for s in SHAPES)

# The domain-shifted world (`paxion synth --shift`): none of these colours or shapes occurs above.
SHIFT_COLOURS: tuple[str, ...] = ("lime", "violet", "crimson", "magenta", "azure")
SHIFT_SHAPES: tuple[str, ...] = ("star", "diamond", "cross", "hexagon")
SHIFT_OBJECTS: tuple[str, ...] = tuple(f"{c} {s}" for c in SHIFT_COLOURS for s in SHIFT_SHAPES)


@dataclass(frozen=True)
class Action:
    """One action class of the world.

    template: the SSv2-style caption template, `[something]` marking each object.
    motion: the name of the renderer that draws it (see `paxion.synth.render`).
    partner: the template of the action whose clip is this one played backwards, or None.
    salient: whether the action changes the scene between the first and second half.
    """

    template: str
    motion: str
    partner: str | None
    salient: bool = True

    @property
    def n_objects(self) -> int:
        """How many objects the action involves."""
        return self.template.count("[something]")

    @property
    def reversed(self) -> bool:
        """Whether this action is drawn as its partner played backwards."""
        return self.partner is not None and ACTION_INDEX[self.partner] < ACTION_INDEX[self.template]


def _pair(forward: str, backward: str, motion: str) -> tuple[Action, Action]:
    return Action(forward, motion, backward), Action(backward, motion, forward)


ACTIONS: tuple[Action, ...] = (
    *_pair("Pushing [something] from left to right", "Pushing [something] from right to left", "slide"),
    *_pair("[something] falling", "[something] rising", "fall"),
    *_pair("Moving [something] towards the camera", "Moving [something] away from the camera", "approach"),
    *_pair("Covering [something]", "Uncovering [something]", "cover"),
    *_pair("Filling [something]", "Emptying [something]", "fill"),
    *_pair("[something] appearing", "[something] disappearing", "fade"),
    *_pair(
        "Moving [something] and [something] closer to each other",
        "Moving [something] and [something] away from each other",
        "converge",
    ),
    *_pair("Opening [something]", "Closing [something]", "open"),
    Action("Holding [something]", "hold", None, salient=False),
    Action("Shaking [something]", "shake", None, salient=False),
)

ACTION_INDEX: dict[str, int] = {a.template: i for i, a in enumerate(ACTIONS)}

# The classes whose two members only differ in the order of frames (the "temporal" subset).
TEMPORAL_TEMPLATES: tuple[str, ...] = tuple(a.template for a in ACTIONS if a.partner is not None)


def fill_template(template: str, objects: list[str] | tuple[str, ...]) -> str:
    """Fill `[something]` placeholders in order and capitalise the first letter, as SSv2 labels are."""
    text = template
    for obj in objects:
        text = text.replace("[something]", obj, 1)
    if "[something]" in text:
        raise ValueError(f"template {template!r} needs more objects than {list(objects)!r}")
    return text[0].upper() + text[1:]


def template_caption(template: str) -> str:
    """The object-hidden caption of a template ("Pushing something from left to right")."""
    return fill_template(template, ["something"] * template.count("[something]"))
