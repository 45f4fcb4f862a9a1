"""A FHIR R4 Bundle of one analysis: DiagnosticReport + Observations + Media + Device.

Validated with ``fhir.resources.R4B`` (FHIR 4.3.0, the R4 line: fhir.resources >= 7
defaults to R5 and ships R4B and STU3 as sub-packages; DiagnosticReport, Observation,
Media and Device are the same in R4 4.0.1 and R4B for every element used here).

There is no patient (the app has no accounts): ``subject`` is left out, which R4 allows.
Codes: LOINC 33728-7 for the lesion's greatest dimension in mm (only when a scale is
known), HL7 ``observation-category`` = imaging, HL7 ``risk-probability`` for the level,
UCUM units, DICOM ``XC`` (external-camera photography) for images. No LOINC or SNOMED
code exists for an AI melanoma probability or for the automated ABCD/TDS scores, so
those use the local code system ``CODE_SYSTEM`` with a human-readable text.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timezone
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.media import Media
from fhir.resources.R4B.observation import Observation

from melascan import __version__
from melascan.web import present
from melascan.web.i18n import translate
from melascan.web.present import advice_key

FHIR_VERSION = "4.3.0"  # R4B
CODE_SYSTEM = "urn:melascan:fhir:codes"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
RESOURCE_CLASSES = {"DiagnosticReport": DiagnosticReport, "Observation": Observation, "Media": Media, "Device": Device}


def _uid(analysis_id: str, name: str) -> str:
    """A stable UUID for one resource of one analysis (same export -> same ids)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"melascan:{analysis_id}:{name}"))


