// A real sandprocd per test, in a temp dir: ipc:// for nothing in particular,
// ws:// on ephemeral loopback ports for this client (ctest sets SANDPROCD).
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), "sandproc-ts-"));
  const data = join(dir, "data");
  const child = spawn(process.env.SANDPROCD, [
    "--listen", `ipc://${dir}/req.sock`, "--listen", "ws://127.0.0.1:0/rpc",
    "--events", `ipc://${dir}/events.sock`, "--events", "ws://127.0.0.1:0/events",
    "--data", data,
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
  const token = readFileSync(join(data, "admin.key"), "utf8").split("\n")[0].trim();
  return {
    dir, data, token, url: m[1], events: m[3],
    async stop() {
      if (child.exitCode === null) {
        const done = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await done;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
