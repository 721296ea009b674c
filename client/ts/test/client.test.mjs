// The generated TypeScript client against a real server over nng's ws://:
// every RPC, errors, follow, a TTY round trip, Run with stdin.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  connect, createClients, SandprocError, options, processes as P, sandboxes as S, envelope,
} from "../dist/index.js";
import { freePort, startServer } from "./server.mjs";

const dec = new TextDecoder();
const enc = new TextEncoder();
let srv;
let c;

before(async () => {
  srv = await startServer();
  c = connect({ url: srv.url, events: srv.events, token: srv.token });
});
after(async () => {
  c?.close();
  await srv?.stop();
});

// Every RPC the .proto files declare, from protoc-gen-es's own descriptors.
async function everyMethod() {
  const files = await Promise.all(["system", "processes", "sandboxes", "keys", "ports"].map(
    (f) => import(`../dist/gen/sandproc/v1/${f}_pb.js`)));
  const out = new Set();
  for (const mod of files) {
    for (const v of Object.values(mod)) {
      if (v?.kind === "service") {
        v.methods.forEach((m) => out.add(`${v.typeName}/${m.name}`));
      }
    }
  }
  return out;
}

test("every RPC against a real server", async () => {
  const ok = new Set();
  const rec = { unary: async (method, ...rest) => { const r = await c.transport.unary(method, ...rest); ok.add(method); return r; } };
  const { system, processes, sandboxes, keys, ports } = createClients(rec);

  assert.ok((await system.health()).version);
  const run = await processes.run({ argv: ["sh", "-c", "echo out; echo err >&2; exit 3"] });
  assert.deepEqual([run.exitCode, dec.decode(run.stdout), dec.decode(run.stderr)], [3, "out\n", "err\n"]);

  const p = await processes.start({ argv: ["sh", "-c", "read x; echo got $x; sleep 60"], name: "ts" });
  assert.match(p.id, /^proc_[0-9a-f]{24}$/);
  assert.equal((await processes.get({ id: p.id })).name, "ts");
  assert.ok((await processes.list({ state: P.State.RUNNING })).processes.some((q) => q.id === p.id));
  assert.equal((await processes.sendInput({ id: p.id, data: enc.encode("hello\n") })).bytesWritten, 6n);
  const got = await processes.waitFor({ id: p.id, log: "^got hello$", fromStart: true, timeoutMs: 10000 });
  assert.deepEqual([got.condition, got.line], ["log", "got hello"]);
  const logs = await processes.logs({ id: p.id });
  assert.match(logs.entries.map((e) => dec.decode(e.data)).join(""), /got hello/);
  await processes.signal({ id: p.id, signal: "TERM" });
  const done = await processes.wait({ id: p.id, timeoutMs: 10000 });
  assert.deepEqual([done.state, done.signal], [P.State.KILLED, 15]);
  await processes.delete({ id: p.id });

  const t = await processes.start({ argv: ["sleep", "60"], tty: true, cols: 40, rows: 10 });
  await processes.resize({ id: t.id, cols: 50, rows: 12 });
  const screen = await processes.screen({ id: t.id });
  assert.deepEqual([screen.cols, screen.rows, screen.lines.length], [50, 12, 12]);
  assert.equal((await processes.stop({ id: t.id, graceMs: 100, waitMs: 10000 })).state, P.State.KILLED);
  const k = await processes.start({ argv: ["sleep", "60"] });
  assert.equal((await processes.kill({ id: k.id, waitMs: 10000 })).signal, 9);

  const cfg = await processes.getConfig();
  const set = await processes.setConfig({ maxOutputBytes: cfg.maxOutputBytes + 1n });
  assert.equal(set.maxOutputBytes, cfg.maxOutputBytes + 1n);

  const key = await keys.createKey({ name: "viewer", role: options.Role.VIEWER });
  assert.ok(key.secret && (await keys.listKeys()).keys.some((x) => x.id === key.id));
  await keys.revokeKey({ id: key.id });
  assert.ok(!(await keys.listKeys()).keys.some((x) => x.id === key.id));

  // A host process listening on loopback: found under "default", exposed by hand.
  const l = await processes.start({ argv: ["python3", "-u", "-c",
    "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print(s.getsockname()[1], flush=True); input()"] });
  const port = Number((await processes.waitFor({ id: l.id, log: "^[0-9]+$", fromStart: true, timeoutMs: 10000 })).line);
  assert.equal((await processes.waitFor({ id: l.id, port, timeoutMs: 10000 })).condition, "port");
  assert.ok((await ports.list({ sandboxId: "default" })).ports.some((x) => x.port === port));
  assert.match((await ports.expose({ sandboxId: "default", port })).exposedUrl, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.equal((await ports.unexpose({ sandboxId: "default", port })).exposedUrl, "");
  await processes.kill({ id: l.id, waitMs: 10000 });

  const box = await sandboxes.create({ name: "ts", network: "none" });
  assert.match(box.id, /^sbx_/);
  assert.ok((await sandboxes.waitReady({ id: box.id, timeoutS: 60 })).ready);
  assert.ok((await sandboxes.readiness({ id: box.id })).ready);
  assert.equal((await sandboxes.get({ id: box.id })).state, S.SandboxState.READY);
  assert.ok((await sandboxes.list()).sandboxes.some((b) => b.id === box.id));
  assert.equal(dec.decode((await processes.run({ argv: ["pwd"], sandboxId: box.id })).stdout), "/workspace\n");
  await sandboxes.delete({ id: box.id, graceMs: 100 });

  const all = await everyMethod();
  assert.deepEqual([...all].filter((m) => !ok.has(m)), []);
  assert.equal(all.size, ok.size);
});

describe("errors", () => {
  test("carry the gRPC name and the server's message", async () => {
    await assert.rejects(c.processes.get({ id: "proc_000000000000000000000000" }), (e) =>
      e instanceof SandprocError && e.code === "NOT_FOUND" && e.status === 5 &&
      e.rawMessage.includes("proc_000000000000000000000000"));
    await assert.rejects(c.processes.start({ argv: [] }), { code: "INVALID_ARGUMENT" });
    await assert.rejects(c.processes.start({ argv: ["/no/such/program"] }), { code: "NOT_FOUND" });
  });

  test("a wrong key is UNAUTHENTICATED", async () => {
    const bad = connect({ url: srv.url, events: srv.events, token: "sk_wrong" });
    await assert.rejects(bad.processes.list(), { code: "UNAUTHENTICATED" });
    bad.close();
  });

  test("a call past its timeout is DEADLINE_EXCEEDED, and the client goes on", async () => {
    const p = await c.processes.start({ argv: ["sleep", "60"] });
    await assert.rejects(c.processes.wait({ id: p.id }, { timeoutMs: 200 }), { code: "DEADLINE_EXCEEDED" });
    assert.equal((await c.processes.kill({ id: p.id, waitMs: 10000 })).signal, 9);
  });

  test("an unreachable server is UNAVAILABLE", async () => {
    const nowhere = connect({ url: "ws://127.0.0.1:1/rpc", token: "x" });
    await assert.rejects(nowhere.system.health(), { code: "UNAVAILABLE" });
    nowhere.close();
  });

  test("an aborted call is CANCELLED", async () => {
    const p = await c.processes.start({ argv: ["sleep", "60"] });
    const ac = new AbortController();
    const waiting = c.processes.wait({ id: p.id }, { signal: ac.signal });
    ac.abort();
    await assert.rejects(waiting, { code: "CANCELLED" });
    await c.processes.kill({ id: p.id, waitMs: 10000 });
  });
});

for (const feed of [true, false]) {
  test(`follow of a fast writer has no gap or repeat (${feed ? "feed" : "long polls"})`, async () => {
    const n = 20000;
    const p = await c.processes.start({ argv: ["sh", "-c", `i=0; while [ $i -lt ${n} ]; do echo "line $i"; i=$((i+1)); done`] });
    const seqs = [];
    let text = "";
    for await (const e of c.processes.follow(p.id, feed ? {} : { events: "none" })) {
      seqs.push(e.sequence);
      text += dec.decode(e.data);
    }
    for (let i = 1; i < seqs.length; i++) {
      assert.ok(seqs[i] > seqs[i - 1], "out of order or repeated");
    }
    assert.equal(text, Array.from({ length: n }, (_, i) => `line ${i}\n`).join(""));
  });
}

test("follow of one stream, and of output written later", async () => {
  const p = await c.processes.start({ argv: ["sh", "-c", "echo a; echo b >&2; read x; echo c; echo d >&2"] });
  const it = c.processes.follow(p.id, { stream: P.Stream.STDERR });
  assert.equal(dec.decode((await it.next()).value.data), "b\n");
  await c.processes.sendInput({ id: p.id, data: enc.encode("\n") });
  const rest = [];
  for await (const e of it) rest.push(dec.decode(e.data));
  assert.deepEqual(rest, ["d\n"]);
});

test("a TTY round trip", async () => {
  const p = await c.processes.start({
    argv: ["sh", "-c", "stty -echo; printf 'name? '; read x; printf 'hi %s\\n' \"$x\""], tty: true, cols: 80, rows: 24,
  });
  let got = "";
  for await (const e of c.processes.follow(p.id)) {
    assert.equal(e.stream, P.Stream.PTY);
    got += dec.decode(e.data);
    if (got.endsWith("name? ")) {
      await c.processes.sendInput({ id: p.id, data: enc.encode("sandproc\r") });
    }
  }
  assert.ok(got.replaceAll("\r\n", "\n").endsWith("hi sandproc\n"), got);
  assert.ok((await c.processes.screen({ id: p.id })).lines[0].startsWith("name? hi sandproc"));
});

test("Run with stdin, byte-exact", async () => {
  const blob = new Uint8Array(64 * 1024).map((_, i) => i & 255);
  const r = await c.processes.run({ argv: ["cat"], stdin: blob });
  assert.equal(r.exitCode, 0);
  assert.deepEqual(r.stdout, blob);
});

test("calls in flight together on one connection each get their own reply", async () => {
  const outs = await Promise.all(Array.from({ length: 16 }, (_, i) => c.processes.run({ argv: ["echo", String(i)] })));
  assert.deepEqual(outs.map((r) => dec.decode(r.stdout)), Array.from({ length: 16 }, (_, i) => `${i}\n`));
});

test("a call waiting across a server restart is resent on the new connection and answered", async () => {
  const s = await startServer({ rpc: await freePort(), events: await freePort() });
  const cc = connect({ url: s.url, events: s.events, token: s.token });
  try {
    const p = await cc.processes.start({ argv: ["sh", "-c", "read x; exit 4"] });
    const waiting = cc.processes.wait({ id: p.id }, { timeoutMs: 60000 });
    while ((await cc.system.health()).parkedCalls === 0) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await s.crash(); // the process goes on under its holder
    await s.restart();
    await cc.processes.sendInput({ id: p.id, data: enc.encode("\n") });
    const rec = await waiting;
    assert.deepEqual([rec.exitCode, rec.state], [4, P.State.EXITED]);
  } finally {
    cc.close();
    await s.stop();
  }
});

test("a browser page of an origin not allowed is refused; an allowed one is served", async () => {
  const { default: WebSocket } = await import("ws");
  const { create, toBinary, fromBinary } = await import("@bufbuild/protobuf");
  const { HealthRequestSchema, HealthReplySchema } = await import("../dist/gen/sandproc/v1/system_pb.js");
  // Health over a raw SP/WebSocket connection sent with an Origin header, as a browser does.
  const health = (url, token, origin) => new Promise((resolve) => {
    const ws = new WebSocket(url, ["rep.sp.nanomsg.org"], { origin });
    ws.binaryType = "arraybuffer";
    ws.on("error", () => {});
    ws.on("close", () => resolve("closed"));
    ws.on("open", () => {
      const env = toBinary(envelope.RequestSchema, create(envelope.RequestSchema, {
        method: "sandproc.v1.System/Health", requestId: 1n, token,
        body: toBinary(HealthRequestSchema, create(HealthRequestSchema, {})),
      }));
      const frame = new Uint8Array(4 + env.length);
      new DataView(frame.buffer).setUint32(0, 0x80000001);
      frame.set(env, 4);
      ws.send(frame);
    });
    ws.on("message", (data) => {
      const reply = fromBinary(envelope.ReplySchema, new Uint8Array(data).subarray(4));
      resolve(fromBinary(HealthReplySchema, reply.body).version);
      ws.close();
    });
  });
  assert.equal(await health(srv.url, srv.token, "http://evil.example"), "closed");
  const s = await startServer(undefined, ["--ws-origin", "http://inspector.example:8080"]);
  try {
    assert.equal(await health(s.url, s.token, "http://evil.example"), "closed");
    assert.ok(/^\d+\.\d+\.\d+/.test(await health(s.url, s.token, "http://inspector.example:8080")));
  } finally {
    await s.stop();
  }
});

test("the envelope is the one the .proto defines", () => {
  assert.equal(envelope.RequestSchema.typeName, "sandproc.v1.Request");
});
