// Initiates the replica set rs0 of deploy/compose.yaml once, then waits for a primary.
// Run by the `mongo-init` service: mongosh --host mongo1:27017 --quiet /init-replica.js
// Idempotent: on a set that is already initiated it only waits for the primary.
const config = {
  _id: "rs0",
  members: [
    { _id: 0, host: "mongo1:27017", priority: 2 },
    { _id: 1, host: "mongo2:27017", priority: 1 },
    { _id: 2, host: "mongo3:27017", priority: 1 },
  ],
};

function status() {
  try {
    return db.adminCommand({ replSetGetStatus: 1 });
  } catch (e) {
    return { ok: 0, code: e.code, codeName: e.codeName, errmsg: e.message };
  }
}

let s = status();
if (s.ok !== 1 && (s.code === 94 || s.codeName === "NotYetInitialized")) {
  print("rs0: initiating with " + config.members.map((m) => m.host).join(", "));
  const r = db.adminCommand({ replSetInitiate: config });
  if (r.ok !== 1 && r.codeName !== "AlreadyInitialized") {
    print("rs0: replSetInitiate failed: " + JSON.stringify(r));
    quit(1);
  }
} else if (s.ok === 1) {
  print("rs0: already initiated");
} else {
  print("rs0: unexpected status: " + JSON.stringify(s));
  quit(1);
}

// Elections take a few seconds; the API instances need a primary (writes use w: majority).
const deadline = Date.now() + 120 * 1000;
for (;;) {
  s = status();
  const primary = s.ok === 1 ? s.members.find((m) => m.stateStr === "PRIMARY") : undefined;
  const healthy = s.ok === 1 ? s.members.filter((m) => m.health === 1).length : 0;
  if (primary && healthy === config.members.length) {
    print("rs0: primary " + primary.name + ", " + healthy + " members healthy");
    quit(0);
  }
  if (Date.now() > deadline) {
    print("rs0: no primary with every member healthy after 120 s: " + JSON.stringify(s));
    quit(1);
  }
  sleep(1000);
}
