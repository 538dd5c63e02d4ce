"""Development MongoDB-compatible server: mongoeco's wire proxy, patched for the Rust driver.

mongoeco (in-memory engine) answers the MongoDB wire protocol, but four of its replies differ
from a genuine mongod in ways the Rust driver rejects, and it leaves a transaction whose commit
failed open on its session. This launcher patches exactly those:

1. cursor ids are sent as Int64 (the driver refuses an Int32 cursor id);
2. `limit`, `skip`, `batchSize`, `getMore`, `maxTimeMS` (and `killCursors` ids) arrive as Int64
   from the driver and are accepted as plain integers;
3. a negative find `limit` means "single batch of |limit|" (legacy semantics the driver uses);
4. every error reply carries a numeric `code`;
5. transactions end the way they do on a genuine server (see `install_session_patches`): a failed
   commitTransaction aborts the transaction, and a higher txnNumber on the session supersedes an
   abandoned one. mongoeco (4.11.0) otherwise keeps the dead transaction open on the lsid, and
   every later command on that pooled session runs inside it: acknowledged, never visible.

Nothing else is changed: the service must behave against a genuine replica set, so no test may
rely on anything this file does beyond making the wire format and transaction lifetime conform.
scripts/devdb/selftest.py checks all five against a running server (scripts/services.sh runs it
after starting one).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from mongoeco.core.bson_scalars import BsonInt64
from mongoeco.errors import OperationFailure
from mongoeco.wire import AsyncMongoEcoProxyServer
from mongoeco.wire import _executor_support, executor, sessions
from mongoeco.wire._session_identity import wire_session_key

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


# Patch 5 bookkeeping, kept as plain attributes on mongoeco's ClientSession (a non-slotted dataclass)
# so it lives and dies with the session: the txnNumber of the open transaction, and the txnNumber
# whose commit failed (and was therefore aborted).
_TXN_ATTR = "_dhara_txn_number"
_ABORTED_ATTR = "_dhara_aborted_txn_number"


def _warn(message: str) -> None:
    print(f"mongoeco_server: {message}", file=sys.stderr, flush=True)


def _end_transaction(session, why: str) -> None:
    """Abort the session's open transaction; never raises (a launcher patch must not crash a reply).

    ClientSession.abort_transaction runs the engines' abort hooks (the memory engine drops the
    transaction's MVCC snapshot) and clears the session's transaction state. If a hook fails, the
    state is cleared anyway: the engine only routes a command into the snapshot while the session
    says it is in a transaction, and a stale snapshot is replaced when the next one starts.
    """
    try:
        if session.active and session.transaction_active:
            session.abort_transaction()
    except Exception as exc:  # noqa: BLE001 - see docstring
        _warn(f"abort after {why} failed ({exc!r}); discarding the transaction state")
        try:
            session._state.transaction.active = False
            session._state.transaction.options = None
        except Exception as inner:  # noqa: BLE001
            _warn(f"could not discard the transaction state: {inner!r}")


def install_session_patches() -> None:
    """Patch 5: end transactions as a genuine server does.

    Root cause in mongoeco 4.11.0: `ClientSession.commit_transaction` clears its "in transaction"
    flag only after the commit hooks succeed, so when the memory engine's commit hook raises
    "Write conflict during transaction commit" the transaction stays open, with its stale snapshot,
    on the wire session for that lsid (`WireSessionStore`). Nothing ever ends it: drivers do not
    send abortTransaction after a commit attempt, a plain command on the pooled lsid runs inside
    it (acknowledged, written to the snapshot, never visible), and `startTransaction` on a session
    "already in a transaction" silently continues the old one (and fails its commit again).

    A genuine server aborts a transaction whose commit fails, answers a retried commit of it with
    NoSuchTransaction (251, TransientTransactionError), and aborts an open transaction when a
    higher txnNumber arrives on the session.
    """
    store_class = sessions.WireSessionStore
    original_resolve = store_class.resolve_for_command
    original_commit = store_class.commit_transaction

    def resolve_for_command(self, client, body, *, capability):
        txn = _plain(body.get("txnNumber"))
        try:
            lsid = body.get("lsid")
            if capability.binds_session and lsid is not None and isinstance(txn, int):
                context = self._sessions.get(wire_session_key(lsid))
                session = None if context is None else context.session
                if session is not None and session.active and session.transaction_active:
                    open_txn = getattr(session, _TXN_ATTR, None)
                    if isinstance(open_txn, int) and txn > open_txn:
                        _end_transaction(session, f"txnNumber {txn} superseded {open_txn}")
        except Exception as exc:  # noqa: BLE001 - fall back to mongoeco's own behaviour
            _warn(f"transaction supersede check failed: {exc!r}")
        session = original_resolve(self, client, body, capability=capability)
        if session is not None and body.get("startTransaction") is True and session.transaction_active:
            setattr(session, _TXN_ATTR, txn)
        return session

    def commit_transaction(self, body):
        session = self._require_session(body)
        txn = _plain(body.get("txnNumber"))
        if txn is not None and not session.transaction_active and getattr(session, _ABORTED_ATTR, None) == txn:
            raise OperationFailure(
                f"Transaction {txn} has been aborted (its commit failed)",
                code=251,
                details={"codeName": "NoSuchTransaction"},
                error_labels=("TransientTransactionError",),
            )
        try:
            return original_commit(self, body)
        except Exception:
            _end_transaction(session, "a failed commitTransaction")
            setattr(session, _ABORTED_ATTR, txn)
            raise

    store_class.resolve_for_command = resolve_for_command
    store_class.commit_transaction = commit_transaction


async def serve(host: str, port: int) -> None:
    install_patches()
    install_session_patches()
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
