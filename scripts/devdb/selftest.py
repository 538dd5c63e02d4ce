"""Self-test of the dev database launcher (scripts/devdb/mongoeco_server.py) against a running server.

Usage: selftest.py [URI]   (default: $MONGODB_URI, else mongodb://127.0.0.1:27017)

Starts nothing. Checks the launcher's wire patches with pymongo and with raw OP_MSG commands (the
raw ones carry an explicit lsid/txnNumber, exactly as a driver's pooled session would, so the
session-reuse cases do not depend on pymongo's pool order):

  (a) after a commit fails with a write conflict, later commands on that session are not lost
      (a plain one, a retryable write with a new txnNumber, and pymongo reusing the pooled lsid);
      a retried commit of the failed transaction is answered NoSuchTransaction (251);
  (b) a new transaction on that session starts clean and commits;
  (c) a new transaction supersedes an abandoned one on the same session (the abandoned writes are
      discarded, not committed along with the new ones);
  (d) the older wire patches: Int64 cursor ids; Int64 limit/skip/batchSize accepted; negative
      limit = single batch; error replies carry a numeric `code`.

Writes only to its own database (dropped at the end). Exit 0 on success, 1 with the failed check,
2 if the server cannot be reached.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import uuid

import bson
from bson import Binary, Int64
from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

DB = "dhara_devdb_selftest"
OP_MSG = 2013


class CheckFailed(Exception):
    pass


FAILURES: list[str] = []


def check(condition: bool, message: str) -> None:
    """A check the rest of its scenario depends on: stop the scenario if it fails."""
    if not condition:
        raise CheckFailed(message)


def expect(condition: bool, message: str) -> None:
    """An independent check: record the failure and go on, so every broken patch is reported."""
    if not condition:
        FAILURES.append(message)


def new_lsid() -> dict:
    return {"id": Binary(uuid.uuid4().bytes, 4)}


class Wire:
    """One raw connection sending OP_MSG commands verbatim (explicit lsid / txnNumber)."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=5)
        self.request_id = 0

    def close(self) -> None:
        self.sock.close()

    def _read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("server closed the connection")
            data += chunk
        return data

    def command(self, document: dict) -> dict:
        document = {**document, "$db": DB}
        payload = struct.pack("<I", 0) + b"\x00" + bson.encode(document)
        self.request_id += 1
        self.sock.sendall(struct.pack("<iiii", 16 + len(payload), self.request_id, 0, OP_MSG) + payload)
        length, _, _, opcode = struct.unpack("<iiii", self._read(16))
        body = self._read(length - 16)
        check(opcode == OP_MSG and body[4] == 0, f"unexpected reply framing (opcode {opcode})")
        (size,) = struct.unpack("<i", body[5:9])
        return bson.decode(body[5 : 5 + size])

    def ok(self, document: dict, what: str) -> dict:
        reply = self.command(document)
        check(reply.get("ok") == 1 and not reply.get("writeErrors"), f"{what}: expected success, got {reply}")
        return reply


def txn(lsid: dict, number: int, command: dict, start: bool = False) -> dict:
    """A command inside transaction `number` of session `lsid`, as a driver sends it."""
    body = {**command, "lsid": lsid, "txnNumber": Int64(number), "autocommit": False}
    if start:
        body["startTransaction"] = True
    return body


def commit(lsid: dict, number: int) -> dict:
    return {"commitTransaction": 1, "lsid": lsid, "txnNumber": Int64(number), "autocommit": False}


def ids(client: MongoClient, collection: str) -> set:
    return {d["_id"] for d in client[DB][collection].find({}, {"_id": 1})}


def write_conflict(wire: Wire, coll: str) -> dict:
    """Two sessions update in transactions; the second commit fails. Returns the failed lsid."""
    first, second = new_lsid(), new_lsid()
    wire.ok(txn(first, 1, {"update": coll, "updates": [{"q": {"_id": "a"}, "u": {"$set": {"v": 1}}}]}, start=True), "txn A update")
    wire.ok(txn(second, 1, {"update": coll, "updates": [{"q": {"_id": "b"}, "u": {"$set": {"v": 2}}}]}, start=True), "txn B update")
    wire.ok(commit(first, 1), "commit of txn A")
    reply = wire.command(commit(second, 1))
    check(reply.get("ok") == 0, f"setup: expected txn B's commit to fail with a write conflict, got {reply}")
    check(reply.get("code") == 112 and "TransientTransactionError" in reply.get("errorLabels", []),
          f"failed commit should be WriteConflict (112) labelled TransientTransactionError, got {reply}")
    return second


