"""Object replacement: other objects from the dataset's vocabulary, whole words, deterministic per clip."""

from paxion.bench.objects import clip_objects, object_phrases, object_vocabulary, replace_objects
from paxion.bench.records import ClipRecord
from paxion.synth.actions import OBJECTS


def test_object_phrases_after_determiners():
    assert object_phrases("C picks up the knife from the table") == ["knife", "table"]
    assert object_phrases("C places the cutting board on a counter") == ["cutting board", "counter"]
    assert object_phrases("C washes a dish in the kitchen sink and opens the tap") == ["dish", "kitchen", "tap"]
    assert object_phrases("C picks a bottle of juice from the fridge with her right hand") == [
        "bottle",
        "juice",
        "fridge",
    ]


# Real NExT-QA questions (with their answer) whose people, places, times and verbs were taken for objects.
NOT_OBJECTS = [
    ("why does the big dog run behind the house", ["dog", "house"]),
    ("what did the man with white helmet do", ["helmet"]),
    ("what did the lady do at the end of the video", []),
    ("why did the boy pick up the present", []),
    ("how do they warm up stretch hands out", []),
    ("why did the cat stand up on its hind legs touch cupboard", ["cat"]),
    ("#O the man X opens the door with his right hand", ["door"]),
    ("how many people are there in the video four", []),
]


def test_people_times_verbs_and_particles_are_not_objects():
    for caption, expected in NOT_OBJECTS:
        assert object_phrases(caption) == expected, caption


def test_dataset_nouns_decide_where_given():
    nouns = {"tap", "sink"}
    caption = "C washes a dish in the kitchen sink and opens the tap"
    assert object_phrases(caption, nouns=nouns) == ["sink", "tap"]
    record = ClipRecord("1", "train", "1.mp4", caption)
    assert clip_objects(record, nouns=nouns) == ("sink", "tap")
    assert object_vocabulary([record], nouns={"dish"}) == ["dish"]


def test_vocabulary_uses_dataset_objects_else_phrases():
    records = [
        ClipRecord("1", "train", "1.webm", "Red ball falling", objects=("red ball",)),
        ClipRecord("2", "train", "2.mp4", "C opens the door"),
    ]
    assert clip_objects(records[1]) == ("door",)
    assert object_vocabulary(records) == ["door", "red ball"]


def test_never_the_clips_own_object_and_whole_words_only():
    for k in range(200):
        own = [OBJECTS[k % len(OBJECTS)], OBJECTS[(k * 7 + 3) % len(OBJECTS)]]
        caption = f"Moving {own[0]} and {own[1]} closer to each other"
        result = replace_objects(caption, own, list(OBJECTS), seed=k, clip_id=str(k))
        assert result.text is not None
        assert not any(obj in result.text for obj in own)
        assert result.text.startswith("Moving ") and result.text.endswith(" closer to each other")
    text = replace_objects("C picks the box from the boxes", ["box"], ["box", "cup"], seed=0, clip_id="a").text
    assert text == "C picks the cup from the boxes"


def test_two_objects_get_two_different_replacements():
    for k in range(50):
        text = replace_objects(
            "Moving cup and pen", ["cup", "pen"], ["cup", "pen", "box", "jar"], seed=k, clip_id="c"
        ).text
        assert sorted(text.removeprefix("Moving ").split(" and ")) == ["box", "jar"]


def test_large_vocabulary_draws_without_scanning_it():
    """A vocabulary of a million objects (EgoClip scale): the draw stays correct and never returns the own object."""
    vocabulary = [f"thing{i}" for i in range(1_000_000)]
    known = set(vocabulary)
    for k in range(100):
        result = replace_objects("C picks the thing7", ["thing7"], vocabulary, seed=k, clip_id=str(k))
        assert result.text is not None and result.text != "C picks the thing7"
        assert result.text.removeprefix("C picks the ") in known


def test_keeps_capitalisation_and_is_deterministic_per_seed_and_clip():
    vocab = list(OBJECTS)
    same = {replace_objects("Red ball falling", ["red ball"], vocab, seed=3, clip_id="9").text for _ in range(3)}
    assert len(same) == 1
    (text,) = same
    assert text[0].isupper() and text.endswith(" falling") and text != "Red ball falling"
    many = {replace_objects("Red ball falling", ["red ball"], vocab, seed=s, clip_id="9").text for s in range(20)}
    assert len(many) > 3


def test_reasons_when_impossible():
    assert replace_objects("Falling", [], ["cup"], seed=0, clip_id="1").reason == "no object found in the caption"
    none_left = replace_objects("The cup falls", ["cup"], ["cup"], seed=0, clip_id="1")
    assert none_left.text is None and "no other object" in none_left.reason
    absent = replace_objects("Something falls", ["cup"], ["cup", "pen"], seed=0, clip_id="1")
    assert absent.text is None and absent.reason
