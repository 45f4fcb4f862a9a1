"""The result page shows the measured differential structures with their overlay."""

from __future__ import annotations

from melascan.web.i18n import translate
from melascan.web.present import STRUCTURE_KEYS, feature_rows, structure_rows


def en(key, **values):
    return translate(key, "en", **values)


def test_structure_rows_explain_every_structure():
    lesion = {"structures": {"pigment_network": "atypical", "dots_globules": "absent", "streaks": True,
                             "regression": False, "blue_whitish_veil": False}}
    rows = {r["key"]: r for r in structure_rows(lesion, en)}
    assert list(rows) == list(STRUCTURE_KEYS)
    assert rows["pigment_network"]["value"] == "atypical" and rows["pigment_network"]["found"] == "yes"
    assert rows["dots_globules"]["value"] == "not found" and rows["dots_globules"]["found"] == "no"
    assert rows["streaks"]["value"] == "found"
    assert all(r["explain"] and not r["explain"].startswith("structure.") for r in rows.values())


def test_structure_rows_empty_without_measurement():
    assert structure_rows({}, en) == [] and structure_rows({"structures": None}, en) == []


def test_measured_d_is_explained_as_measured():
    lesion = {"structures": 2, "tds_inputs": {"A": 0, "B": 1, "C": 2, "D": 2, "D_source": "measured"}}
    row = {r["key"]: r for r in feature_rows(lesion, en)}["structures"]
    assert row["value"] == "2" and row["explain"] == en("feature.structures.explain_measured")


def test_result_page_shows_structures_and_overlay(client, upload, lesion_jpeg):
    data = upload(client, lesion_jpeg, "spot.jpg").json
    assert set(data["lesion"]["structures"]) == set(STRUCTURE_KEYS)
    assert isinstance(data["lesion"]["seven_point"], int)
    assert data["lesion"]["tds_inputs"]["D_source"] == "measured"
    assert "structures" in data["overlays"]
    assert client.get(data["links"]["images"]["structures"]).status_code == 200
    page = client.get(data["links"]["page"]).get_data(as_text=True)
    assert 'id="structures"' in page and 'id="seven-point"' in page
    for key in STRUCTURE_KEYS:
        assert f'data-structure="{key}"' in page
