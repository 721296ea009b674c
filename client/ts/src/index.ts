/*
 * sandproc: the TypeScript client of sandprocd, for Node and browsers.
 *
 *   import { connect } from "sandproc";
 *   const c = connect({ url: "ws://127.0.0.1:7302/rpc", events: "ws://127.0.0.1:7303/events", token });
 *   const p = await c.processes.start({ argv: ["sh", "-c", "echo hi"] });
 *   for await (const e of c.processes.follow(p.id)) process.stdout.write(e.data);
 *   await c.processes.wait({ id: p.id, timeoutMs: 5000 });
 *   c.close();
 *
 * The clients are generated from the .proto files (protoc-gen-sprpc
 * lang=ts), the messages by protoc-gen-es; calls travel over nng's ws://
 * transport (src/transport.ts).
 */
import { createClients } from "./gen/sandproc/v1/clients_sprpc.js";
import type { LogEntry } from "./gen/sandproc/v1/processes_pb.js";
import { ProcessesClient } from "./gen/sandproc/v1/processes_sprpc.js";
import { follow, type FollowOptions } from "./follow.js";
import { WsTransport } from "./transport.js";

export { CODES, SandprocError, type Code } from "./errors.js";
export type { CallOptions, Transport } from "./transport.js";
export { WsTransport } from "./transport.js";
export type { FollowOptions } from "./follow.js";
export * from "./gen/sandproc/v1/clients_sprpc.js";
export * as envelope from "./gen/sandproc/v1/envelope_pb.js";
export * as events from "./gen/sandproc/v1/events_pb.js";
export * as keys from "./gen/sandproc/v1/keys_pb.js";
export * as options from "./gen/sandproc/v1/options_pb.js";
export * as ports from "./gen/sandproc/v1/ports_pb.js";
export * as processes from "./gen/sandproc/v1/processes_pb.js";
export * as sandboxes from "./gen/sandproc/v1/sandboxes_pb.js";
export * as system from "./gen/sandproc/v1/system_pb.js";

export const DEFAULT_URL = "ws://127.0.0.1:7302/rpc";
export const DEFAULT_EVENTS_URL = "ws://127.0.0.1:7303/events";

export interface ConnectOptions {
  /** The server's ws:// (or wss://) --listen URL; default $SANDPROC_WS_URL or DEFAULT_URL. */
  url?: string;
  /** Its ws:// --events URL for follow ("none": Logs long polls); default $SANDPROC_WS_EVENTS_URL or DEFAULT_EVENTS_URL. */
  events?: string;
  /** The key; in Node, default $SANDPROC_TOKEN, else admin.key in $SANDPROC_DATA (./.sandproc). */
  token?: string;
  /** Default milliseconds a call may take (default: no limit). */
  timeoutMs?: number;
}

/** The Processes client, with follow. */
export class Processes extends ProcessesClient {
  constructor(transport: WsTransport, private readonly events: string) {
    super(transport);
  }

  /** Process id's output, every entry once, in order, until it has ended and all of it came. */
  follow(id: string, opts?: FollowOptions): AsyncGenerator<LogEntry, void, undefined> {
    return follow(this, id, this.events, opts);
  }
}

type NodeEnv = { env: Record<string, string | undefined> };
const nodeProcess = (globalThis as { process?: NodeEnv }).process;

function env(name: string): string | undefined {
  const v = nodeProcess?.env[name];
  return v ? v : undefined;
}

async function defaultToken(): Promise<string> {
  const tok = env("SANDPROC_TOKEN");
  if (tok || !nodeProcess) {
    return tok ?? "";
  }
  try {
    const fs = await import("node:fs");
    const path = `${env("SANDPROC_DATA") ?? "./.sandproc"}/admin.key`;
    return fs.readFileSync(path, "utf8").split(/\r?\n/)[0].trim();
  } catch {
    return "";
  }
}

export type Client = Omit<ReturnType<typeof createClients>, "processes"> & {
  processes: Processes;
  transport: WsTransport;
  /** Closes the connection (Node keeps running while it is open). */
  close(): void;
};

/** A client of every service on one connection, made when the first call needs it. */
export function connect(opts: ConnectOptions = {}): Client {
  const url = opts.url ?? env("SANDPROC_WS_URL") ?? DEFAULT_URL;
  const events = opts.events ?? env("SANDPROC_WS_EVENTS_URL") ?? DEFAULT_EVENTS_URL;
  let token: Promise<string> | undefined;
  const transport = new WsTransport(url, () => (token ??= opts.token !== undefined ? Promise.resolve(opts.token) : defaultToken()), opts.timeoutMs);
  return {
    ...createClients(transport),
    processes: new Processes(transport, events),
    transport,
    close: () => transport.close(),
  };
}
