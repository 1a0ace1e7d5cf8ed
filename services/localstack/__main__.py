"""`python -m services.localstack up|down|status`: the local stack (see `make up`)."""

import argparse
import sys

from services.localstack.launcher import Stack, StackError


def smoke(stack: Stack) -> int:
    """Embeds a text and an image through the running embedder and says what came back."""
    import io

    import grpc
    from PIL import Image

    from services.common.genproto.vizsearch.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc

    image = io.BytesIO()
    Image.new("RGB", (320, 240), (30, 90, 200)).save(image, "JPEG")
    with grpc.insecure_channel(f"127.0.0.1:{stack.settings.embedder_port}") as channel:
        embedder = embedder_pb2_grpc.EmbedderStub(channel)
        try:
            texts = embedder.EmbedTexts(embedder_pb2.EmbedTextsRequest(texts=["a bus at night"]), timeout=60)
            images = embedder.EmbedImages(
                embedder_pb2.EmbedImagesRequest(images=[common_pb2.ImageInput(data=image.getvalue())],
                                                fail_on_item_error=True), timeout=60)
        except grpc.RpcError as error:
            print(f"smoke check failed: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    model = texts.model
    print(f"model {model.model_id} (version {model.version}, {model.dimension}-d, {model.image_size}px)")
    print(f"  text 'a bus at night' -> {len(texts.vectors[0].values)}-d vector")
    print(f"  a 320x240 JPEG        -> {len(images.results[0].vector.values)}-d vector")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m services.localstack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "smoke"])
    args = parser.parse_args()
    stack = Stack()
    if args.command == "up":
        try:
            took = stack.up()
        except StackError as error:
            print(f"\nthe stack did not come up: {error}\n(`make down` stops what did start)", file=sys.stderr)
            return 1
        print(f"\nvizsearch is up in {took:.1f}s (run directory {stack.run}):")
        for status in stack.status():
            for name, endpoint in status.endpoints.items():
                print(f"  {name:18} {endpoint}")
        if stack.settings.api_keys_file is None:
            print("\nauthentication is OFF: the gateway listens on 127.0.0.1 only "
                  "(set VIZSEARCH_API_KEYS_FILE to require API keys)")
        else:
            print(f"\nauthentication is ON: API keys from {stack.settings.api_keys_file}")
        return 0
    if args.command == "down":
        stack.down()
        return 0
    if args.command == "smoke":
        return smoke(stack)
    print(f"{'component':10} {'pid':>8}  {'state':10} endpoints")
    for status in stack.status():
        print(f"{status.name:10} {status.pid or '-':>8}  {status.state:10} {', '.join(status.endpoints.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
