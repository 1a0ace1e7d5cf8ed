"""protos/ is the contract: the checked-in stubs must be exactly what it generates."""

from services.common import protogen


def test_checked_in_stubs_match_protos(tmp_path):
    out = tmp_path / "genproto"
    out.mkdir()
    protogen.generate(out)
    assert protogen.stale_files(out, protogen.OUTPUT) == [], "stubs are stale: run `make proto`"


def test_stale_check_notices_an_edit(tmp_path):
    out = tmp_path / "genproto"
    out.mkdir()
    protogen.generate(out)
    edited = out / "vizsearch" / "v1" / "embedder_pb2.py"
    edited.write_text(edited.read_text() + "\n# edited\n")
    assert protogen.stale_files(out, protogen.OUTPUT) == ["vizsearch/v1/embedder_pb2.py"]


def test_every_service_is_in_package_vizsearch_v1():
    from services.common.genproto.vizsearch.v1 import embedder_pb2, gateway_pb2, indexer_pb2, query_pb2

    services = {
        name: module.DESCRIPTOR.services_by_name[name].full_name
        for module, name in [(embedder_pb2, "Embedder"), (query_pb2, "Query"), (indexer_pb2, "Indexer"),
                             (gateway_pb2, "Gateway")]
    }
    assert services == {n: f"vizsearch.v1.{n}" for n in services}
