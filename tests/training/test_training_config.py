"""RunConfig: YAML + --set overrides, typed parsing, clear errors, saved config round-trips."""

import pytest

from melascan.errors import DataError
from melascan.training.config import RunConfig, config_from_dict, load_config, parse_overrides, save_config


def test_defaults_are_the_default_model():
    cfg = RunConfig().validate()
    assert (cfg.model, cfg.pretrained, cfg.image_size, cfg.recipe, cfg.loss) == (
        "efficientnet_lite0", "offline", 224, "C4", "ce")
    assert (cfg.batch_size, cfg.epochs, cfg.patience, cfg.checkpoint_every, cfg.seed) == (32, 100, 3, 10, 42)


def test_overrides_are_parsed_by_field_type(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: resnet50\nlr: 1e-3\nepochs: 5\n")
    cfg = load_config(path, ["lr=3e-4", "limit=64", "weighted_sampling=yes", "mean=0.5,0.4,0.3",
                             "std=[0.2, 0.2, 0.2]", "color_constancy=shades_of_gray", "patience=none"])
    assert cfg.model == "resnet50" and cfg.epochs == 5
    assert cfg.lr == pytest.approx(3e-4) and isinstance(cfg.lr, float)
    assert cfg.limit == 64 and cfg.weighted_sampling is True and cfg.patience is None
    assert cfg.mean == [0.5, 0.4, 0.3] and cfg.std == [0.2, 0.2, 0.2]
    assert cfg.color_constancy == "shades_of_gray"


def test_yaml_floats_without_dot_are_floats(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 3e-4\n")  # YAML 1.1 reads this as a string
    assert load_config(path).lr == pytest.approx(3e-4)


@pytest.mark.parametrize("items, message", [
    (["epoch=3"], "unknown config key"),
    (["epochs=three"], "epochs: expected int"),
    (["epochs=2.5"], "epochs: expected int"),
    (["weighted_sampling=maybe"], "expected bool"),
    (["mean=0.5,0.5"], "mean must be 3 numbers"),
    (["loss=hinge"], "loss must be one of"),
    (["recipe=C9"], "recipe must be one of"),
    (["pretrained=imagenet"], "pretrained must be one of"),
    (["epochs"], "--set expects key=value"),
])
def test_bad_overrides_are_clear_errors(items, message):
    with pytest.raises(DataError, match=message):
        load_config(None, items)


def test_unknown_key_in_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: resnet50\nlearning_rate: 0.1\n")
    with pytest.raises(DataError, match=r"bad\.yaml.*learning_rate"):
        load_config(path)


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(DataError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(None, ["mean=0.1,0.2,0.3", "std=0.3,0.2,0.1", "limit=10", "tta=true"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


def test_mean_std_from_eda_json_or_imagenet(tmp_path):
    eda = tmp_path / "eda.json"
    eda.write_text('{"rgb_mean": [0.7, 0.6, 0.5], "rgb_std": [0.2, 0.2, 0.25]}')
    mean, std, source = RunConfig(eda_json=str(eda)).resolved_mean_std()
    assert mean == [0.7, 0.6, 0.5] and std == [0.2, 0.2, 0.25] and source == str(eda)
    assert RunConfig(eda_json=None).resolved_mean_std()[2] == "imagenet"
    with pytest.raises(DataError, match="eda_json not found"):
        RunConfig(eda_json=str(tmp_path / "missing.json")).resolved_mean_std()


def test_parse_overrides_keeps_equals_in_values():
    assert parse_overrides(["manifest=a=b.csv"]) == {"manifest": "a=b.csv"}
    assert config_from_dict({"manifest": "a=b.csv"}).manifest == "a=b.csv"