def lost_write_checks(wire: Wire, client: MongoClient) -> None:
    """(a) and (b): the session whose commit failed is usable afterwards."""
    coll = "lost_write"
    client[DB][coll].insert_many([{"_id": "a"}, {"_id": "b"}])
    lsid = write_conflict(wire, coll)

    reply = wire.command(commit(lsid, 1))
    expect(reply.get("ok") == 0 and reply.get("code") == 251,
          f"(a) retrying the failed commit must answer NoSuchTransaction (251), not {reply}")

    wire.ok({"insert": coll, "documents": [{"_id": "plain"}], "lsid": lsid}, "(a) plain insert on the session")
    wire.ok({"insert": coll, "documents": [{"_id": "retryable"}], "lsid": lsid, "txnNumber": Int64(2)},
            "(a) retryable insert on the session")
    seen = ids(client, coll)
    expect({"plain", "retryable"} <= seen,
          f"(a) LOST WRITE: inserts on the session whose commit failed are acknowledged but not visible "
          f"(visible: {sorted(seen)}); the failed transaction is still open on that lsid")

    wire.ok(txn(lsid, 3, {"insert": coll, "documents": [{"_id": "next-txn"}]}, start=True), "(b) insert in a new transaction")
    reply = wire.command(commit(lsid, 3))
    expect(reply.get("ok") == 1, f"(b) a new transaction on the session after a failed commit must commit, got {reply}")
    expect("next-txn" in ids(client, coll), "(b) the new transaction's insert is not visible after its commit")


def pooled_session_check(_wire: Wire, client: MongoClient) -> bool:
    """(a) as an application sees it: pymongo hands the failed session's lsid to the next operation.

    Runs on its own client, so a transaction left open on one of its pooled lsids cannot leak into
    the reads of `client`, which verify the result as another connection would.
    """
    app = MongoClient(client.address[0], client.address[1], serverSelectionTimeoutMS=3000, socketTimeoutMS=5000)
    try:
        coll = app[DB]["pooled"]
        coll.insert_many([{"_id": "a"}, {"_id": "b"}])
        s1, s2 = app.start_session(), app.start_session()
        s1.start_transaction()
        s2.start_transaction()
        coll.update_one({"_id": "a"}, {"$set": {"v": 1}}, session=s1)
        coll.update_one({"_id": "b"}, {"$set": {"v": 2}}, session=s2)
        s1.commit_transaction()
        try:
            s2.commit_transaction()
            raise CheckFailed("setup: expected the second pymongo commit to fail with a write conflict")
        except OperationFailure as exc:
            check(exc.has_error_label("TransientTransactionError"), f"failed commit lacks TransientTransactionError: {exc}")
        failed_lsid = s2.session_id
        s1.end_session()
        s2.end_session()  # the pool is LIFO: the next session reuses this lsid
        with app.start_session() as s3:
            if s3.session_id != failed_lsid:
                return False
            # On a single server pymongo sends plain writes with the lsid and no txnNumber.
            coll.insert_one({"_id": "pooled"}, session=s3)
            expect("pooled" in ids(client, "pooled"),
                   "(a) LOST WRITE: pymongo insert on the pooled session whose commit failed is not visible")
            try:
                with s3.start_transaction():
                    coll.insert_one({"_id": "pooled-txn"}, session=s3)
            except OperationFailure as exc:
                FAILURES.append(f"(b) pymongo transaction on the pooled session after a failed commit failed: {exc}")
            expect("pooled-txn" in ids(client, "pooled"),
                   "(b) pymongo transaction on the pooled session after a failed commit is not visible")
        return True
    finally:
        app.close()


