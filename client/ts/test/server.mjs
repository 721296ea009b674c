// A real sandprocd per test, in a temp dir: ipc:// for nothing in particular,
// ws:// on loopback ports for this client (ctest sets SANDPROCD).
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** A port free right now (for a server that must come back on the same one). */
export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function launch(dir, data, rpcPort, eventsPort, extra) {
  const child = spawn(process.env.SANDPROCD, [
    "--listen", `ipc://${dir}/req.sock`, "--listen", `ws://127.0.0.1:${rpcPort}/rpc`,
    "--events", `ipc://${dir}/events.sock`, "--events", `ws://127.0.0.1:${eventsPort}/events`,
    "--data", data, "--on-exit", "stop", ...extra,
  ], { stdio: ["ignore", "pipe", "inherit"] });
  const line = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.once("line", resolve);
    child.once("exit", (code) => reject(new Error(`sandprocd exited with ${code}`)));
  });
  const m = /listen=\S*?(ws:\/\/\S+?)(,|\s).*events=\S*?(ws:\/\/\S+?)(,|\s)/.exec(line);
  if (!m) {
    child.kill("SIGKILL");
    throw new Error(`sandprocd did not start: ${line}`);
  }
  return { child, url: m[1], events: m[3] };
}

/** ports: fixed ws ports (so a restart comes back on them), else ephemeral ones; extra: more flags. */
export async function startServer(ports = { rpc: 0, events: 0 }, extra = []) {
  const dir = mkdtempSync(join(tmpdir(), "sandproc-ts-"));
  const data = join(dir, "data");
  let run = await launch(dir, data, ports.rpc, ports.events, extra);
  const token = readFileSync(join(data, "admin.key"), "utf8").split("\n")[0].trim();
  const exited = (child) => (child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve() : new Promise((r) => child.once("exit", r)));
  return {
    dir, data, token, url: run.url, events: run.events,
    /** SIGKILL: held processes go on, and the next start takes them back. */
    async crash() {
      const done = exited(run.child);
      run.child.kill("SIGKILL");
      await done;
    },
    async restart() {
      run = await launch(dir, data, ports.rpc, ports.events, extra);
    },
    async stop() {
      const done = exited(run.child);
      run.child.kill("SIGTERM");
      await done;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
