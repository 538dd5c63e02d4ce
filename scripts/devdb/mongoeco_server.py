"""Development MongoDB-compatible server: mongoeco's wire proxy, patched for the Rust driver.

mongoeco (in-memory engine) answers the MongoDB wire protocol, but four of its replies differ
from a genuine mongod in ways the Rust driver rejects. This launcher patches exactly those:

1. cursor ids are sent as Int64 (the driver refuses an Int32 cursor id);
2. `limit`, `skip`, `batchSize`, `getMore`, `maxTimeMS` (and `killCursors` ids) arrive as Int64
   from the driver and are accepted as plain integers;
3. a negative find `limit` means "single batch of |limit|" (legacy semantics the driver uses);
4. every error reply carries a numeric `code`.

Nothing else is changed: the service must behave against a genuine replica set, so no test may
rely on anything this file does beyond making the wire format conform.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from mongoeco.core.bson_scalars import BsonInt64
from mongoeco.wire import AsyncMongoEcoProxyServer
from mongoeco.wire import _executor_support, executor

INT64_ARGS = ("limit", "skip", "batchSize", "getMore", "maxTimeMS", "maxAwaitTimeMS", "ntoreturn")

# Error codes of a genuine server, by the words mongoeco uses in codeName or errmsg (lower case).
KNOWN_CODES = (
    ("duplicate key", 11000, "DuplicateKey"),
    ("write conflict", 112, "WriteConflict"),
    ("writeconflict", 112, "WriteConflict"),
    ("already exists", 48, "NamespaceExists"),
    ("ns not found", 26, "NamespaceNotFound"),
    ("nosuchtransaction", 251, "NoSuchTransaction"),
)
UNKNOWN_ERROR = 8
# A genuine server labels these so drivers retry the whole transaction.
TRANSIENT_CODES = {112, 251}


def _plain(value):
    return value.value if isinstance(value, BsonInt64) else value


def normalize_command(body: dict) -> dict:
    """Patches 2 and 3: accept Int64 numeric arguments; negative find limit = single batch."""
    for key in INT64_ARGS:
        if key in body:
            body[key] = _plain(body[key])
    if isinstance(body.get("cursors"), list):
        body["cursors"] = [_plain(c) for c in body["cursors"]]
    if isinstance(body.get("cursor"), dict) and "batchSize" in body["cursor"]:
        body["cursor"]["batchSize"] = _plain(body["cursor"]["batchSize"])
    if "find" in body and isinstance(body.get("limit"), int) and body["limit"] < 0:
        body["limit"] = -body["limit"]
        body["singleBatch"] = True
    return body


def _with_code(document: dict) -> dict:
    """Patch 4: a numeric `code` (with the codeName and labels a genuine server would send)."""
    if "code" not in document or not isinstance(document.get("code"), int):
        text = f"{document.get('codeName', '')} {document.get('errmsg', '')}".lower()
        code, name = next(((c, n) for word, c, n in KNOWN_CODES if word in text), (UNKNOWN_ERROR, None))
        document["code"] = code
        if name and "codeName" not in document:
            document["codeName"] = name
        if code in TRANSIENT_CODES and "errorLabels" not in document and document.get("ok") in (0, 0.0):
            document["errorLabels"] = ["TransientTransactionError"]
    return document


def normalize_reply(result):
    """Patches 1 and 4: Int64 cursor ids; a numeric code on every error."""
    if not isinstance(result, dict):
        return result
    cursor = result.get("cursor")
    if isinstance(cursor, dict) and isinstance(cursor.get("id"), int):
        cursor["id"] = BsonInt64(cursor["id"])
    if result.get("ok") in (0, 0.0):
        _with_code(result)
    for key in ("writeErrors",):
        for item in result.get(key) or ():
            if isinstance(item, dict):
                _with_code(item)
    if isinstance(result.get("writeConcernError"), dict):
        _with_code(result["writeConcernError"])
    return result


def install_patches() -> None:
    original_build = executor.WireCommandExecutor._build_request_context
    original_execute = executor.WireCommandExecutor.execute_prepared
    original_error = _executor_support.build_error_document

    def build(self, body, **kwargs):
        return original_build(self, normalize_command(body), **kwargs)

    async def execute(self, context):
        return normalize_reply(await original_execute(self, context))

    def error_document(exc):
        return _with_code(original_error(exc))

    executor.WireCommandExecutor._build_request_context = build
    executor.WireCommandExecutor.execute_prepared = execute
    executor.WireCommandExecutor.error_document = staticmethod(error_document)


async def serve(host: str, port: int) -> None:
    install_patches()
    server = AsyncMongoEcoProxyServer(host=host, port=port)
    address = await server.start()
    print(f"mongoeco listening on {address.host}:{address.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017)
    args = parser.parse_args()
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        print("refusing to serve the development database beyond loopback", file=sys.stderr)
        return 2
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