def superseded_transaction_check(wire: Wire, client: MongoClient) -> None:
    """(c) a higher txnNumber replaces an abandoned transaction instead of continuing it."""
    coll = "superseded"
    lsid = new_lsid()
    wire.ok(txn(lsid, 1, {"insert": coll, "documents": [{"_id": "abandoned"}]}, start=True), "(c) abandoned txn insert")
    wire.ok(txn(lsid, 2, {"insert": coll, "documents": [{"_id": "fresh"}]}, start=True), "(c) new txn insert")
    wire.ok(commit(lsid, 2), "(c) commit of the new transaction")
    seen = ids(client, coll)
    expect("fresh" in seen, f"(c) the new transaction's insert is not visible (visible: {sorted(seen)})")
    expect("abandoned" not in seen,
          "(c) the abandoned transaction's insert was committed by the next transaction on the session")


def wire_patch_checks(wire: Wire, client: MongoClient) -> None:
    """(d) the older patches: cursor ids, Int64 arguments, negative limit, error codes."""
    coll = "cursors"
    client[DB][coll].insert_many([{"_id": i} for i in range(5)])

    reply = wire.ok({"find": coll, "sort": {"_id": 1}, "batchSize": Int64(2)}, "(d) find with Int64 batchSize")
    cursor_id = reply["cursor"]["id"]
    check(isinstance(cursor_id, Int64) and cursor_id != 0, f"(d) cursor id must be a non-zero Int64, got {cursor_id!r}")
    reply = wire.ok({"getMore": cursor_id, "collection": coll, "batchSize": Int64(2)}, "(d) getMore with Int64 arguments")
    check([d["_id"] for d in reply["cursor"]["nextBatch"]] == [2, 3], f"(d) getMore returned {reply['cursor']}")
    check(isinstance(reply["cursor"]["id"], Int64), f"(d) getMore cursor id must be Int64, got {reply['cursor']['id']!r}")
    wire.ok({"killCursors": coll, "cursors": [reply["cursor"]["id"]]}, "(d) killCursors with an Int64 id")

    reply = wire.ok({"find": coll, "sort": {"_id": 1}, "skip": Int64(1), "limit": Int64(2)}, "(d) find with Int64 skip/limit")
    check([d["_id"] for d in reply["cursor"]["firstBatch"]] == [1, 2], f"(d) Int64 skip/limit gave {reply['cursor']}")

    reply = wire.ok({"find": coll, "sort": {"_id": 1}, "limit": Int64(-2)}, "(d) find with negative limit")
    batch = [d["_id"] for d in reply["cursor"]["firstBatch"]]
    check(batch == [0, 1] and reply["cursor"]["id"] == 0, f"(d) negative limit must be one batch of 2 and no cursor, got {reply['cursor']}")

    reply = wire.command({"insert": coll, "documents": [{"_id": 0}]})
    errors = reply.get("writeErrors") or [{}]
    check(errors[0].get("code") == 11000, f"(d) duplicate key write error must carry code 11000, got {reply}")
    reply = wire.command({"create": coll})
    check(reply.get("ok") == 0 and isinstance(reply.get("code"), int) and not isinstance(reply.get("code"), bool),
          f"(d) an error reply must carry a numeric code, got {reply}")


def main() -> int:
    uri = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017")
    client = MongoClient(uri, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000, socketTimeoutMS=5000)
    try:
        client.admin.command("ping")
        host, port = client.address
        wire = Wire(host, port)
    except (PyMongoError, OSError) as exc:
        print(f"devdb selftest: cannot reach {uri}: {exc}", file=sys.stderr)
        return 2
    pooled = True
    try:
        client.drop_database(DB)
        for scenario in (lost_write_checks, pooled_session_check, superseded_transaction_check, wire_patch_checks):
            try:
                if scenario(wire, client) is False:
                    pooled = False
            except CheckFailed as exc:
                FAILURES.append(str(exc))
            except (PyMongoError, OSError, KeyError, TypeError) as exc:
                FAILURES.append(f"{scenario.__name__}: unexpected {type(exc).__name__}: {exc}")
    finally:
        try:
            client.drop_database(DB)
        except PyMongoError as exc:
            print(f"devdb selftest: could not drop {DB}: {exc}", file=sys.stderr)
        wire.close()
        client.close()
    if FAILURES:
        print(f"devdb selftest FAILED against {uri}:", file=sys.stderr)
        for failure in FAILURES:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    note = "" if pooled else " (pymongo did not reuse the failed lsid; pooled-session check skipped)"
    print(f"devdb selftest: ok{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