def _local(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": CODE_SYSTEM, "code": code, "display": display}], "text": display}


def _quantity(value: float, unit: str, code: str | None = None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": round(float(value), 4), "unit": unit}
    if code:
        q.update(system=UCUM, code=code)
    return q


def build_bundle(result: dict[str, Any], images: dict[str, tuple[str, bytes]], *,
                 analysis_id: str, created_at: datetime | None, lesion_name: str | None = None) -> dict[str, Any]:
    """The validated Bundle as a JSON-safe dict. ``images``: kind -> (mime, bytes). ``lesion_name``:
    the tracked spot's name, as the person wrote it: the ``bodySite`` text of every Observation
    and Media, and in the report's conclusion (no code: it is free text)."""
    when = (created_at or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds")
    risk, model, lesion = result["risk"], result["model"], result.get("lesion") or {}
    probability = float(result["classification"]["probability"])
    site = {"bodySite": {"text": lesion_name}} if lesion_name else {}
    device_id = _uid(analysis_id, "device")
    imaging = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "imaging", "display": "Imaging"}]}]
    resources: list[dict[str, Any]] = []

    device_notes = [{"text": w} for w in model.get("warnings", [])]
    resources.append({
        "resourceType": "Device",
        "id": device_id,
        "deviceName": [{"name": f"MelaScan {__version__} / {model.get('name')}", "type": "model-name"}],
        "version": [{"value": str(model.get("onnx_sha256") or "")[:16] or "unknown"}],
        "note": [{"text": f"model status: {model.get('status')}; architecture {model.get('architecture')}"}] + device_notes,
    })

    def observation(name: str, code: dict[str, Any], **value: Any) -> str:
        oid = _uid(analysis_id, name)
        resources.append({
            "resourceType": "Observation",
            "id": oid,
            "status": "final",
            "category": imaging,
            "code": code,
            "effectiveDateTime": when,
            "issued": when,
            "device": {"reference": f"urn:uuid:{device_id}"},
            **site,
            **value,
        })
        return oid

    level = risk.get("level", "unknown")
    if level == "out_of_scope":  # no probability for an image that is not dermoscopy of a skin lesion
        value: dict[str, Any] = {"dataAbsentReason": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                        "code": "not-applicable", "display": "Not Applicable"}],
            "text": translate("warning.out_of_scope", "en")}}
    else:
        value = {"valueQuantity": _quantity(100 * probability, "%", "%"),
                 "note": [{"text": "Model output, not a diagnosis. Thresholds: screening "
                                   f"{model['thresholds'].get('screening')}, balanced "
                                   f"{model['thresholds'].get('balanced')}."}]}
    obs_ids = [observation(
        "probability",
        _local("melanoma-probability", "Calibrated probability of melanoma (automated image analysis)"),
        **value,
    )]
    if level in ("low", "moderate", "high"):
        risk_value = {"valueCodeableConcept": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/risk-probability", "code": level,
                        "display": level.capitalize() + " likelihood"}],
            "text": translate(f"level.{level}", "en")}}
    else:
        risk_value = {"valueCodeableConcept": {"text": translate(f"level.{level}", "en")}}
    obs_ids.append(observation("risk", _local("melanoma-risk-level", "Melanoma risk level (MelaScan rule)"), **risk_value))

    scores = [
        ("asymmetry", "Asymmetry score (A, 0-2 axes)"),
        ("border", "Border score (B, 0-8 segments)"),
        ("colors", "Colour count (C, 1-6)"),
        ("structures", "Differential structures (D, 1-5)"),
        ("tds", "Total Dermoscopy Score (Stolz ABCD rule)"),
    ]
    for key, display in scores:
        value = present.feature_value(lesion, key)
        if value is not None:
            extra = {"interpretation": [{"text": f"TDS band: {lesion['tds_band']}"}]} if key == "tds" and lesion.get("tds_band") else {}
            obs_ids.append(observation(key, _local(f"dermoscopy-{key}", display),
                                       valueQuantity=_quantity(value, "1", "1"), **extra))
    diameter_mm = present.number(lesion.get("diameter_mm"))
    diameter_px = present.number(lesion.get("diameter_px"))
    if diameter_mm is not None:
        code = {"coding": [{"system": LOINC, "code": "33728-7", "display": "Size.maximum dimension in Tumor"},
                           {"system": CODE_SYSTEM, "code": "lesion-diameter", "display": "Lesion diameter"}],
                "text": "Lesion greatest diameter"}
        obs_ids.append(observation("diameter_mm", code, valueQuantity=_quantity(diameter_mm, "mm", "mm")))
    elif diameter_px is not None:
        obs_ids.append(observation("diameter_px", _local("lesion-diameter-px", "Lesion diameter in image pixels (no scale known)"),
                                   valueQuantity=_quantity(diameter_px, "pixels")))
    warnings = result.get("quality", {}).get("warnings", [])
    if warnings:
        obs_ids.append(observation("quality", _local("image-quality", "Image quality warnings"),
                                   valueString=", ".join(warnings)))

    media_links = []
    for kind in ("original", "contour", "heatmap"):
        if kind not in images:
            continue
        mime, data = images[kind]
        mid = _uid(analysis_id, f"media-{kind}")
        resources.append({
            "resourceType": "Media",
            "id": mid,
            "status": "completed",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/media-type", "code": "image",
                                 "display": "Image"}]},
            "modality": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "XC",
                                     "display": "External-camera Photography"}]},
            "createdDateTime": when,
            **site,
            "device": {"reference": f"urn:uuid:{device_id}"},
            "content": {"contentType": mime, "data": base64.b64encode(data).decode("ascii"),
                        "size": len(data), "title": translate(f"image.{kind}", "en")},
        })
        media_links.append({"comment": translate(f"image.{kind}", "en"), "link": {"reference": f"urn:uuid:{mid}"}})

    conclusion = translate(f"result.headline.{level}", "en") + " " + translate(advice_key(risk), "en")
    report_id = _uid(analysis_id, "report")
    resources.insert(0, {
        "resourceType": "DiagnosticReport",
        "id": report_id,
        "identifier": [{"system": "urn:melascan:analysis", "value": analysis_id}],
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "OTH",
                                  "display": "Other"}]}],
        "code": _local("melanoma-screening", "Automated dermoscopic melanoma screening (MelaScan)"),
        "effectiveDateTime": when,
        "issued": when,
        "result": [{"reference": f"urn:uuid:{oid}"} for oid in obs_ids],
        "media": media_links,
        "conclusion": (f"Spot: {lesion_name}. " if lesion_name else "") + conclusion
        + " Not a diagnosis: research software, not a medical device.",
    })

    for resource in resources:  # each resource against its own R4B model
        RESOURCE_CLASSES[resource["resourceType"]].model_validate(resource)
    bundle = {
        "resourceType": "Bundle",
        "id": _uid(analysis_id, "bundle"),
        "meta": {"tag": [{"system": CODE_SYSTEM, "code": f"fhir-{FHIR_VERSION}"}]},
        "identifier": {"system": "urn:melascan:analysis", "value": analysis_id},
        "type": "collection",
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }
    return json.loads(Bundle.model_validate(bundle).model_dump_json())
