"""Structured filters to Milvus expressions. Every value passes through
services.common.vectors.quote or is a checked number: no user string is ever
pasted into an expression."""

import math

from services.common.genproto.vizsearch.v1 import query_pb2
from services.common.vectors import GROUND_TRUTH, PREDICTION, quote_list

SOURCES = {query_pb2.OBJECT_SOURCE_GROUND_TRUTH: GROUND_TRUTH, query_pb2.OBJECT_SOURCE_PREDICTION: PREDICTION}
SOURCE_ENUMS = {name: value for value, name in SOURCES.items()}


class BadFilter(ValueError):
    pass


def expression(filters: query_pb2.Filters, level: int) -> str:
    parts = []
    if filters.datasets:
        parts.append(f"dataset in {quote_list(filters.datasets)}")
    object_filters = [name for name, present in (
        ("labels", bool(filters.labels)), ("sources", bool(filters.sources)),
        ("min_box_area", filters.HasField("min_box_area"))) if present]
    if level != query_pb2.LEVEL_OBJECTS:
        if object_filters:
            raise BadFilter(f"filters.{object_filters[0]} applies to object entries: set level to objects")
        return " and ".join(parts)
    if filters.labels:
        parts.append(f"label in {quote_list(filters.labels)}")
    if filters.sources:
        unknown = [s for s in filters.sources if s not in SOURCES]
        if unknown:
            raise BadFilter(f"filters.sources has {unknown[0]}: use ground_truth or prediction")
        parts.append(f"source in {quote_list(sorted({SOURCES[s] for s in filters.sources}))}")
    if filters.HasField("min_box_area"):
        area = filters.min_box_area
        if not math.isfinite(area) or area < 0:
            raise BadFilter(f"filters.min_box_area is {area}: give a number of pixels >= 0")
        parts.append(f"box_area >= {float(area)!r}")
    return " and ".join(parts)
