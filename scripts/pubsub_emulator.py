"""Starts the cloudbox Pub/Sub emulator's gRPC API and REST admin API on 127.0.0.1.

cloudbox 0.2.3 declares Python >= 3.14 because `cloudbox/core/store.py` annotates with
`list[str]` after defining a method named `list`; with `from __future__ import annotations` the
annotation is never evaluated, so the module is loaded that way here (the installed files are not
edited). Usage: python pubsub_emulator.py GRPC_PORT REST_PORT
"""

import asyncio
import importlib.util
import sys


def load_store_with_lazy_annotations() -> None:
    spec = importlib.util.find_spec("cloudbox.core.store")
    source = open(spec.origin, encoding="utf-8").read()
    module = importlib.util.module_from_spec(spec)
    sys.modules["cloudbox.core.store"] = module
    code = compile("from __future__ import annotations\n" + source, spec.origin, "exec")
    exec(code, module.__dict__)


async def main(grpc_port: int, rest_port: int) -> None:
    load_store_with_lazy_annotations()
    import uvicorn
    from cloudbox.services.pubsub.app import app
    from cloudbox.services.pubsub.grpc_server import create_server

    server = await create_server("127.0.0.1", grpc_port)
    await server.start()
    rest = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=rest_port, log_level="warning"))
    await asyncio.gather(server.wait_for_termination(), rest.serve())


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
