"""The OpenAPI 3.0 description of ``/api/v1`` (served at ``/api/openapi.json``)."""

from __future__ import annotations

from typing import Any

from melascan import __version__
from melascan.web.uploads import ALLOWED_EXTENSIONS


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


ID_PARAM = {"name": "analysis_id", "in": "path", "required": True, "schema": {"type": "string"}}
NOT_FOUND = _error("no such analysis in this browser's history")
#: Every request that changes something carries it (CSRF guard; any value).
CSRF_HEADER = {"name": "X-Requested-With", "in": "header", "required": True, "schema": {"type": "string"},
               "example": "curl", "description": "any value; refused with 403 csrf_failed without it"}
#: What every change may also get.
CHANGE_ERRORS = {
    "403": _error("no owner cookie yet (no_owner), or a cross-site request / missing X-Requested-With (csrf_failed)"),
    "409": _error("changed or deleted by a concurrent request; nothing was changed"),
}

_NUMBER_OR_NULL = {"type": "number", "nullable": True}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "MelaScan API",
            "version": __version__,
            "description": (
                "Melanoma screening support (not a diagnosis). Analyses belong to the anonymous "
                "browser token in the `melascan_owner` cookie, set by the first successful GET "
                "(e.g. `/api/v1/health`): keep cookies between calls (`curl -c jar -b jar`). "
                "POST and DELETE need the header `X-Requested-With` (any value). Errors are "
                "`{\"error\": {\"code\", \"message\"}}`."
            ),
            "license": {"name": "MIT"},
        },
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {"ownerCookie": {"type": "apiKey", "in": "cookie", "name": "melascan_owner"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string", "example": "invalid_image"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                },
                "Risk": {
                    "type": "object",
                    "properties": {
                        "level": {"type": "string", "enum": ["low", "moderate", "high", "unknown", "out_of_scope"]},
                        "model_level": {"type": "string", "enum": ["low", "moderate", "high"], "nullable": True,
                                        "description": "null when the picture is out of scope"},
                        "tds_band": {"type": "string", "nullable": True},
                        "quality_limited": {"type": "boolean"},
                        "blocking_warnings": {"type": "array", "items": {"type": "string"}},
                        "reasons": {"type": "array", "items": {"type": "string"}},
                        "suspicious": {"type": "boolean"},
                    },
                },
                "Analysis": {
                    "type": "object",
                    "description": "The full analysis (see docs/web.md for every field).",
                    "required": ["id", "schema", "classification", "risk", "lesion", "quality", "model", "links"],
                    "properties": {
                        "id": {"type": "string"},
                        "schema": {"type": "string", "example": "melascan.analysis/1"},
                        "created_at": {"type": "string", "format": "date-time"},
                        "filename": {"type": "string"},
                        "tracked_lesion": {
                            "type": "object",
                            "nullable": True,
                            "description": "the named lesion this image belongs to",
                            "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
                        },
                        "lesion": {
                            "type": "object",
                            "additionalProperties": True,
                            "description": "lesion analysis: asymmetry, border, colors, diameter, tds, tds_band ...",
                        },
                        "image": {"type": "object", "additionalProperties": True},
                        "model": {"type": "object", "additionalProperties": True},
                        "classification": {
                            "type": "object",
                            "properties": {
                                "probability": {"type": "number", "minimum": 0, "maximum": 1},
                                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                "logits": {"type": "array", "items": {"type": "number"}},
                                "in_scope": {"type": "boolean", "nullable": True,
                                             "description": "false: not a dermoscopic image of a skin lesion "
                                                            "(no probability may be shown)"},
                                "familiar": {"type": "boolean", "nullable": True,
                                             "description": "false: in scope, but unlike the images the model's "
                                                            "numbers were measured on (never called low risk)"},
                            },
                        },
                        "quality": {
                            "type": "object",
                            "properties": {
                                "warnings": {"type": "array", "items": {"type": "string"}},
                                "can_judge": {"type": "boolean"},
                            },
                        },
                        "risk": {"$ref": "#/components/schemas/Risk"},
                        "overlays": {"type": "array", "items": {"type": "string"}},
                        "links": {"type": "object", "additionalProperties": True},
                    },
                },
                "AnalysisSummary": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "created_at": {"type": "string", "format": "date-time"},
                        "filename": {"type": "string"},
                        "probability": {"type": "number"},
                        "risk_level": {"type": "string"},
                        "tracked_lesion": {"type": "object", "nullable": True},
                        "links": {"type": "object", "additionalProperties": True},
                    },
                },
                "AnalysisList": {
                    "type": "object",
                    "properties": {
                        "count": {"type": "integer", "description": "all analyses of this browser"},
                        "limit": {"type": "integer"},
                        "offset": {"type": "integer"},
                        "next": {"type": "string", "nullable": True, "description": "URL of the next page"},
                        "analyses": {"type": "array", "items": {"$ref": "#/components/schemas/AnalysisSummary"}},
                    },
                },
                "Health": {
                    "type": "object",
                    "properties": {"ok": {"type": "boolean"}, "version": {"type": "string"}, "model": {"type": "object"}},
                },
            },
        },
        "security": [{"ownerCookie": []}, {}],
        "paths": {
            "/api/v1/analyses": {
                "post": {
                    "summary": "Analyse an image and store it in this browser's history",
                    "operationId": "createAnalysis",
                    "parameters": [CSRF_HEADER],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["image"],
                                    "properties": {
                                        "image": {
                                            "type": "string",
                                            "format": "binary",
                                            "description": "JPEG, PNG, WebP, BMP, TIFF or GIF; extensions "
                                            + ", ".join(ALLOWED_EXTENSIONS),
                                        },
                                        "lesion_id": {"type": "string", "description": "add to this named lesion"},
                                        "ruler_mm": {"type": "string", "description": "optional image scale: a ruler "
                                                     "length in the photo, in mm (with ruler_px)"},
                                        "ruler_px": {"type": "string", "description": "the same length in pixels of the file"},
                                        "mm_per_px": {"type": "string", "description": "optional image scale instead of a "
                                                      "ruler: millimetres per pixel of the file (0.001-1)"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": _json("the analysis", "Analysis"),
                        "400": _error("missing field, empty file, bad extension, unreadable/too large/too small image, "
                                      "unusable scale (invalid_scale)"),
                        "404": _error("lesion_id not in this browser's history"),
                        "413": _error("request body larger than the limit (15 MB by default), too many form "
                                      "parts, or the history is full (quota_exceeded)"),
                        "415": _error("the body is not multipart/form-data"),
                        "429": _error("more analyses from this address than the rate limit (rate_limited; Retry-After)"),
                        **CHANGE_ERRORS,
                        "503": _error("the model could not be loaded, or the history database is locked, read-only or full"),
                    },
                },
                "get": {
                    "summary": "This browser's analyses, newest first, one page at a time",
                    "operationId": "listAnalyses",
                    "parameters": [
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
                        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
                    ],
                    "responses": {"200": _json("the list", "AnalysisList")},
                },
                "delete": {
                    "summary": "Delete every analysis and lesion of this browser",
                    "operationId": "deleteAllAnalyses",
                    "parameters": [CSRF_HEADER],
                    "responses": {
                        **CHANGE_ERRORS,
                        "200": {
                            "description": "how many analyses were deleted",
                            "content": {"application/json": {"schema": {"type": "object", "properties": {"deleted": {"type": "integer"}}}}},
                        }
                    },
                },
            },
            "/api/v1/analyses/{analysis_id}": {
                "parameters": [ID_PARAM],
                "get": {
                    "summary": "One analysis",
                    "operationId": "getAnalysis",
                    "responses": {"200": _json("the analysis", "Analysis"), "404": NOT_FOUND},
                },
                "delete": {
                    "summary": "Delete one analysis and its images",
                    "operationId": "deleteAnalysis",
                    "parameters": [CSRF_HEADER],
                    "responses": {"204": {"description": "deleted"}, "404": NOT_FOUND, **CHANGE_ERRORS},
                },
            },
            "/api/v1/health": {
                "get": {
                    "summary": "Whether the model is loaded, and whether it is trained",
                    "operationId": "health",
                    "responses": {"200": _json("ready", "Health"), "503": _error("the model could not be loaded")},
                }
            },
            "/results/{analysis_id}/report.pdf": {
                "parameters": [ID_PARAM],
                "get": {
                    "summary": "PDF report of an analysis",
                    "operationId": "reportPdf",
                    "responses": {"200": {"description": "PDF", "content": {"application/pdf": {}}}, "404": NOT_FOUND},
                },
            },
            "/results/{analysis_id}/fhir.json": {
                "parameters": [ID_PARAM],
                "get": {
                    "summary": "FHIR R4 (4.3.0, R4B) Bundle: DiagnosticReport + Observations",
                    "operationId": "reportFhir",
                    "responses": {"200": {"description": "FHIR Bundle", "content": {"application/fhir+json": {}}}, "404": NOT_FOUND},
                },
            },
        },
    }
