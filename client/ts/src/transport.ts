/*
 * Calls over nng's REQ/REP on ws:// (or wss://): each request is one binary
 * frame, the SP request id (4 bytes, big-endian, high bit set) first, then
 * the envelope (sandproc.v1.Request); the reply carries the same id first.
 * Several calls may be in flight on one connection (the server answers
 * each from its own context); replies are matched by that id.
 *
 * As nng's REQ does: when the connection drops, it is made again and every
 * call still waiting is resent with the same ids (the server answers a
 * repeated non-idempotent call from its replay cache instead of acting
 * twice). A server that cannot be reached at all fails the call at once.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { SandprocError } from "./errors.js";
import { ReplySchema, RequestSchema } from "./gen/sandproc/v1/envelope_pb.js";
import { openSocket, type Socket } from "./ws.js";

export interface CallOptions {
  /** Milliseconds the call may take, resends included (default: the transport's; none = no limit). */
  timeoutMs?: number;
  /** Aborting rejects the call with CANCELLED (the server may still act on it). */
  signal?: AbortSignal;
}

/** What the generated clients call. */
export interface Transport {
  unary<I extends DescMessage, O extends DescMessage>(
    method: string,
    input: I,
    output: O,
    request: MessageInitShape<I>,
    options?: CallOptions,
  ): Promise<MessageShape<O>>;
}

interface Pending {
  frame: Uint8Array;
  resolve(body: Uint8Array): void;
  reject(e: Error): void;
}

const RECONNECT_MS = [10, 50, 100, 250, 500, 1000];
/** How long waiting calls wait for the server to come back, as the Python client. */
const UNREACHABLE_MS = 30000;

function random63(): bigint {
  const a = new Uint32Array(2);
  globalThis.crypto.getRandomValues(a);
  return (BigInt(a[0] & 0x7fffffff) << 32n) | BigInt(a[1]);
}

export class WsTransport implements Transport {
  private sock?: Socket;
  private dialing = false;
  private everOpened = false;
  private closed = false;
  private attempts = 0;
  private downSince = 0;
  private readonly pending = new Map<number, Pending>();
  private nextSp = Math.floor(Math.random() * 0x7fffffff);
  // A random start, so ids of different clients do not meet.
  private nextId = random63();

  constructor(
    readonly url: string,
    private readonly token: () => Promise<string>,
    private readonly timeoutMs?: number,
  ) {}

  async unary<I extends DescMessage, O extends DescMessage>(
    method: string,
    input: I,
    output: O,
    request: MessageInitShape<I>,
    options?: CallOptions,
  ): Promise<MessageShape<O>> {
    if (this.closed) {
      throw new SandprocError("CANCELLED", `${method}: the client is closed`);
    }
    const body = toBinary(input, create(input, request));
    this.nextId = (this.nextId + 1n) & 0xffffffffffffffffn;
    const env = toBinary(RequestSchema, create(RequestSchema, {
      method, requestId: this.nextId, token: await this.token(), body,
    }));
    const sp = ((this.nextSp++ & 0x7fffffff) | 0x80000000) >>> 0;
    const frame = new Uint8Array(4 + env.length);
    new DataView(frame.buffer).setUint32(0, sp);
    frame.set(env, 4);
    const replyBytes = await this.exchange(method, sp, frame, options);
    const reply = fromBinary(ReplySchema, replyBytes);
    if (reply.code !== 0) {
      throw new SandprocError(reply.code, reply.message || `${method}: no message`);
    }
    return fromBinary(output, reply.body);
  }

  /** Closes the connection; calls still waiting reject with CANCELLED. */
  close(): void {
    this.closed = true;
    this.sock?.close();
    this.sock = undefined;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new SandprocError("CANCELLED", "the client is closed"));
    }
  }

  private exchange(method: string, sp: number, frame: Uint8Array, options?: CallOptions): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve, reject) => {
      const ms = options?.timeoutMs ?? this.timeoutMs;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const signal = options?.signal;
      const onAbort = () => done(new SandprocError("CANCELLED", `${method}: aborted`));
      const done = (e: Error | null, body?: Uint8Array) => {
        if (!this.pending.delete(sp)) {
          return;
        }
        if (timer !== undefined) {
          clearTimeout(timer);
        }
        signal?.removeEventListener("abort", onAbort);
        if (e) {
          reject(e);
        } else {
          resolve(body!);
        }
      };
      this.pending.set(sp, {
        frame,
        resolve: (b) => done(null, b),
        reject: (e) => done(e),
      });
      if (ms !== undefined && ms > 0) {
        timer = setTimeout(() => done(new SandprocError("DEADLINE_EXCEEDED", `${method}: no reply within ${ms} ms`)), ms);
      }
      if (signal) {
        if (signal.aborted) {
          onAbort();
          return;
        }
        signal.addEventListener("abort", onAbort);
      }
      if (this.sock?.open) {
        this.sock.send(frame);
      } else {
        this.dial();
      }
    });
  }

  private dial(): void {
    if (this.dialing || this.closed || this.sock?.open) {
      return;
    }
    this.dialing = true;
    openSocket(this.url, "rep", {
      onopen: () => {
        this.dialing = false;
        this.everOpened = true;
        this.attempts = 0;
        this.downSince = 0;
        // What was sent on a connection that dropped is sent again, with its ids.
        for (const p of this.pending.values()) {
          this.sock?.send(p.frame);
        }
      },
      onmessage: (data) => {
        if (data.length < 4) {
          return;
        }
        const sp = new DataView(data.buffer, data.byteOffset, 4).getUint32(0);
        this.pending.get(sp)?.resolve(data.subarray(4));
      },
      onclose: (opened, reason) => {
        this.sock = undefined;
        this.dialing = false;
        if (this.closed) {
          return;
        }
        if (!opened && !this.everOpened) {
          for (const p of this.pending.values()) {
            p.reject(new SandprocError("UNAVAILABLE", `cannot reach ${this.url}: ${reason}`));
          }
          return;
        }
        // The server went away (a restart): try again while calls wait, for a while.
        this.downSince ||= Date.now();
        if (Date.now() - this.downSince > UNREACHABLE_MS) {
          for (const p of this.pending.values()) {
            p.reject(new SandprocError("UNAVAILABLE", `${this.url} unreachable for ${UNREACHABLE_MS} ms: ${reason}`));
          }
          this.downSince = 0;
          return;
        }
        if (this.pending.size > 0) {
          const ms = RECONNECT_MS[Math.min(this.attempts++, RECONNECT_MS.length - 1)];
          setTimeout(() => this.dial(), ms);
        }
      },
    }).then((s) => {
      if (this.closed) {
        s.close();
      } else {
        this.sock = s;
      }
    }, (e: unknown) => {
      this.dialing = false;
      for (const p of this.pending.values()) {
        p.reject(new SandprocError("UNAVAILABLE", `cannot reach ${this.url}: ${String(e)}`));
      }
    });
  }
}
