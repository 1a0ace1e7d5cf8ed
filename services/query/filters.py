"""A search request's structured filters, checked, as a Milvus filter (built by
services.common.vectors, which quotes every value)."""

import math

from services.common import vectors
from services.common.genproto.vizsearch.v1 import query_pb2
from services.common.wire import LEVEL_NAMES, SOURCE_NAMES

MAX_FILTER_VALUES = 256  # values in one list filter


class BadFilter(ValueError):
    pass


def expression(filters: query_pb2.Filters, level: int) -> str:
    object_filters = [name for name, present in (
        ("labels", bool(filters.labels)), ("sources", bool(filters.sources)),
        ("min_box_area", filters.HasField("min_box_area"))) if present]
    if level != query_pb2.LEVEL_OBJECTS and object_filters:
        raise BadFilter(f"filters.{object_filters[0]} applies to object entries: set level to objects")
    for name in ("datasets", "labels", "exclude_labels", "all_labels"):
        values = getattr(filters, name)
        if len(values) > MAX_FILTER_VALUES:
            raise BadFilter(f"filters.{name} has {len(values)} values: at most {MAX_FILTER_VALUES}")
        if any(not value for value in values):
            raise BadFilter(f"filters.{name} has an empty value")
    unknown = [s for s in filters.sources if s not in SOURCE_NAMES]
    if unknown:
        raise BadFilter(f"filters.sources has {unknown[0]}: use ground_truth or prediction")
    area = filters.min_box_area if filters.HasField("min_box_area") else None
    if area is not None and (not math.isfinite(area) or area < 0):
        raise BadFilter(f"filters.min_box_area is {area}: give a number of pixels >= 0")
    if len(filters.key_prefix) > vectors.MAX_KEY_CHARS:
        raise BadFilter(f"filters.key_prefix has {len(filters.key_prefix)} characters: keys have at most "
                        f"{vectors.MAX_KEY_CHARS}")
    for side in ("width", "height"):
        low, high = getattr(filters, f"min_{side}"), getattr(filters, f"max_{side}")
        if low < 0 or high < 0:
            raise BadFilter(f"filters.{'min' if low < 0 else 'max'}_{side} is {min(low, high)}: give pixels >= 0")
        if low and high and low > high:
            raise BadFilter(f"filters.min_{side} ({low}) is above filters.max_{side} ({high}): nothing can match")
    return vectors.SearchFilter(
        datasets=filters.datasets, labels=filters.labels, exclude_labels=filters.exclude_labels,
        all_labels=filters.all_labels, sources=[SOURCE_NAMES[s] for s in filters.sources], min_box_area=area,
        key_prefix=filters.key_prefix, min_width=filters.min_width, max_width=filters.max_width,
        min_height=filters.min_height, max_height=filters.max_height,
    ).expression(LEVEL_NAMES[level])
