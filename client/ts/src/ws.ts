/*
 * One SP-over-WebSocket connection (nng's ws:// transport): the subprotocol
 * names the *server's* side ("rep.sp.nanomsg.org" to reach a REP socket,
 * "pub.sp.nanomsg.org" for a PUB), and each binary frame is one message.
 * Runs on the browser's WebSocket, else on the `ws` package (Node).
 */

export interface Socket {
  send(data: Uint8Array): void;
  close(): void;
  readonly open: boolean;
}

export interface SocketEvents {
  onopen(): void;
  onmessage(data: Uint8Array): void;
  /** Closed, or never opened; `opened` says which. */
  onclose(opened: boolean, reason: string): void;
}

type WsLike = {
  binaryType: string;
  readyState: number;
  send(data: Uint8Array): void;
  close(): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code?: number; reason?: string }) => void) | null;
  onerror: ((ev: { message?: string; error?: unknown }) => void) | null;
};
type WsCtor = new (url: string, protocols: string[]) => WsLike;

let ctor: Promise<WsCtor> | undefined;

function webSocketClass(): Promise<WsCtor> {
  const g = globalThis as { WebSocket?: WsCtor };
  ctor ??= g.WebSocket !== undefined
    ? Promise.resolve(g.WebSocket)
    : import("ws").then((m) => m.default as unknown as WsCtor);
  return ctor;
}

/** Opens url speaking to a socket of protocol peer ("rep", "pub"); tls options are the platform's. */
export async function openSocket(url: string, peer: string, ev: SocketEvents): Promise<Socket> {
  const WS = await webSocketClass();
  const ws = new WS(url, [`${peer}.sp.nanomsg.org`]);
  ws.binaryType = "arraybuffer";
  let opened = false;
  let closed = false;
  let error = "";
  ws.onopen = () => {
    opened = true;
    ev.onopen();
  };
  ws.onmessage = (m) => {
    const d = m.data;
    if (d instanceof ArrayBuffer) {
      ev.onmessage(new Uint8Array(d));
    } else if (ArrayBuffer.isView(d)) {
      ev.onmessage(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    }
  };
  ws.onerror = (e) => {
    error = e.message ?? String(e.error ?? "connection error");
  };
  ws.onclose = (e) => {
    if (!closed) {
      closed = true;
      ev.onclose(opened, error || e.reason || `closed (${e.code ?? "?"})`);
    }
  };
  return {
    send: (data) => ws.send(data),
    close: () => {
      closed = true;
      try {
        ws.close();
      } catch {
        /* never opened */
      }
    },
    get open() {
      return opened && !closed && ws.readyState === 1;
    },
  };
}
