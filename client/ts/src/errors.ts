/** gRPC's status names by number, as sandprocd sends them. */
export const CODES = [
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
  "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
  "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;

export type Code = (typeof CODES)[number];

/** A call that did not return OK: `code` is the gRPC name ("NOT_FOUND"), `status` its number. */
export class SandprocError extends Error {
  readonly code: Code;
  readonly status: number;
  /** The server's message alone (`message` is prefixed with the code). */
  readonly rawMessage: string;

  constructor(code: Code | number, message: string) {
    const status = typeof code === "number" ? code : CODES.indexOf(code);
    const name: Code = CODES[status] ?? "UNKNOWN";
    super(`${name}: ${message}`);
    this.name = "SandprocError";
    this.code = name;
    this.status = status;
    this.rawMessage = message;
  }
}
