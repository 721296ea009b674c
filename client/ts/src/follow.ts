/*
 * Following a process's output: the same algorithm as the C library's
 * sp_follow. The feed (nng PUB over ws://) only says "something new
 * happened"; correctness comes from the log: subscribe first, read the
 * history with Logs, merge the feed by sequence and fill every gap (PUB
 * drops for slow subscribers) with Logs(afterSequence). A quiet feed is
 * covered by a Logs read every pollMs, so a missed end cannot hang.
 */
import { create, fromBinary } from "@bufbuild/protobuf";
import type { LogEntry } from "./gen/sandproc/v1/processes_pb.js";
import { LogEntrySchema, State, Stream } from "./gen/sandproc/v1/processes_pb.js";
import type { ProcessesClient } from "./gen/sandproc/v1/processes_sprpc.js";
import { ProcessEventSchema, TermFrameSchema } from "./gen/sandproc/v1/events_pb.js";
import { SandprocError } from "./errors.js";
import { openSocket, type Socket } from "./ws.js";

export interface FollowOptions {
  /** Only this stream (default: every stream). */
  stream?: Stream;
  /** Start after this sequence (default: from the first entry). */
  afterSequence?: bigint;
  /** How often to read the log while the feed is quiet (default 500 ms). */
  pollMs?: number;
  /** Override the client's events URL; "none" follows with Logs long polls. */
  events?: string;
}

const PAGE_BYTES = 4n * 1024n * 1024n;
const LONG_POLL_MS = 5000;

/** The feed's messages for one process, queued until read. */
class Feed {
  private queue: Uint8Array[] = [];
  private waiter?: (m: Uint8Array | null) => void;
  private error = "";
  sock?: Socket;

  static async open(url: string, topics: string[]): Promise<Feed> {
    const f = new Feed();
    const enc = new TextEncoder();
    const prefixes = topics.map((t) => enc.encode(t + "\0"));
    await new Promise<void>((resolve, reject) => {
      openSocket(url, "pub", {
        onopen: () => resolve(),
        onmessage: (m) => {
          // SUB filters locally, as nng's does: only this follow's topics.
          if (prefixes.some((p) => m.length >= p.length && p.every((b, i) => m[i] === b))) {
            f.push(m);
          }
        },
        onclose: (opened, reason) => {
          f.error = reason;
          if (!opened) {
            reject(new SandprocError("UNAVAILABLE", `event feed ${url}: ${reason}`));
          }
          f.push(null);
        },
      }).then((s) => (f.sock = s), reject);
    });
    return f;
  }

  private push(m: Uint8Array | null): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(m);
    } else if (m) {
      this.queue.push(m);
    }
  }

  /** The next message, or null after ms (or once the feed closed: then `closed` says why). */
  next(ms: number): Promise<Uint8Array | null> {
    const m = this.queue.shift();
    if (m || this.closed) {
      return Promise.resolve(m ?? null);
    }
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiter = undefined;
        resolve(null);
      }, ms);
      this.waiter = (v) => {
        clearTimeout(t);
        resolve(v);
      };
    });
  }

  get closed(): string {
    return this.error;
  }

  close(): void {
    this.sock?.close();
  }
}

export async function* follow(
  procs: ProcessesClient,
  id: string,
  eventsUrl: string,
  opts: FollowOptions = {},
): AsyncGenerator<LogEntry, void, undefined> {
  const stream = opts.stream ?? Stream.UNSPECIFIED;
  const pollMs = opts.pollMs ?? 500;
  const wanted = (e: LogEntry) =>
    stream === Stream.UNSPECIFIED || stream === Stream.COMBINED || e.stream === stream;
  let last = opts.afterSequence ?? 0n;
  let waitMs = 0;

  // Reads the log after `last` until it is exhausted; the state read before them
  // (once not running, the log was complete).
  async function drain(out: LogEntry[]): Promise<State> {
    for (;;) {
      const wait = waitMs;
      waitMs = 0; // only the first read waits: the rest catch up at once
      const page = await procs.logs(
        { id, afterSequence: last, maxBytes: PAGE_BYTES, stream, waitMs: wait },
        wait > 0 ? { timeoutMs: wait + 10000 } : undefined,
      );
      for (const e of page.entries) {
        if (e.sequence > last) {
          last = e.sequence;
          if (wanted(e)) {
            out.push(e);
          }
        }
      }
      // Entries of other streams were looked at too: skip past them.
      if (page.nextSequence > last) {
        last = page.nextSequence;
      }
      if (!page.hasMore) {
        return page.state;
      }
    }
  }

  const rec = await procs.get({ id });
  const url = opts.events ?? eventsUrl;
  // Subscribe before reading history, so nothing falls between the two.
  const feed = url === "none" ? undefined : await Feed.open(url, [`${rec.tty ? "term" : "log"}/${id}`, `proc/${id}`]);
  const dec = new TextDecoder();
  try {
    let out: LogEntry[] = [];
    let state = await drain(out);
    yield* out;
    while (state === State.RUNNING) {
      out = [];
      if (!feed) {
        const before = last;
        waitMs = LONG_POLL_MS;
        const asked = Date.now();
        state = await drain(out);
        yield* out;
        if (state === State.RUNNING && last === before && Date.now() - asked < 20) {
          await new Promise((r) => setTimeout(r, pollMs)); // a server without long polls
        }
        continue;
      }
      const m = await feed.next(pollMs);
      if (m === null) {
        if (feed.closed) {
          throw new SandprocError("UNAVAILABLE", `event feed ${url}: ${feed.closed}`);
        }
        state = await drain(out);
        yield* out;
        continue;
      }
      const nul = m.indexOf(0);
      const topic = dec.decode(m.subarray(0, nul));
      const body = m.subarray(nul + 1);
      if (topic.startsWith("proc/")) {
        if (fromBinary(ProcessEventSchema, body).process?.state !== State.RUNNING) {
          state = await drain(out);
          yield* out;
        }
        continue;
      }
      let e: LogEntry;
      if (topic.startsWith("term/")) {
        const t = fromBinary(TermFrameSchema, body);
        e = create(LogEntrySchema, { sequence: t.sequence, stream: Stream.PTY, timestampMs: t.timestampMs, data: t.data });
      } else {
        e = fromBinary(LogEntrySchema, body);
      }
      if (e.sequence > last + 1n) {
        // Something was dropped (or came before we subscribed): the log has it.
        state = await drain(out);
        yield* out;
        if (state !== State.RUNNING) {
          break;
        }
      }
      if (e.sequence > last) {
        last = e.sequence;
        if (wanted(e)) {
          yield e;
        }
      }
    }
  } finally {
    feed?.close();
  }
}
