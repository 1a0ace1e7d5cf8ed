"""A search request's structured filters, checked, as a Milvus filter (built by
services.common.vectors, which quotes every value)."""

import math

from services.common import vectors
from services.common.genproto.vizsearch.v1 import query_pb2
from services.common.wire import SOURCE_NAMES


class BadFilter(ValueError):
    pass


def expression(filters: query_pb2.Filters, level: int) -> str:
    object_filters = [name for name, present in (
        ("labels", bool(filters.labels)), ("sources", bool(filters.sources)),
        ("min_box_area", filters.HasField("min_box_area"))) if present]
    if level != query_pb2.LEVEL_OBJECTS:
        if object_filters:
            raise BadFilter(f"filters.{object_filters[0]} applies to object entries: set level to objects")
        return vectors.search_filter(datasets=filters.datasets)
    unknown = [s for s in filters.sources if s not in SOURCE_NAMES]
    if unknown:
        raise BadFilter(f"filters.sources has {unknown[0]}: use ground_truth or prediction")
    area = filters.min_box_area if filters.HasField("min_box_area") else None
    if area is not None and (not math.isfinite(area) or area < 0):
        raise BadFilter(f"filters.min_box_area is {area}: give a number of pixels >= 0")
    return vectors.search_filter(datasets=filters.datasets, labels=filters.labels,
                                 sources=[SOURCE_NAMES[s] for s in filters.sources], min_box_area=area)
