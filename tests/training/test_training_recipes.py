"""Every augmentation recipe builds and maps a uint8 image to a uint8 image of the same size."""

import pytest
import torch

from melascan.training.recipes import RECIPE_COMPONENTS, RECIPES, SEED_RECIPES, RandomDermoscopeFrame, build_recipe

SEED_TABLE = {
    "F1": ("F1",), "F2": ("F2",), "F3": ("F3",), "F4": ("F4",), "F5": ("F5",),
    "C1": ("F1", "F2"), "C2": ("F1", "F3"), "C3": ("F2", "F3"), "C4": ("F1", "F2", "F3"),
    "C5": ("F1", "F2", "F4"), "C6": ("F1", "F4", "F5"), "C7": ("F1", "F2", "F3", "F5"),
    "C8": ("F1", "F2", "F3", "F4", "F5"), "baseline": (),
}


def test_registry_matches_the_seed_table():
    for name, parts in SEED_TABLE.items():
        assert RECIPE_COMPONENTS[name] == parts
    assert set(SEED_RECIPES) == set(SEED_TABLE) and SEED_RECIPES[0] == "baseline"
    assert set(RECIPES) == set(SEED_TABLE) | {"C4S", "C4SF", "MS", "MSZ", "MSA"}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_transforms_a_uint8_image(name):
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8)
    transform = build_recipe(name)
    outputs = [transform(image) for _ in range(6)]
    for out in outputs:
        assert out.dtype == torch.uint8 and out.shape == image.shape
    changed = any(not torch.equal(out, image) for out in outputs)
    assert changed == (name != "baseline")


def test_unknown_recipe_lists_the_names():
    with pytest.raises(KeyError, match="C4S"):
        build_recipe("C42")


def test_dermoscope_frame_darkens_the_corners_only():
    torch.manual_seed(0)
    image = torch.full((3, 64, 64), 200, dtype=torch.uint8)
    framed = RandomDermoscopeFrame(p=1.0)(image)
    assert int(framed[:, 0, 0].max()) <= 25 and int(framed[:, -1, -1].max()) <= 25
    assert torch.equal(framed[:, 32, 32], image[:, 32, 32])
    assert torch.equal(RandomDermoscopeFrame(p=0.0)(image), image)


def test_multi_source_recipe_keeps_size_and_dtype_and_changes_resolution():
    import torch

    from melascan.training.recipes import RandomJpeg, RandomResolution, build_recipe

    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 48, 48), dtype=torch.uint8)
    out = build_recipe("MS")(image)
    assert out.shape == image.shape and out.dtype == torch.uint8
    blurred = RandomResolution(p=1.0, scale_range=(0.3, 0.3))(image)
    assert blurred.shape == image.shape and blurred.float().std() < image.float().std()  # detail lost
    assert RandomResolution(p=0.0)(image) is image
    assert RandomJpeg(p=1.0, quality=(30, 30))(image).shape == image.shape


def test_zoom_out_shrinks_the_lesion_into_a_margin_of_skin():
    from melascan.training.recipes import RandomZoomOut

    image = torch.full((3, 64, 64), 200, dtype=torch.uint8)
    image[:, 24:40, 24:40] = 30  # a 16 x 16 px lesion
    out = RandomZoomOut(p=1.0, scale_range=(0.5, 0.5))(image)
    assert out.shape == image.shape and out.dtype == torch.uint8
    assert int((out[0] < 100).sum()) == 8 * 8  # a quarter of the area, no mirrored copy
    assert int(out[:, 0, 0].min()) == 200  # the margin has the edge's colour
    assert RandomZoomOut(p=0.0)(image) is image


def test_artefacts_are_painted_with_a_fresh_draw_per_image():
    from melascan.evaluation.shift import ink_marks
    from melascan.training.recipes import RandomArtefact

    image = torch.full((3, 64, 64), 180, dtype=torch.uint8)
    paint = RandomArtefact(ink_marks, p=1.0)
    torch.manual_seed(0)
    first, second = paint(image), paint(image)
    assert first.shape == image.shape and first.dtype == torch.uint8
    assert not torch.equal(first, image) and not torch.equal(first, second)
    assert RandomArtefact(ink_marks, p=0.0)(image) is image
